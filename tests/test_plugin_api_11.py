"""Plugin API 1.1 (issue 22), with the kit: saying things in a given room, room membership hooks, how long a
context stays usable, admins and operators in the kit, Rate counting only successful calls, /help NAME and
subcommands, message_delivered's recipients, ctx.store's foreign keys, and a 1.0 plugin working unchanged."""

from __future__ import annotations

import re
import warnings
from types import SimpleNamespace

import pytest

from chatroom import Command, CommandError, ContextExpired, Param, Rate, Refused, hookimpl


def plugin(*cmds: Command, **hooks) -> SimpleNamespace:  # type: ignore[no-untyped-def]
    p = SimpleNamespace(register_commands=hookimpl(lambda: list(cmds)))
    for name, fn in hooks.items():
        setattr(p, name, hookimpl(specname=name)(fn))
    return p


def announce(ctx, args):  # type: ignore[no-untyped-def]
    ctx.say(args[0], args[1])


ANNOUNCE = Command("announce", announce, min_args=2, max_args=2)


# -- ctx.say(room, text) and ctx.broadcast(..., room=) ------------------------------------------------------
def test_say_in_a_room_reaches_its_members_as_a_room_line_and_is_not_recorded(chatroom_room):
    room = chatroom_room(plugins=[("bot", plugin(ANNOUNCE))])
    alice, bob, carol = room.join("alice"), room.join("bob"), room.join("carol")
    bob.say("/join #ops")
    carol.say("/join #ops")
    carol.say("/join #side")  # carol is still in #ops, but #side is current
    dave = room.join("dave")
    dave.say("/caps tags")
    dave.say("/join #ops")
    for client in (bob, carol, dave):
        client.clear()
    assert alice.say("/announce #ops 'the build is green'") == []  # alice is not in #ops: nothing for her
    assert bob.received == ["the build is green"]
    assert carol.received == ["[#ops] the build is green"]
    tagged = dave.received[-1]
    assert re.fullmatch(r"@room=#ops;time=\S+;kind=raw the build is green", tagged), tagged
    assert bob.say("/history #ops 5") == ["OK history #ops 0 lines"]  # a plugin's line, not recorded
    assert alice.say("/announce #nowhere hi") == ["ERROR no such room: #nowhere"]


def test_say_in_a_room_works_from_a_timer_after_its_setter_left(chatroom_room):
    def later(ctx, args):  # type: ignore[no-untyped-def]
        room = ctx.room
        ctx.call_later(10, lambda: ctx.say(room, "* the timer fired"))
        ctx.reply("OK")

    room = chatroom_room(plugins=[("bot", plugin(Command("later", later)))])
    alice, bob = room.join("alice"), room.join("bob")
    alice.say("/later")
    alice.leave()
    room.advance(10)
    assert bob.last == "* the timer fired"


def test_broadcast_to_a_given_room_leaves_the_caller_out_unless_asked(chatroom_room):
    def shout(ctx, args):  # type: ignore[no-untyped-def]
        ctx.broadcast("* shout", room="#ops")
        ctx.broadcast("* shout, me too", room=ctx.find_room("ops"), include_self=True)

    room = chatroom_room(plugins=[("bot", plugin(Command("shout", shout)))])
    alice, bob = room.join("alice"), room.join("bob")
    for client in (alice, bob):
        client.say("/join #ops")
    bob.clear()
    assert alice.say("/shout") == ["* shout, me too"]
    assert bob.received == ["* shout", "* shout, me too"]


def test_the_1_0_say_still_chats_as_the_caller_with_a_warning_naming_chat(chatroom_room):
    def old(ctx, args):  # type: ignore[no-untyped-def]
        ctx.say("hello from 1.0")
        ctx.say(text="and by keyword")

    room = chatroom_room(plugins=[("old", plugin(Command("old", old), Command("new", lambda c, a: c.chat("new"))))])
    alice, bob = room.join("alice"), room.join("bob")
    with pytest.warns(DeprecationWarning, match=r"ctx.say\(text\) is deprecated since plugin API 1.1: use "
                                                r"ctx.chat\(text\) to speak as the caller, or ctx.say\(room, text\)"):
        alice.say("/old")
    alice.say("/new")
    assert bob.received[-3:] == ["alice: hello from 1.0", "alice: and by keyword", "alice: new"]
    assert alice.say("/history 3")[-1] == "OK history #lobby 3 lines"  # chat is recorded, as it was
    with pytest.raises(TypeError, match="takes no kind"):
        room.context("old", alice).say("#lobby", "x", kind="me")


# -- membership hooks ----------------------------------------------------------------------------------------
def recorder() -> tuple[list[tuple[str, ...]], SimpleNamespace]:
    seen: list[tuple[str, ...]] = []
    return seen, plugin(
        member_joined=lambda ctx, room: seen.append(("joined", ctx.nick, room.name)),
        member_left=lambda ctx, room, reason: seen.append(("left", ctx.nick, room.name, reason, str(ctx.expired))),
        client_joined=lambda ctx: seen.append(("client_joined", ctx.nick)),
        client_left=lambda ctx, reason: seen.append(("client_left", ctx.nick)))


def test_membership_hooks_fire_for_every_join_and_leave_with_the_room(chatroom_room):
    seen, rec = recorder()
    room = chatroom_room(plugins=[("rec", rec)])
    alice = room.join("alice")
    assert seen == [("joined", "guest1", "#lobby"), ("client_joined", "guest1")]  # connecting joins the lobby
    seen.clear()
    alice.say("/join #ops")
    alice.say("/join #ops")  # already in it: only made current
    alice.say("/part #ops see you")
    assert seen == [("joined", "alice", "#ops"), ("left", "alice", "#ops", "see you", "False")]
    seen.clear()
    alice.say("/join #a")
    alice.leave()  # one member_left per room, then client_left; the member has left the server by then
    assert seen == [("joined", "alice", "#a"), ("left", "alice", "#lobby", "connection lost", "True"),
                    ("left", "alice", "#a", "connection lost", "True"), ("client_left", "alice")]
    seen.clear()
    room.join("bob")
    room.close()  # shutdown: client_left, never member_left
    assert ("client_left", "bob") in seen and not [e for e in seen if e[0] == "left"]


def test_a_kick_is_a_leave_with_the_kick_notice(chatroom_room):
    seen, rec = recorder()
    room = chatroom_room(plugins=[("rec", rec)])
    op = room.join("op", operator="#den")
    bob = room.join("bob")
    bob.say("/join #den")
    seen.clear()
    op.say("/kick bob")
    assert seen == [("left", "bob", "#den", "op kicked bob from den", "False")]


def test_a_member_joined_hook_can_greet_in_the_room(chatroom_room):
    greeter = plugin(member_joined=lambda ctx, room: room.name == "#help" and ctx.say(room, f"* hi {ctx.nick}"))
    room = chatroom_room(plugins=[("greeter", greeter)])
    alice, bob = room.join("alice"), room.join("bob")
    alice.say("/join #help")
    assert bob.say("/join #help")[0] == "* hi bob"
    assert alice.last == "* hi bob"


# -- how long a ctx stays usable ----------------------------------------------------------------------------
def test_the_kit_fails_a_reply_to_a_client_that_left(chatroom_room):
    def later(ctx, args):  # type: ignore[no-untyped-def]
        ctx.call_later(5, ctx.reply, "too late")

    room = chatroom_room(plugins=[("late", plugin(Command("later", later)))])
    alice = room.join("alice")
    alice.say("/later")
    alice.leave()
    with pytest.raises(ContextExpired, match=r"ctx.reply of plugin late used after its client alice "
                                             r"\(connection 1\) left; see docs/plugins.md"):
        room.advance(5)
    assert "ContextExpired" in room.faults[-1][1]


@pytest.mark.parametrize("use", ["reply", "room", "members", "broadcast", "stream", "join", "rename", "capture",
                                 "chat", "dispatch", "login"])
def test_every_client_part_of_a_context_expires_with_its_client(chatroom_room, use):
    room = chatroom_room(plugins=[("p", plugin())])
    alice, bob = room.join("alice"), room.join("bob")
    ctx = room.context("p", alice)
    calls = {"reply": lambda: ctx.reply("x"), "room": lambda: ctx.room, "members": ctx.members,
             "broadcast": lambda: ctx.broadcast("x"), "stream": lambda: ctx.stream(["x"]),
             "join": lambda: ctx.join("#x"), "rename": lambda: ctx.rename("zed"),
             "capture": lambda: ctx.capture(lambda c, line: None), "chat": lambda: ctx.chat("x"),
             "dispatch": lambda: ctx.dispatch("/who"), "login": lambda: ctx.login("alice")}
    alice.leave()
    assert ctx.expired and not room.context("p", bob).expired
    with pytest.raises(ContextExpired):
        calls[use]()
    ctx.say("#lobby", "still fine")  # the room-wide parts outlive the client
    room.settle()
    assert bob.last == "still fine" and ctx.nick == "alice" and ctx.state == {}
    assert ctx.send(alice.client, "x") is False and ctx.send(bob.client, "hi bob") is True


def test_the_server_ignores_late_output_once_logged_and_refuses_late_actions(chatroom_room):
    room = chatroom_room(plugins=[("p", plugin())])
    room.server.port.strict = False  # what chatroom-server does
    alice = room.join("alice")
    ctx = room.context("p", alice)
    alice.leave()
    ctx.reply("one")
    ctx.reply("two")
    ctx.broadcast("three")
    with pytest.raises(ContextExpired, match="ctx.join: its client alice left"):
        ctx.join("#x")
    logged = [line for line in room.errors if "used after its client alice" in line]
    assert [line.split(" of plugin")[0] for line in logged] == ["[ERROR] chatroom.server: ctx.reply",
                                                               "[ERROR] chatroom.server: ctx.room",
                                                               "[ERROR] chatroom.server: ctx.join"]
    assert all(line.endswith("ignored (logged once per plugin and method)") for line in logged)
    assert room.server.port.find_room("#x") is None  # no ghost member, no room


# -- admins and operators in the kit ---------------------------------------------------------------------------
def test_the_kit_makes_accounts_admins_and_operators_by_keyword(chatroom_room):
    room = chatroom_room()
    root = room.join("root", admin=True)
    assert root.nick == "root" and root.client.account == "root"
    assert root.say("/plugins disable tweet") == ["OK plugin tweet disabled"]
    op = room.join("op", operator=["#den", "#ops"])
    assert op.client.room.name == "#ops" and set(op.client.rooms) == {"#lobby", "#den", "#ops"}
    guest = room.join("guest")
    guest.say("/join #den")
    assert op.say("/join #den") == ["OK current room #den"]
    assert op.say("/kick guest")[-1].startswith("OK")
    assert guest.say("/plugins disable board") == ["ERROR permission denied: /plugins disable needs an admin"]
    alice = room.join("alice", account=True)
    assert room.context("p", alice).account == "alice"
    again = room.join("alice", account=True)  # logs in again: the first connection becomes a guest
    assert again.nick == "alice" and alice.nick.startswith("guest")
    with pytest.raises(ValueError, match="need a nick"):
        room.join(admin=True)


# -- Rate counts only successful calls ---------------------------------------------------------------------
def test_a_call_the_handler_refuses_or_that_fails_does_not_spend_the_rate(chatroom_room):
    outcome = {"mode": "refuse"}

    def start(ctx, args):  # type: ignore[no-untyped-def]
        if outcome["mode"] == "refuse":
            raise CommandError("a stand-up is already running")
        if outcome["mode"] == "fail":
            raise ZeroDivisionError("plugin bug")
        ctx.reply("OK started")

    room = chatroom_room(plugins=[("r", plugin(Command("start", start, rate=Rate(user=60))))])
    alice = room.join("alice")
    assert alice.say("/start") == ["ERROR a stand-up is already running"]
    outcome["mode"] = "fail"
    assert alice.say("/start") == ["ERROR /start failed: internal error in plugin r"]
    outcome["mode"] = "ok"
    assert alice.say("/start") == ["OK started"]
    assert alice.say("/start") == ["ERROR /start: too soon, try again in 60 s"]


# -- /help NAME ---------------------------------------------------------------------------------------------------
def test_help_of_a_command_shows_only_usable_subcommands_their_params_and_examples(chatroom_room):
    poll = Command("poll", lambda ctx, args: None, summary="Polls", params=[Param("id", int, default=0, help="a poll")],
                   subcommands=[
                       Command("new", lambda ctx, args: None, summary="Start one",
                               params=[Param("question", help="what to ask"), Param("options", many=True)],
                               examples=[('/poll new "Lunch?" pizza soup', ())]),
                       Command("close", lambda ctx, args: None, requires="operator", summary="Close it",
                               params=[Param("reason", rest=True, default="", help="why, for the log")],
                               examples=[("/poll close", ())]),
                   ])
    room = chatroom_room(plugins=[("poll", plugin(poll))])
    guest, op = room.join("guest"), room.join("op", operator="#lobby")
    assert guest.say("/help poll") == [
        "/poll [ID] - Polls",
        "  ID: a poll",
        "  /poll new QUESTION OPTIONS... - Start one",
        "    QUESTION: what to ask",
        "  e.g. /poll new \"Lunch?\" pizza soup  ->  (no reply)",
    ]
    assert op.say("/help poll")[-4:] == [
        "  /poll close [REASON] - Close it",
        "    REASON: why, for the log",
        "  e.g. /poll new \"Lunch?\" pizza soup  ->  (no reply)",
        "  e.g. /poll close  ->  (no reply)",
    ]


# -- message_delivered, ctx.store ---------------------------------------------------------------------------------
def test_message_delivered_counts_recipients_and_fires_for_nobody_too(chatroom_room):
    seen: list[tuple[str, str, int]] = []
    rec = plugin(ANNOUNCE, message_delivered=lambda ctx, room, entry, recipients: seen.append(
        (entry.kind, entry.text, recipients)))
    room = chatroom_room(plugins=[("rec", rec)])
    alice = room.join("alice")
    alice.say("alone here")
    bob = room.join("bob")
    seen.clear()
    bob.say("hi")
    alice.say("/announce #lobby ping")
    assert seen == [("msg", "hi", 1), ("raw", "ping", 2)]
    seen.clear()
    bob.leave()
    alice.say("alone again")
    assert ("msg", "alone again", 0) in seen and all(isinstance(n, int) for _, _, n in seen)


def test_ctx_store_enforces_foreign_keys(chatroom_room):
    import sqlite3

    room = chatroom_room(plugins=[("p", plugin())])
    store = room.context("p").store
    assert store.execute("PRAGMA foreign_keys").fetchone() == (1,)
    store.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    store.execute("CREATE TABLE child (parent INTEGER REFERENCES parent(id))")
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        store.execute("INSERT INTO child VALUES (7)")


# -- a plugin written against 1.0 keeps working ----------------------------------------------------------------
def test_a_1_0_plugin_works_unchanged_with_warnings_naming_the_replacements(chatroom_room):
    def remind_later(ctx, args):  # type: ignore[no-untyped-def]
        due = ctx.now + 5  # 1.0: the loop's clock as a number
        ctx.state["due"] = due
        ctx.call_later(5, lambda: ctx.broadcast(f"* due at {ctx.state['due']:.0f}", include_self=True))
        ctx.say("I set a reminder")
        found = ctx.command("help")
        ctx.reply(f"OK {found.name}")

    room = chatroom_room(plugins=[("old", plugin(Command("remind", remind_later)))])
    alice, bob = room.join("alice"), room.join("bob")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert alice.say("/remind") == ["OK help"]
        room.advance(5)
    messages = {str(w.message).split(":")[0] for w in caught if w.category is DeprecationWarning}
    assert messages == {"ctx.now used as a number (the loop's monotonic clock, not the time of day) is deprecated "
                        "since plugin API 1.1", "ctx.say(text) is deprecated since plugin API 1.1",
                        "ctx.command(name) is deprecated since plugin API 1.0"}
    assert bob.received[-2:] == ["alice: I set a reminder", "* due at 5"]
    assert room.faults == []
    with pytest.raises(Refused):
        room.context("old").chat("no caller")


# -- the docs agree with the code --------------------------------------------------------------------------------
DOCS = __import__("pathlib").Path(__file__).resolve().parents[1] / "docs"


def test_the_documented_refusals_are_the_real_ones(chatroom_room):
    """docs/protocol.md's usage errors and /msg's reply, as a client receives them."""
    roll = Command("roll", lambda ctx, args: ctx.reply("rolled"), params=[Param("sides", int, default=6, min=2,
                                                                               max=1000)])
    hello = Command("hello", lambda ctx, args: ctx.reply("hi"), usage="/hello [NAME]", max_args=1)
    room = chatroom_room(plugins=[("p", plugin(roll, hello))])
    alice = room.join("alice")
    room.join("Bob")
    protocol = (DOCS / "protocol.md").read_text()
    for line, reply in [("/roll 1", "ERROR usage: /roll [SIDES]: SIDES must be from 2 to 1000"),
                        ("/roll x", "ERROR usage: /roll [SIDES]: SIDES must be a whole number"),
                        ("/hello a b", "ERROR usage: /hello [NAME]"),
                        ("/msg bob lunch?", "OK sent to Bob")]:
        assert alice.say(line) == [reply]
    assert "`ERROR usage: /roll [SIDES]: SIDES must be from 2 to 1000`" in protocol
    assert "`...: SIDES must be a whole number`" in protocol and "`ERROR usage: /hello [NAME]`" in protocol
    assert "you get `OK sent to NICK`" in protocol


def test_the_documented_built_in_list_is_the_real_one(chatroom_room):
    room = chatroom_room()
    text = (DOCS / "plugins.md").read_text()
    listed = text[text.index("1. **Built-ins**:"):text.index("2. **Installed distributions**")]
    documented = dict(re.findall(r"`(\w+)` \(`([^`]*)`\)", " ".join(listed.split())))
    actual = {info.name: " ".join("/" + c for c in info.commands) for info in room.plugins.info.values()}
    assert documented == actual


def test_the_timed_bot_of_the_guide_works_as_shown(chatroom_room, tmp_path):
    """The two code blocks of docs/plugins.md, "A room-aware timed bot": the plugin, then its test."""
    import importlib.util

    text = (DOCS / "plugins.md").read_text()
    section = text[text.index("## A room-aware timed bot"):]
    code, test = re.findall(r"```python\n(.*?)```", section, re.S)[:2]
    (tmp_path / "my_nag.py").write_text(code)
    spec = importlib.util.spec_from_file_location("my_nag", tmp_path / "my_nag.py")
    assert spec is not None and spec.loader is not None
    my_nag = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(my_nag)
    namespace: dict[str, object] = {"my_nag": my_nag}
    exec(test, namespace)  # noqa: S102 - the guide's own test
    namespace["test_nag"](chatroom_room)  # type: ignore[operator]
    room = chatroom_room(plugins=[("nag", my_nag)])
    alice = room.join("alice")
    alice.say("/nag water the plants")
    room.advance(30)  # past its Rate(room=30): the handler's own refusal now
    assert alice.say("/nag again") == ["ERROR #lobby is being nagged already"]
    assert alice.say("/ack")[-1] == "* alice acknowledged it"
    room.advance(120)
    assert alice.last == "* alice acknowledged it" and room.timers == []
