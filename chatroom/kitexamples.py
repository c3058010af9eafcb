"""Run the ``examples`` commands declare as tests (part of the plugin test kit, :mod:`chatroom.testing`).

A command's :class:`~chatroom.plugins.commands.Example` calls are shown by
``/help NAME``; this makes each one a pytest test, so documentation that
stops being true fails the build (after Sopel's ``@plugin.example``)::

    # tests/test_examples.py of a plugin distribution
    import chatroom_poll
    from chatroom.testing import example_tests

    test_examples = example_tests(("poll", chatroom_poll))

Each example runs in a fresh :class:`~chatroom.testing.InProcessRoom` with
the plugins given (and the built-ins), where ``alice`` types the example's
line while ``bob`` is in the room too; the lines alice then receives must
equal the example's replies (or, with ``regex=True``, each match its
pattern in full). Main thread of the test only.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any

import pytest

from chatroom.plugins.commands import Command, Example
from chatroom.plugins.info import PluginInfo
from chatroom.plugins.loader import ENTRY_POINT_GROUP
from chatroom.plugins.manager import PluginHost

__all__ = ["check_example", "collect_examples", "example_tests", "plugin_name"]


def plugin_name(plugin: object) -> str:
    """The name a real server would give *plugin*: its entry point's name when an installed
    distribution declares it (``name = "pkg.mod"`` for a module, ``name = "pkg.mod:obj"`` for an object),
    else the module's last dotted part (or the object's class name, lower-cased)."""
    module = getattr(plugin, "__name__", None)
    if isinstance(plugin, ModuleType) and isinstance(module, str) and module:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.value == module:
                return ep.name
        return module.rsplit(".", 1)[-1]
    home = getattr(plugin, "__module__", None) or type(plugin).__module__
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):  # a "module:object" entry point
        if ep.module == home and ep.attr:
            try:
                if ep.load() is plugin:
                    return ep.name
            except Exception:  # noqa: BLE001 - someone else's broken distribution: not this plugin
                continue
    return str(module or type(plugin).__name__).rsplit(".", 1)[-1].lower()


def _named(plugins: Iterable[object | tuple[str, object]]) -> list[tuple[str, object]]:
    return [item if isinstance(item, tuple) else (plugin_name(item), item) for item in plugins]


def collect_examples(plugins: Iterable[object | tuple[str, object]] = (), *,
                     builtins: bool = False) -> list[tuple[Command, Example]]:
    """Every (command, example) the given plugins declare (with *builtins*: the built-ins' too), in
    registration order; subcommands' examples follow their command's. Raises ValueError if a plugin
    fails to load."""
    host = PluginHost()
    if builtins:
        host.load_builtins()
    names = set()
    for name, plugin in _named(plugins):
        names.add(name)
        host.register(plugin, name, PluginInfo(name, "test"))
    host.finish_loading()
    if host.load_errors:
        raise ValueError("; ".join(host.load_errors))
    found = []
    for command in host.registry.commands:
        if command.plugin in names or builtins:
            for cmd in (command, *command.subcommands):
                found += [(cmd, Example.of(example)) for example in cmd.examples]  # (Examples already)
    return found


def check_example(room: Any, example: Example) -> None:
    """Run *example* in *room* (an InProcessRoom): alice says its line; raise AssertionError on a mismatch."""
    alice = room.join("alice")
    room.join("bob")
    alice.clear()
    got = alice.say(example.line)
    want = list(example.replies)
    if example.regex:
        ok = len(got) == len(want) and all(re.fullmatch(p, line) for p, line in zip(want, got))
    else:
        ok = got == want
    if not ok:
        raise AssertionError(f"example {example.line!r}: expected {want!r}, got {got!r}")


def example_tests(*plugins: object | tuple[str, object], builtins: bool = False,
                  config: Mapping[str, Mapping[str, Any]] | None = None, **room_options: Any) -> Callable[..., None]:
    """A pytest test function with one case per example the *plugins* declare; assign it to a
    ``test_...`` name in a test module. *builtins* also collects the built-in commands' examples;
    *config* and *room_options* are passed to each :class:`~chatroom.testing.InProcessRoom`."""
    cases = collect_examples(plugins, builtins=builtins)
    if not cases:
        raise ValueError("example_tests: these plugins declare no examples")

    def test_example(chatroom_room: Any, example: Example) -> None:
        check_example(chatroom_room(plugins, config=config, **room_options), example)

    # (pytest types its mark decorators' result loosely: the marked function, as declared here)
    marked: Callable[..., None] = pytest.mark.parametrize(
        "example", [e for _, e in cases], ids=[f"/{c.name}: {e.line}" for c, e in cases])(test_example)
    return marked
