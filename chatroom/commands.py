"""Kept for plugins written before chatroom 0.2: commands now live in :mod:`chatroom.plugins.commands`;
import them from :mod:`chatroom` (``from chatroom import Command``)."""

import warnings

warnings.warn("chatroom.commands is deprecated since plugin API 1.0 and will go in 2.0: from chatroom import Command, CommandError, UsageError",
              DeprecationWarning, stacklevel=2)


from chatroom.plugins.commands import NOT_UNDERSTOOD, Command, CommandError, Handler, Registry, UsageError

__all__ = ["NOT_UNDERSTOOD", "Command", "CommandError", "Handler", "Registry", "UsageError"]
