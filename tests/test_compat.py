"""Plugin API 1.0 compatibility: plugins written against the 0.x docs keep working unchanged.

``tests/compat/`` holds the example plugins exactly as they were released
before API 1.0 (chatroom-remind 0.1.0 and chatroom-wordfilter 0.1.0, which
import ``chatroom.context``, read ``ctx.config`` by hand and check
``isinstance(words, list)``); the five-minute guide's plugin is taken from
docs/plugins.md itself. What changed warns (``DeprecationWarning``) naming
the replacement.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from chatroom import Command, hookimpl

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs" / "plugins.md"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"compat_{name}", HERE / "compat" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    sys.modules.pop("chatroom.context", None)  # so the deprecation warning fires on this import
    with pytest.warns(DeprecationWarning, match=r"chatroom.context is deprecated.*from chatroom import Context"):
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def remind_0_1() -> ModuleType:
    return load("remind_0_1")


@pytest.fixture(scope="module")
def wordfilter_0_1() -> ModuleType:
    return load("wordfilter_0_1")


def test_remind_0_1_unchanged(chatroom_room, remind_0_1):
    room = chatroom_room(plugins=[("remind", remind_0_1)], config={"remind": {"max_per_user": 2}})
    alice = room.join("alice")
    assert alice.say("/remind 10s stand up") == ["OK reminder 1 in 10s"]
    assert alice.say("/remind 1m later") == ["OK reminder 2 in 1m"]
    assert alice.say("/remind 1m more") == ["ERROR you have 2 reminders pending; /remind cancel ID one first"]
    assert alice.say("/remind cancel 2") == ["OK cancelled 2"]
    assert alice.say("/remind") == ["ERROR usage: /remind DURATION TEXT | /remind cancel ID"]
    room.advance(10)
    assert alice.last == "* reminder: stand up"
    assert room.faults == []


def test_wordfilter_0_1_unchanged_with_its_list_checks(chatroom_room, wordfilter_0_1):
    room = chatroom_room(plugins=[("wordfilter", wordfilter_0_1)],
                         config={"wordfilter": {"words": ["spoiler"], "mask": "#"}})
    alice, bob = room.join("alice"), room.join("bob")
    alice.say("no spoiler please")
    assert bob.last == "alice: no s###### please"
    assert room.errors == []  # its isinstance(words, list) check still holds for the frozen settings
    room = chatroom_room(plugins=[("wordfilter", wordfilter_0_1)], config={"wordfilter": {"mode": "shout"}})
    assert any("mode must be one of mask, drop, not 'shout'" in line for line in room.errors)  # its own check


def test_the_five_minute_guides_plugin_and_tests_work(chatroom_room, tmp_path):
    text = DOCS.read_text(encoding="utf-8")
    guide = text[text.index("## A first plugin in five minutes"):text.index("## How plugins are found")]
    code, tests = re.findall(r"```python\n(.*?)```", guide, re.S)[:2]
    module = ModuleType("chatroom_hello")
    exec(compile(code, "chatroom_hello.py", "exec"), module.__dict__)  # noqa: S102 - our own docs
    namespace = {"chatroom_hello": module}
    exec(compile(tests.replace("import chatroom_hello\n", ""), "test_hello.py", "exec"), namespace)  # noqa: S102
    for name in ("test_hello", "test_hello_takes_one_name_at_most"):
        namespace[name](chatroom_room)


def test_ctx_command_called_as_the_old_lookup_warns_and_still_works(chatroom_room):
    found: list[object] = []

    def old_style(ctx, args):
        found.append(ctx.command("help"))  # the 0.x lookup
        ctx.reply(f"running {ctx.command.name}")

    plugin = type("P", (), {"register_commands": hookimpl(lambda self: [Command("old", old_style)])})()
    room = chatroom_room(plugins=[("old", plugin)])
    alice = room.join("alice")
    with pytest.warns(DeprecationWarning, match=r"ctx.command\(name\) is deprecated.*ctx.lookup_command\(name\)"):
        assert alice.say("/old") == ["running old"]
    assert getattr(found[0], "name") == "help"
