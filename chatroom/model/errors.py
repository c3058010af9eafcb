"""The one error the room model raises: a request refused, with a reason people can read (and its kind for
entering a room, :class:`JoinRefused`)."""

from __future__ import annotations

__all__ = ["JoinRefused", "Refused"]


class Refused(Exception):
    """A request the model refuses (a taken nick, a bad room name...); ``str(exc)`` is the reason.

    The command layer's :class:`chatroom.plugins.commands.CommandError` is a
    subclass, so a refusal reaches the caller as ``ERROR <reason>``.
    """


class JoinRefused(Refused):
    """A room's rules refuse to let a member in (:func:`chatroom.model.access.check_join`): ``str(exc)`` is the
    reason in words (``you are banned from #den``...), ``block`` the rule that refused as a word (``"banned"``,
    ``"invite"``, ``"key"``, ``"full"``), for a door that answers with its own codes (IRC's 474, 473, 475, 471)."""

    def __init__(self, reason: str, block: str) -> None:
        super().__init__(reason)
        self.block = block
