"""Kept for plugins written before chatroom 0.2: commands now live in :mod:`chatroom.plugins.commands`;
import them from :mod:`chatroom` (``from chatroom import Command``)."""

from chatroom.plugins.commands import NOT_UNDERSTOOD, Command, CommandError, Handler, Registry, UsageError

__all__ = ["NOT_UNDERSTOOD", "Command", "CommandError", "Handler", "Registry", "UsageError"]
