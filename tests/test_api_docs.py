"""docs/api.md is the plugin API reference, generated from the docstrings of what ``chatroom`` exports.

After changing a public docstring or signature, regenerate it with::

    python tests/test_api_docs.py

The tests fail when the page is out of date, when a public name has no
docstring, or when ``chatroom`` exports something the page does not cover.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import pytest

import chatroom

DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"

#: (section, exported names), in the order the page shows them.
SECTIONS: list[tuple[str, list[str]]] = [
    ("The context", ["Context", "ContextExpired"]),
    ("Commands", ["Command", "Param", "Args", "REQUIRED", "Rate", "Example", "CommandError", "UsageError"]),
    ("Configuration", ["Setting"]),
    ("Hooks", ["hookimpl"]),
    ("Rooms, members, history, timers", ["Room", "Member", "Entry", "SearchPage", "SearchCursor", "Timer", "RoomRules", "Ban",
                                         "Refused"]),
    ("Plugins", ["PluginInfo"]),
    ("Storage", ["migrate", "transaction", "MigrationError"]),
    ("Accounts", ["AccountStore", "Account", "hash_password", "verify_password", "check_password", "author_label"]),
    ("Helpers", ["parse_uint", "safe_name"]),
]

HEADER = """# Plugin API reference

Everything a plugin may use is exported by the `chatroom` package (`from chatroom import Context, Command`);
anything else is private and may change without notice. This page is generated from the docstrings
(`python tests/test_api_docs.py`; a test fails when it is out of date). The guide is
[plugins.md](plugins.md); the hooks are specified in its [hooks reference](plugins.md#hooks-reference).

Threads: unless a docstring says otherwise, call these on the loop thread only (in a hook, a command, a
timer or an `on_done` callback). From another thread the context's methods raise `RuntimeError` naming the
method; `ctx.call_soon_threadsafe` is the way back onto the loop.
"""


def _doc(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__ or "").strip()


def _signature(name: str, obj: Any) -> str:
    try:
        return f"{name}{inspect.signature(obj)}"
    except (TypeError, ValueError):
        return name


def _members(cls: type) -> list[tuple[str, Any]]:
    """Public attributes defined by *cls* and its chatroom bases, in source order (bases first)."""
    seen: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if not klass.__module__.startswith("chatroom"):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or name in ("args", "text", "plugin", "client"):
                continue
            if isinstance(value, type):  # a dataclass field whose default is a type (Param.type = str)
                continue
            if callable(value) or isinstance(value, (property, staticmethod, classmethod)):
                seen[name] = value
    return list(seen.items())


def render_object(name: str, obj: Any) -> list[str]:
    lines: list[str] = []
    if inspect.isclass(obj):
        lines += [f"### class `{_signature(name, obj) if not issubclass(obj, BaseException) else name}`", ""]
        lines += [_doc(obj), ""]
        for member, value in _members(obj):
            func = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
            if isinstance(value, property):
                title = f"`{name}.{member}` (property)"
            else:
                title = f"`{name}.{_signature(member, func)}`"
            lines += [f"#### {title}", "", _doc(func) or "(no docstring)", ""]
    elif callable(obj):
        lines += [f"### `{_signature(name, obj)}`", "", _doc(obj), ""]
    else:
        lines += [f"### `{name}`", "", f"A constant: `{obj!r}`.", ""]
    return lines


def render() -> str:
    out = [HEADER]
    for section, names in SECTIONS:
        out += [f"## {section}", ""]
        for name in names:
            out += render_object(name, getattr(chatroom, name))
    return "\n".join(out).rstrip() + "\n"


def test_every_export_is_on_the_page():
    covered = {n for _, names in SECTIONS for n in names}
    assert sorted(set(chatroom.__all__) - covered - {"__version__"}) == []


@pytest.mark.parametrize("name", [n for _, names in SECTIONS for n in names if n not in ("REQUIRED", "hookimpl")])
def test_every_public_name_has_a_docstring(name):
    obj = getattr(chatroom, name)
    assert _doc(obj), f"chatroom.{name} has no docstring"
    if inspect.isclass(obj):
        missing = [m for m, v in _members(obj)
                   if not _doc(v.fget if isinstance(v, property) else getattr(v, "__func__", v))]
        assert missing == [], f"chatroom.{name}: these have no docstring: {missing}"


def test_docs_api_page_matches_the_docstrings():
    assert DOC.exists() and DOC.read_text(encoding="utf-8") == render(), (
        "docs/api.md is out of date: run  python tests/test_api_docs.py")


if __name__ == "__main__":
    DOC.write_text(render(), encoding="utf-8")
    print(f"wrote {DOC}", file=sys.stderr)
