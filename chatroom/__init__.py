"""chatroom: a plugin-based chat-room server and terminal client.

This package's namespace is the **public plugin API**: a plugin (the
built-in ones included) imports only what it exports::

    from chatroom import Command, CommandError, Context, UsageError, hookimpl

``hookimpl`` marks hook implementations; ``Command`` declares a command (with
``Param`` typed arguments parsed into ``Args``, ``REQUIRED`` for a parameter or
setting without a default, ``Rate`` limits and ``Example`` calls) and
``CommandError``/``UsageError`` refuse a call; ``Setting`` declares a plugin's
config schema; ``Context`` is the ``ctx``
every hook and command gets; ``migrate``, ``transaction`` and
``MigrationError`` manage a plugin's SQLite store; ``Room``, ``Member``,
``Entry`` (a history line), ``SearchPage`` and ``SearchCursor`` (``ctx.search``), ``Timer`` and
``PluginInfo`` are the types the context hands out; ``Refused`` is the room model's refusal (``CommandError``
is a subclass); ``parse_uint`` parses a bounded number from user input and
``safe_name`` makes an untrusted file name safe; ``AccountStore``, ``Account``,
``hash_password``, ``verify_password`` and ``check_password`` are the accounts (``ctx.accounts``),
``author_label`` how a listing shows a verified author; ``RoomRules`` and ``Ban`` a room's moderation
(``room.rules``: owner, operators, bans, topic lock, key). Names are loaded on first use, so importing a submodule
(the client imports :mod:`chatroom.wire`) does not load the plugin machinery.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_EXPORTS = {
    "Command": "chatroom.plugins.commands",
    "CommandError": "chatroom.plugins.commands",
    "UsageError": "chatroom.plugins.commands",
    "Example": "chatroom.plugins.commands",
    "Param": "chatroom.plugins.params",
    "Args": "chatroom.plugins.params",
    "REQUIRED": "chatroom.plugins.params",
    "Rate": "chatroom.plugins.ratelimit",
    "Setting": "chatroom.plugins.config",
    "hookimpl": "chatroom.plugins.hookspecs",
    "Context": "chatroom.plugins.context",
    "PluginInfo": "chatroom.plugins.info",
    "migrate": "chatroom.model.store",
    "transaction": "chatroom.model.store",
    "MigrationError": "chatroom.model.store",
    "Refused": "chatroom.model.errors",
    "Room": "chatroom.model.room",
    "RoomRules": "chatroom.model.moderation",
    "Ban": "chatroom.model.moderation",
    "Member": "chatroom.model.member",
    "Entry": "chatroom.model.history",
    "SearchPage": "chatroom.model.search",
    "SearchCursor": "chatroom.model.search",
    "Timer": "chatroom.net.scheduler",
    "parse_uint": "chatroom.wire.numbers",
    "safe_name": "chatroom.wire.filenames",
    "Account": "chatroom.model.accounts",
    "AccountStore": "chatroom.model.accounts",
    "author_label": "chatroom.model.accounts",
    "check_password": "chatroom.model.accounts",
    "hash_password": "chatroom.model.accounts",
    "verify_password": "chatroom.model.accounts",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'chatroom' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
