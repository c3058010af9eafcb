"""chatroom: a plugin-based chat-room server and terminal client.

Plugin authors need only what this package exports: ``hookimpl`` to mark
hook implementations, ``Command`` to declare commands, and the errors a
command handler raises to refuse a call.
"""

from chatroom.plugins.commands import Command, CommandError, UsageError
from chatroom.plugins.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["Command", "CommandError", "UsageError", "hookimpl", "__version__"]
