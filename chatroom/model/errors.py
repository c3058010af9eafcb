"""The one error the room model raises: a request refused, with a reason people can read (and its kind for
entering a room, :class:`JoinRefused`, or speaking in one, :class:`SpeakRefused`)."""

from __future__ import annotations

__all__ = ["JoinRefused", "NickRefused", "Refused", "RuleRefused", "SpeakRefused"]


class Refused(Exception):
    """A request the model refuses (a taken nick, a bad room name...); ``str(exc)`` is the reason.

    The command layer's :class:`chatroom.plugins.commands.CommandError` is a
    subclass, so a refusal reaches the caller as ``ERROR <reason>``.
    """


class RuleRefused(Refused):
    """A room's rule refuses a member: ``str(exc)`` is the reason in words, ``block`` the rule that refused as
    a word, for a door that answers in its own codes instead (IRC's numerics)."""

    def __init__(self, reason: str, block: str) -> None:
        super().__init__(reason)
        self.block = block


class JoinRefused(RuleRefused):
    """A room's rules refuse to let a member in (:func:`chatroom.model.access.check_join`): ``str(exc)`` is the
    reason in words (``you are banned from #den``...), ``block`` the rule that refused as a word (``"banned"``,
    ``"invite"``, ``"key"``, ``"full"``), for a door that answers with its own codes (IRC's 474, 473, 475, 471)."""


class SpeakRefused(RuleRefused):
    """A room's rules refuse a member's chat line (:meth:`chatroom.model.rooms.Rooms.speak_refusal`, which returns
    it rather than raising it): ``str(exc)`` the reason in words (``#den is moderated: ...``), ``block``
    ``"outside"`` (not a member, and the room takes no lines from outside), ``"banned"`` or ``"moderated"``,
    for IRC's ``404`` reasons."""


class NickRefused(RuleRefused):
    """A room's ban refuses a member's nick change (:meth:`chatroom.model.rooms.Rooms.nick_refusal`): ``str(exc)``
    the reason in words (``you are banned from #den: you cannot change your nick there``), ``block``
    ``"banned"``, ``room`` the room's name (``#den``), for IRC's ``435 ERR_BANNICKCHANGE``."""

    def __init__(self, reason: str, block: str, room: str) -> None:
        super().__init__(reason, block)
        self.room = room
