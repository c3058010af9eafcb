"""The one error the room model raises: a request refused, with a reason people can read."""

from __future__ import annotations

__all__ = ["Refused"]


class Refused(Exception):
    """A request the model refuses (a taken nick, a bad room name...); ``str(exc)`` is the reason.

    The command layer's :class:`chatroom.plugins.commands.CommandError` is a
    subclass, so a refusal reaches the caller as ``ERROR <reason>``.
    """
