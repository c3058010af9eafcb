"""Plugin API 1.0 (issue 11): declared config schemas, --check-config, and the member_ready,
private_message and message_delivered hooks."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from chatroom import REQUIRED, Command, Setting, hookimpl
from chatroom.testing import PluginLoadError


def plugin(**hooks) -> SimpleNamespace:
    p = SimpleNamespace()
    for name, fn in hooks.items():
        setattr(p, name, hookimpl(specname=name)(fn))
    return p


SCHEMA = {
    "timeout": Setting(int, default=300, min=10, max=86400, help="seconds a poll stays open"),
    "ratio": Setting(float, default=0.5, min=0, max=1),
    "mode": Setting(str, default="open", choices=("open", "secret")),
    "words": Setting(list, default=(), items=str),
    "limits": Setting(dict, default={}),
    "token": Setting(str, default=REQUIRED, help="the API token"),
}


def configured(seen: list) -> SimpleNamespace:
    def remember(ctx, args):
        seen.append(ctx.config)
        ctx.reply("OK")
    return plugin(config_schema=lambda: SCHEMA,
                  register_commands=lambda: [Command("cfg", remember)])


def test_settings_are_checked_defaulted_and_deep_frozen(chatroom_room):
    seen: list = []
    room = chatroom_room(plugins=[("poll", configured(seen))],
                         config={"poll": {"token": "t", "ratio": 1, "words": ["a"], "limits": {"x": [1, 2]}}})
    room.join("alice").say("/cfg")
    config = seen[0]
    assert dict(config) == {"timeout": 300, "ratio": 1, "mode": "open", "words": ["a"],
                            "limits": {"x": [1, 2]}, "token": "t"}
    with pytest.raises(TypeError):
        config["timeout"] = 1
    with pytest.raises(TypeError):
        config["limits"]["x"] = 3  # nested tables are read-only too
    assert isinstance(config["words"], list)  # still a list for plugins that check, but read-only
    with pytest.raises(TypeError):
        config["words"].append("b")
    with pytest.raises(TypeError):
        config["limits"]["x"][0] = 5


@pytest.mark.parametrize("table, message", [
    ({"timeout": "5"}, "[plugins.poll] timeout must be an integer, not '5'"),
    ({"timeout": True}, "[plugins.poll] timeout must be an integer, not True"),
    ({"timeout": 5}, "[plugins.poll] timeout is 5; the least allowed is 10"),
    ({"ratio": 2.5}, "[plugins.poll] ratio is 2.5; the most allowed is 1"),
    ({"mode": "loud"}, "[plugins.poll] mode must be one of 'open', 'secret', not 'loud'"),
    ({"words": ["a", 1]}, "[plugins.poll] words: every item must be a string, not 1"),
    ({}, "[plugins.poll] token is required (the API token)"),
    ({"timout": 60}, "[plugins.poll] has unknown setting 'timout' (did you mean 'timeout'?); it is ignored"),
])
def test_a_bad_table_is_refused_with_a_clear_message(chatroom_room, table, message):
    table = {"token": "t", **table} if "token" not in str(message) else table
    with pytest.raises(PluginLoadError) as caught:
        chatroom_room(plugins=[("poll", configured([]))], config={"poll": table})
    assert message in str(caught.value)


def test_a_table_naming_no_plugin_is_reported_with_a_did_you_mean(chatroom_room):
    with pytest.raises(PluginLoadError, match=r"config table \[plugins.pol\] names no plugin "
                                              r"\(did you mean \[plugins.poll\]\?\)"):
        chatroom_room(plugins=[("poll", configured([]))], config={"poll": {"token": "t"}, "pol": {}})


def test_a_bad_schema_is_a_load_error(chatroom_room):
    with pytest.raises(PluginLoadError, match="config_schema entry 'x' is not a Setting"):
        chatroom_room(plugins=[("p", plugin(config_schema=lambda: {"x": int}))])


def test_check_config_reports_every_problem_and_exits(tmp_path):
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text('admins = ["root"]\n[plugins.core]\n')
    bad.write_text('admin = ["root"]\n')
    run = [sys.executable, "-m", "chatroom.server.cli", "--data-dir", str(tmp_path / "d"), "--no-plugins"]
    result = subprocess.run([*run, "--check-config", str(good)], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout.splitlines()[-1]) == (0, f"{good}: valid (1 plugin table)")
    result = subprocess.run([*run, "--check-config", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "unknown top-level key 'admin' (did you mean 'admins'?)" in result.stderr
    bad.write_text("[plugins.cor]\n[plugins.board]\nx = 1\n")
    result = subprocess.run([*run, "--check-config", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"{bad}: config table [plugins.cor] names no plugin (did you mean [plugins.core]?); it is ignored" \
        in result.stdout.splitlines()
    assert not (tmp_path / "d").exists()  # checking starts nothing and creates nothing


# -- member_ready ----------------------------------------------------------------------------
def test_member_ready_after_the_first_nick_or_login_or_the_grace_period(chatroom_room):
    ready: list[str] = []
    room = chatroom_room(plugins=[("greeter", plugin(member_ready=lambda ctx: ready.append(ctx.nick)))])
    alice = room.join("alice")  # the kit names her at once
    assert ready == ["alice"]
    alice.say("/nick alicia")
    assert ready == ["alice"]  # once per connection
    guest = room.join()
    assert ready == ["alice"]
    room.advance(4.9)
    assert ready == ["alice"]
    room.advance(0.1)
    assert ready == ["alice", guest.nick]  # an nc user who never names itself
    quitter = room.join()
    quitter.leave()
    room.advance(10)
    assert ready == ["alice", guest.nick]  # never after it left
    assert room.timers == []


def test_member_ready_after_login_with_the_same_nick(chatroom_room):
    ready: list[str] = []
    room = chatroom_room(plugins=[("greeter", plugin(member_ready=lambda ctx: ready.append(ctx.nick)))])
    alice = room.join("alice")
    alice.say("/register hunter2hunter2")
    alice.leave()
    back = room.join()
    assert back.say("/login alice hunter2hunter2") == ["OK logged in as alice"]
    assert ready == ["alice", "alice"]


# -- private_message ---------------------------------------------------------------------------
def test_private_message_hooks_rewrite_or_drop(chatroom_room):
    def shout(ctx, target, text):
        if "secret" in text:
            return False
        return f"{text.upper()} (to {target.nick})"

    room = chatroom_room(plugins=[("pm", plugin(private_message=shout))])
    alice, bob = room.join("alice"), room.join("bob")
    bob.clear()
    assert alice.say("/msg bob hi") == ["OK sent to bob"]
    assert bob.received == ["alice (private): HI (to bob)"]
    assert alice.say("/msg bob a secret") == ["ERROR not sent to bob: a plugin refused it"]
    assert bob.received == ["alice (private): HI (to bob)"]


# -- message_delivered ---------------------------------------------------------------------------
def test_message_delivered_reports_each_line_after_fan_out_in_order(chatroom_room):
    seen: list[tuple] = []

    def delivered(ctx, room, entry, recipients):
        seen.append((ctx.nick, room.name, entry.kind, entry.id, entry.text, recipients))

    room = chatroom_room(plugins=[("log", plugin(message_delivered=delivered))])
    alice, bob, carol = room.join("alice"), room.join("bob"), room.join("carol")
    seen.clear()
    alice.say("one")
    alice.say("/me waves")
    bob.say("/join #side")
    assert bob.received[-1].startswith("OK") or bob.received  # joined
    alice.say("two")
    kinds = [(s[0], s[2], s[4], s[5]) for s in seen if s[2] != "notice"]
    assert kinds == [("alice", "msg", "one", 2), ("alice", "me", "waves", 2), ("alice", "msg", "two", 2)]
    ids = [s[3] for s in seen if s[2] == "msg"]
    assert ids == sorted(ids) and ids[0] > 0
    carol.leave()
    alice.say("three")
    assert seen[-1][4:] == ("three", 1)


def test_message_delivered_output_and_broadcasts_do_not_loop_for_ever(chatroom_room):
    def echo(ctx, room, entry, recipients):
        if entry.kind == "msg":
            ctx.broadcast(f"* logged: {entry.text}")

    room = chatroom_room(plugins=[("log", plugin(message_delivered=echo))])
    alice, bob = room.join("alice"), room.join("bob")
    alice.say("hello")
    assert bob.received[-2:] == ["alice: hello", "* logged: hello"]
