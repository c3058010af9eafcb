"""Room operators and admins: declared permissions, /op /deop /kick /ban /unban /bans /key, /topic lock,
/join #room KEY, /help filtering, admin /plugins enable|disable, persistence and log lines.

Mostly in process (the kit's ``chatroom_room``); two end-to-end tests run the real ``chatroom-server``
with admins from its ``--config`` file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatroom import Command, RoomRules
from chatroom.model.history import History
from chatroom.model.moderation import Ban, allowed, denied

PW = "correct-horse"
OPERATOR_COMMANDS = ["/op carol", "/deop carol", "/kick carol", "/ban carol", "/unban carol", "/bans", "/key k"]


@pytest.fixture(autouse=True)
def forget_new_loggers() -> Iterator[None]:
    """Drop the ``ctx.log`` loggers a test here created (see tests/test_accounts.py)."""
    before = set(logging.Logger.manager.loggerDict)
    yield
    for name in set(logging.Logger.manager.loggerDict) - before:
        if name.startswith("chatroom.plugin."):
            del logging.Logger.manager.loggerDict[name]


def registered(room, nick: str):  # type: ignore[no-untyped-def]
    client = room.join(nick)
    assert client.say(f"/register {PW}") == [f"OK registered {nick}; you are logged in"]
    return client


def logged_in(room, nick: str):  # type: ignore[no-untyped-def]
    client = room.join()
    assert client.say(f"/login {nick} {PW}") == [f"OK logged in as {nick}"]
    return client


def den(room):  # type: ignore[no-untyped-def]
    """alice (registered) creates and owns #den; bob (a guest) and carol (registered) are in it."""
    alice = registered(room, "alice")
    assert alice.say("/join #den") == ["OK join #den (1 member)"]
    bob = room.join("bob")
    carol = registered(room, "carol")
    for client in (bob, carol):
        assert client.say("/join #den")[-1].startswith("OK join #den")
    alice.clear()
    return alice, bob, carol


# -- the model ------------------------------------------------------------------------------------


def test_levels_are_checked_and_an_unknown_level_is_refused() -> None:
    rules = RoomRules(owner="Alice", operators={"carol": "carol"})
    assert allowed("anyone", None, None, False)
    assert not allowed("account", None, rules, False) and allowed("account", "bob", rules, False)
    assert allowed("operator", "alice", rules, False) and allowed("operator", "CAROL", rules, False)
    assert not allowed("operator", "bob", rules, False) and not allowed("operator", None, rules, False)
    assert allowed("operator", "root", None, True) and allowed("admin", "root", rules, True)
    assert not allowed("admin", "alice", rules, False)
    assert not allowed("operators", "alice", rules, True)  # a typo opens nothing
    assert denied("operator", "/kick") == "permission denied: /kick needs a room operator"


def test_rules_round_trip_through_json_and_the_history_file(tmp_path: Path) -> None:
    rules = RoomRules(owner="alice", operators={"carol": "Carol"}, topic_locked=True, key="sesame")
    rules.add_ban(Ban("account", "bob", "bob", "alice", 1.5))
    assert not rules.add_ban(Ban("account", "bob", "Bob"))  # once
    assert RoomRules.from_json(rules.to_json()) == rules
    assert RoomRules.from_json("not json") == RoomRules() == RoomRules.from_json("")
    with History(tmp_path / "rooms.sqlite3") as history:
        history.records.ensure_room("#den")
        history.records.save_rules("#den", rules.to_json())
    with History(tmp_path / "rooms.sqlite3") as history:
        assert [r.name for r in history.records.rooms()] == ["#den"]
        assert RoomRules.from_json(history.records.room_rules()["#den"]) == rules


def test_a_command_declares_what_it_requires() -> None:
    command = Command("topic", lambda ctx, args: None, sub_requires=(("lock", "operator"),))
    assert command.requires == "anyone" and command.required("") == "anyone"
    assert command.required("Lock") == "operator" and command.required("hello") == "anyone"
    assert Command("kick", lambda ctx, args: None, requires="operator").required("bob") == "operator"


# -- operator commands -------------------------------------------------------------------------


def test_every_operator_command_is_refused_to_others_before_its_handler_runs(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    alice, bob, carol = den(room)
    for line in OPERATOR_COMMANDS:
        name = line.split()[0]
        for client in (bob, carol):  # a guest, and an account that is no operator
            assert client.say(line) == [f"ERROR permission denied: {name} needs a room operator"]
    assert bob.say("/kick") == ["ERROR permission denied: /kick needs a room operator"]  # not even the usage
    assert alice.say("/kick") == ["ERROR usage: /kick NICK [REASON]"]
    assert room.server.hub.room("#den").rules.owner == "alice"
    assert room.server.hub.room("#lobby").rules.owner == ""  # the default room has no owner
    assert alice.say("/join #lobby") == ["OK current room #lobby"]
    assert alice.say("/kick bob") == ["ERROR permission denied: /kick needs a room operator"]
    guest_room = room.join("dan")
    assert guest_room.say("/join #open")[-1] == "OK join #open (1 member)"  # a guest's room has no owner
    assert room.server.hub.room("#open").rules.owner == ""


def test_op_deop_and_kick(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    alice, bob, carol = den(room)
    assert alice.say("/op bob") == ["ERROR bob is not logged in: only an account can be an operator"]
    assert alice.say("/op nobody") == ["ERROR no such nick: nobody"]
    assert alice.say("/op carol") == ["* alice made carol an operator of den", "OK op carol"]
    assert bob.last == "* alice made carol an operator of den"
    assert alice.say("/op carol") == ["ERROR carol is already an operator of den"]
    assert carol.say("/kick alice") == ["ERROR alice owns den"]
    assert carol.say("/kick carol") == ["ERROR you cannot kick yourself"]
    bob.clear()
    assert carol.say("/kick bob flooding the room") == ["* carol kicked bob from den (flooding the room)", "OK kick bob"]
    assert bob.last == "* carol kicked bob from den (flooding the room)"
    assert "#den" not in bob.client.rooms and bob.client.room.name == "#lobby"
    assert alice.last == "* carol kicked bob from den (flooding the room)"
    assert carol.say("/kick bob") == ["ERROR bob is not in den"]
    assert bob.say("/join #den")[-1].startswith("OK join #den")  # a kick is no ban
    assert carol.say("/deop alice") == ["ERROR alice owns den"]
    assert alice.say("/deop carol") == ["* alice took operator from carol in den", "OK deop carol"]
    assert alice.say("/deop carol") == ["ERROR carol is not an operator of den"]
    assert carol.say("/kick bob") == ["ERROR permission denied: /kick needs a room operator"]


def test_bans_hold_across_reconnects_and_nick_changes(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    alice, bob, carol = den(room)
    assert alice.say("/ban carol") == ["* alice banned account carol from den", "* carol is banned from den", "OK ban carol"]
    assert "#den" not in carol.client.rooms and carol.last == "* carol is banned from den"
    assert alice.say("/ban carol") == ["ERROR carol is already banned from den"]
    assert carol.say("/join #den") == ["ERROR you are banned from #den"]
    assert carol.say("/nick carol2") == ["OK nick carol2"]
    assert carol.say("/join #den") == ["ERROR you are banned from #den"]
    carol.leave()
    carol = room.join()  # back as a guest: not the account, so in
    assert carol.say("/join #den")[-1].startswith("OK join #den")
    assert carol.say(f"/login carol {PW}")[-1] == "OK logged in as carol"  # ...until it logs in
    assert "#den" not in carol.client.rooms and carol.say("/join #den") == ["ERROR you are banned from #den"]
    registered(room, "dave").leave()
    assert alice.say("/ban dave") == ["* alice banned account dave from den", "OK ban dave"]  # offline, by account
    assert alice.say("/ban nobody") == ["ERROR no such nick or account: nobody"]
    # a guest is banned by address; a logged-in member from that address is known by its account
    bob.client.addr = ("10.0.0.7", 40000)
    assert alice.say("/ban bob") == ["* alice banned bob (by address) from den", "* bob is banned from den", "OK ban bob"]
    bob.leave()
    again = room.join("robert")
    again.client.addr = ("10.0.0.7", 40001)
    assert again.say("/join #den") == ["ERROR you are banned from #den"]
    other = room.join("eve")
    assert other.say("/join #den")[-1].startswith("OK join #den")  # another address
    erin = registered(room, "erin")
    erin.client.addr = ("10.0.0.7", 40002)
    assert erin.say("/join #den")[-1].startswith("OK join #den")
    bans = alice.say("/bans")
    assert bans[-1] == "OK 3 bans" and bans[0].startswith("* den: carol (account carol), by alice, ")
    assert bans[2].startswith("* den: bob (address 10.0.0.7), by alice, ")
    assert alice.say("/unban nobody") == ["ERROR nobody is not banned from den (see /bans)"]
    assert alice.say("/unban 10.0.0.7") == ["* alice lifted the ban on bob in den", "OK unban bob"]
    assert again.say("/join #den")[-1].startswith("OK join #den")
    assert alice.say("/unban carol") == ["* alice lifted the ban on carol in den", "OK unban carol"]
    assert carol.say("/join #den")[-1].startswith("OK join #den")


def test_a_guest_banned_from_the_default_room_by_address_is_not_put_in_it(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    root = registered(room, "root")
    room.server.admins = frozenset({"root"})
    room.join("bob")
    assert root.say("/ban bob")[-1] == "OK ban bob"  # every kit client comes from 127.0.0.1
    newcomer = room.join()
    assert newcomer.last == "* you are banned from #lobby: /join another room"
    assert newcomer.client.room is None and newcomer.say("/join #lobby") == ["ERROR you are banned from #lobby"]
    assert newcomer.say("/join #elsewhere")[-1] == "OK join #elsewhere (1 member)"


def test_keys(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    alice, bob, carol = den(room)
    assert bob.say("/part #den")[-1].startswith("OK part #den")
    assert alice.say("/key open sesame") == ["ERROR usage: /key PASSWORD|off"]
    assert alice.say("/key sesame") == ["* alice set a key on den: /join #den KEY", "OK key set"]
    assert carol.last == "* alice set a key on den: /join #den KEY"
    assert bob.say("/join #den") == ["ERROR #den needs a key: /join #den KEY"]
    assert bob.say("/join #den Sesame") == ["ERROR wrong key for #den"]
    assert bob.say("/join #den sesame")[-1] == "OK join #den (3 members)"
    assert bob.say("/join #lobby x")[0].startswith("ERROR usage: /join #ROOM [KEY]")  # no key there
    assert alice.say("/op carol")[-1] == "OK op carol"
    assert carol.say("/part")[-1].startswith("OK part #den")
    assert carol.say("/join #den")[-1].startswith("OK join #den")  # operators need no key
    assert alice.say("/key off") == ["* alice removed the key of den", "OK key off"]
    assert alice.say("/key off") == ["ERROR den has no key"]
    assert bob.say("/part #den")[-1].startswith("OK part")
    assert bob.say("/join #den")[-1].startswith("OK join #den")


def test_topic_lock(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    alice, bob, carol = den(room)
    assert bob.say("/topic guests may set it") == ["* bob set the topic of den: guests may set it", "OK topic"]
    assert bob.say("/topic lock") == ["ERROR permission denied: /topic lock needs a room operator"]
    assert alice.say("/topic lock") == ["* alice locked the topic of den", "OK topic locked"]
    assert bob.last == "* alice locked the topic of den"
    assert bob.say("/topic not any more") == ["ERROR permission denied: /topic in den (locked) needs a room operator"]
    assert carol.say("/topic --clear") == ["ERROR permission denied: /topic in den (locked) needs a room operator"]
    assert bob.say("/topic")[0].startswith("* topic of den: guests may set it (set by bob, ")  # reading is anyone's
    assert alice.say("/topic operators only") == ["* alice set the topic of den: operators only", "OK topic"]
    assert bob.say("/topic unlock") == ["ERROR permission denied: /topic unlock needs a room operator"]
    assert alice.say("/topic unlock") == ["* alice unlocked the topic of den", "OK topic unlocked"]
    assert bob.say("/topic free again")[-1] == "OK topic"


def test_everything_persists_across_a_restart(chatroom_room, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    room = chatroom_room(data_dir=data)
    alice, bob, carol = den(room)
    registered(room, "dave").say("/join #den")
    for line in ("/op carol", "/ban dave", "/key sesame", "/topic lock"):
        assert alice.say(line)[-1].startswith("OK")
    room.close()
    room = chatroom_room(data_dir=data)
    rules = room.server.hub.room("#den").rules
    assert (rules.owner, list(rules.operators), rules.key, rules.topic_locked) == ("alice", ["carol"], "sesame", True)
    carol = logged_in(room, "carol")
    assert carol.say("/join #den")[-1] == "OK join #den (1 member)"  # an operator: no key needed
    assert carol.say("/bans")[0].startswith("* den: dave (account dave), by alice, ")
    guest = room.join("bob")
    assert guest.say("/join #den") == ["ERROR #den needs a key: /join #den KEY"]
    assert guest.say("/join #den sesame")[-1].startswith("OK join #den")
    assert guest.say("/topic hi") == ["ERROR permission denied: /topic in den (locked) needs a room operator"]
    assert logged_in(room, "dave").say("/join #den sesame") == ["ERROR you are banned from #den"]
    assert carol.say("/kick bob") == ["* carol kicked bob from den", "OK kick bob"]


# -- /help, admins, plugins, logs ---------------------------------------------------------------------


def _help_names(client) -> set[str]:  # type: ignore[no-untyped-def]
    return {line.split()[0] for line in client.say("/help")}


def test_help_shows_only_what_the_caller_may_use(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    alice, bob, carol = den(room)
    moderation = {"/op", "/deop", "/kick", "/ban", "/unban", "/bans", "/key"}
    assert moderation <= _help_names(alice)  # in its own room
    assert not moderation & _help_names(bob) and not moderation & _help_names(carol)
    assert "/topic" in _help_names(bob) and "/plugins" in _help_names(bob)
    assert alice.say("/join #lobby") == ["OK current room #lobby"]
    assert not moderation & _help_names(alice)  # not an operator there
    assert bob.say("/help kick") == ["/kick NICK [REASON] - Put a member out of your room"]  # explaining is fine
    room.server.admins = frozenset({"carol"})
    assert moderation <= _help_names(carol)


def test_admins_act_in_every_room(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    alice, bob, carol = den(room)
    root = registered(room, "root")
    assert root.say("/kick bob") == ["ERROR permission denied: /kick needs a room operator"]
    room.server.admins = frozenset({"root"})
    assert root.say("/kick bob go home") == ["* root kicked bob from lobby (go home)", "OK kick bob"]
    assert alice.say("/key sesame")[-1] == "OK key set"
    assert root.say("/join #den")[-1] == "OK join #den (4 members)"  # no key needed
    assert root.say("/kick alice") == ["* root kicked alice from den", "OK kick alice"]  # even the owner
    assert root.say("/op carol")[-1] == "OK op carol"
    assert carol.say("/kick root") == ["ERROR root is an admin"]
    assert carol.say("/ban root") == ["ERROR root is an admin"]


def test_admins_enable_and_disable_plugins_at_run_time(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    root, bob = registered(room, "root"), room.join("bob")
    assert bob.say("/plugins disable tweet") == ["ERROR permission denied: /plugins disable needs an admin"]
    assert root.say("/plugins enable tweet") == ["ERROR permission denied: /plugins enable needs an admin"]
    room.server.admins = frozenset({"root"})
    assert root.say("/plugins disable tweet") == ["OK plugin tweet disabled"]
    assert bob.say("/tweet -u hi") == ["ERROR plugin tweet is disabled"]
    assert "/tweet" not in _help_names(bob)
    assert any(line.startswith("* tweet (builtin: ") and "[disabled]" in line for line in bob.say("/plugins"))
    assert root.say("/plugins disable core") == ["ERROR the core plugin cannot be disabled"]
    assert root.say("/plugins disable nothing") == ["ERROR no plugin nothing"]
    assert root.say("/plugins frob tweet") == ["ERROR usage: /plugins [enable|disable NAME]"]
    assert root.say("/plugins enable tweet") == ["OK plugin tweet enabled"]
    assert bob.say("/tweet -u hi")[-1].startswith("OK")
    assert "/tweet" in _help_names(bob)
    assert "[GENERAL] chatroom.plugin.core: root (account root) disabled plugin tweet" in room.logs


def test_every_action_is_logged_with_who_did_it(chatroom_room) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room()
    alice, bob, carol = den(room)
    for line in ("/op carol", "/key k", "/topic lock", "/kick bob out", "/ban bob"):
        assert alice.say(line)[-1].startswith("OK")
    logs = [line for line in room.logs if "#den:" in line]
    assert logs == [
        "[GENERAL] chatroom.plugin.moderation: #den: alice made carol an operator of den (by alice, account alice)",
        "[GENERAL] chatroom.plugin.moderation: #den: alice set a key on den: /join #den KEY (by alice, account alice)",
        "[GENERAL] chatroom.plugin.rooms: #den: alice locked the topic of den (by alice, account alice)",
        "[GENERAL] chatroom.plugin.moderation: #den: alice kicked bob from den (out) (by alice, account alice)",
        "[GENERAL] chatroom.plugin.moderation: #den: alice banned bob (by address) from den (by alice, account alice)",
    ]
    assert "k " not in " ".join(logs).replace("kicked", "")  # the key itself is never logged


# -- end to end -------------------------------------------------------------------------------------


def test_e2e_admins_come_from_the_config_file(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "chatroom.toml"
    config.write_text('admins = ["root"]\n\n[plugins.tweet]\n')
    server = server_factory("--config", str(config))
    bob = server.connect("bob")
    root = server.connect("root")
    root.send("/kick bob")
    root.expect("ERROR permission denied: /kick needs a room operator")  # a guest named root is no admin
    root.send(f"/register {PW}")
    root.expect("OK registered root; you are logged in")
    root.send("/kick bob bye")
    root.expect("OK kick bob")
    bob.expect("* root kicked bob from lobby (bye)")
    root.send("/plugins disable tweet")
    root.expect("OK plugin tweet disabled")
    bob.send("/plugins disable board")
    bob.expect("ERROR permission denied: /plugins disable needs an admin")
    assert "[GENERAL] chatroom.plugin.moderation: #lobby: root kicked bob from lobby (bye) (by root, account root)" \
        in server.log_text()


def test_e2e_owner_key_and_ban_survive_a_restart(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    server = server_factory(data_dir=data)
    alice, bob = server.connect("alice"), server.connect("bob")
    for client, name in ((alice, "alice"), (bob, "bob")):
        client.send(f"/register {PW}")
        client.expect(f"OK registered {name}; you are logged in")
    alice.send("/join #den")
    alice.expect("OK join #den (1 member)")
    alice.send("/key sesame")
    alice.expect("OK key set")
    alice.send("/ban bob")
    alice.expect("OK ban bob")
    server.stop()
    server = server_factory(data_dir=data)
    bob = server.connect()
    bob.send(f"/login bob {PW}")
    bob.expect("OK logged in as bob")
    bob.send("/join #den sesame")
    bob.expect("ERROR you are banned from #den")
    guest = server.connect("guesty")
    guest.send("/join #den")
    guest.expect("ERROR #den needs a key: /join #den KEY")
    alice = server.connect()
    alice.send(f"/login alice {PW}")
    alice.expect("OK logged in as alice")
    alice.send("/join #den")
    alice.expect("OK join #den (1 member)")
    alice.send("/unban bob")
    alice.expect("OK unban bob")
    bob.send("/join #den sesame")
    bob.expect("OK join #den (2 members)")
