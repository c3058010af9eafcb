"""Plugin events the server assembly derives from the room: ``member_ready`` and ``message_delivered``.

Both hooks are specified in :mod:`chatroom.plugins.hookspecs`. This module
only decides *when* they fire; it holds no socket. Loop thread only.

- ``member_ready`` fires once per connection: just after its first ``/nick``
  or ``/login`` was answered, or ``grace`` seconds after it joined if it
  never named itself.
  Timers are only started while some plugin implements the hook.
- ``message_delivered`` fires for each room line after the pass's fan-out
  queued it (:attr:`chatroom.model.hub.Hub.on_delivered`), with the number of
  members it was queued to, in the order the lines were said.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from chatroom.model.history import Entry
    from chatroom.model.member import Member
    from chatroom.model.room import Room

__all__ = ["PluginEvents"]


class PluginEvents:
    """Fires ``member_ready`` and ``message_delivered`` for *server* (the assembly: ``plugins``,
    ``loop.call_later``, ``call_hook(hook, member, **kwargs)``, ``find_client``)."""

    def __init__(self, server: Any, grace: float) -> None:
        self.server = server
        self.grace = grace
        self._waiting: dict[int, Any] = {}  # member id -> its grace timer
        server.plugins.on_quarantine = self.quarantined

    def quarantined(self, plugin: str, text: str) -> None:
        """*plugin* was quarantined for blocking the loop: tell every connected admin ``* TEXT``."""
        admins = self.server.admins
        for member in list(self.server.hub.members.values()):
            if member.account is not None and member.account.casefold() in admins:
                self.server.send_line(member, f"* {text}")

    # -- member_ready ----------------------------------------------------------------
    def joined(self, member: Member) -> None:
        """*member* is in (greeted, in the default room): start its grace period."""
        if self.server.plugins.implemented("member_ready"):
            self._waiting[member.id] = self.server.loop.call_later(self.grace, self._ready, member)

    def named(self, member: Member) -> None:
        """*member* chose a nick or logged in: it is ready once the command that named it was answered
        (the hook runs from a zero-delay timer, so its output follows the command's ``OK``)."""
        timer = self._waiting.get(member.id)
        if timer is not None:
            timer.cancel()
            self._waiting[member.id] = self.server.loop.call_later(0.0, self._ready, member)

    def left(self, member: Member) -> None:
        """*member* is gone: it will never be ready."""
        timer = self._waiting.pop(member.id, None)
        if timer is not None:
            timer.cancel()

    def _ready(self, member: Member) -> None:
        if self._waiting.pop(member.id, None) is not None and not member.gone:
            self.server.call_hook("member_ready", member)

    # -- message_delivered ---------------------------------------------------------------
    def delivered_hook(self) -> Callable[[Room, Entry, Member | None, int], None] | None:
        """The callback for :attr:`chatroom.model.hub.Hub.on_delivered`: None while no plugin implements it."""
        return self._delivered if self.server.plugins.implemented("message_delivered") else None

    def _delivered(self, room: Room, entry: Entry, author: Member | None, recipients: int) -> None:
        author = author if author is not None and not author.gone else None
        self.server.call_hook("message_delivered", author, room=room, entry=entry, recipients=recipients)
