"""chatroom: a plugin-based chat-room server and terminal client.

This package's namespace is the **public plugin API**: a plugin (the
built-in ones included) imports only what it exports::

    from chatroom import Command, CommandError, Context, UsageError, hookimpl

``hookimpl`` marks hook implementations; ``Command`` declares a command (with
``Param`` typed arguments parsed into ``Args``, ``REQUIRED`` for a parameter or
setting without a default, ``Rate`` limits and ``Example`` calls) and
``CommandError``/``UsageError`` refuse a call; ``Setting`` declares a plugin's
config schema; ``Context`` is the ``ctx``
every hook and command gets (``ContextExpired``: one used for a client that left); ``migrate``, ``transaction`` and
``MigrationError`` manage a plugin's SQLite store; ``Room``, ``Member``,
``Entry`` (a history line), ``SearchPage`` and ``SearchCursor`` (``ctx.search``), ``Timer`` and
``PluginInfo`` are the types the context hands out; ``Refused`` is the room model's refusal (``CommandError``
is a subclass); ``parse_uint`` parses a bounded number from user input and
``safe_name`` makes an untrusted file name safe; ``AccountStore``, ``Account``,
``hash_password``, ``verify_password`` and ``check_password`` are the accounts (``ctx.accounts``),
``author_label`` how a listing shows a verified author; ``RoomRules`` and ``Ban`` a room's moderation
(``room.rules``: owner, operators, bans, topic lock, key).

The re-exports are static imports, so the import contracts (tests/test_layers.py) see them: a lower floor
that imported ``chatroom`` would reach the plugin floor through it, which the layer contract refuses. They
run on first use of a name (PEP 562 ``__getattr__``), so importing a submodule (the client imports
:mod:`chatroom.wire`) does not load the plugin machinery; type checkers read the ``TYPE_CHECKING`` block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatroom.model.accounts import (
        Account,
        AccountStore,
        author_label,
        check_password,
        hash_password,
        verify_password,
    )
    from chatroom.model.errors import Refused
    from chatroom.model.history import Entry
    from chatroom.model.member import Member
    from chatroom.model.moderation import Ban, RoomRules
    from chatroom.model.room import Room
    from chatroom.model.search import SearchCursor, SearchPage
    from chatroom.model.store import MigrationError, migrate, transaction
    from chatroom.net.scheduler import Timer
    from chatroom.plugins.commands import Command, CommandError, Example, UsageError
    from chatroom.plugins.config import Setting
    from chatroom.plugins.context import Context
    from chatroom.plugins.hookspecs import hookimpl
    from chatroom.plugins.info import PluginInfo
    from chatroom.plugins.params import REQUIRED, Args, Param
    from chatroom.plugins.ratelimit import Rate
    from chatroom.plugins.threads import ContextExpired
    from chatroom.wire.filenames import safe_name
    from chatroom.wire.numbers import parse_uint

__version__ = "0.2.0"

__all__ = [
    "Account", "AccountStore", "Args", "Ban", "Command", "CommandError", "Context", "ContextExpired", "Entry",
    "Example", "Member", "MigrationError", "Param", "PluginInfo", "REQUIRED", "Rate", "Refused", "Room",
    "RoomRules", "SearchCursor", "SearchPage", "Setting", "Timer", "UsageError", "__version__", "author_label",
    "check_password", "hash_password", "hookimpl", "migrate", "parse_uint", "safe_name", "transaction",
    "verify_password"
]


def __getattr__(name: str) -> Any:
    """The plugin API's names, imported on first use of any of them (``AttributeError`` for any other name)."""
    if name not in __all__:
        raise AttributeError(f"module 'chatroom' has no attribute {name!r}")
    from chatroom.model import accounts, errors, history, member, moderation, room, search, store
    from chatroom.net import scheduler
    from chatroom.plugins import commands, config, context, hookspecs, info, params, ratelimit, threads
    from chatroom.wire import filenames, numbers

    for module in (accounts, errors, history, member, moderation, room, search, store, scheduler, commands, config,
                   context, hookspecs, info, params, ratelimit, threads, filenames, numbers):
        globals().update({n: getattr(module, n) for n in __all__ if n not in globals() and hasattr(module, n)})
    return globals()[name]


def __dir__() -> list[str]:
    return __all__
