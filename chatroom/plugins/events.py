"""Plugin events derived from the room: ``member_ready``, ``message_delivered``, ``member_joined`` and
``member_left``, and quarantine notices.

The hooks are specified in :mod:`chatroom.plugins.hookspecs`. This module
only decides *when* they fire, through the plugin port
(:class:`chatroom.plugins.port.Host`); it holds no socket. Loop thread only.

- ``member_ready`` fires once per connection: just after its first ``/nick``
  or ``/login`` was answered, or ``grace`` seconds after it joined if it
  never named itself.
  Timers are only started while some plugin implements the hook.
- ``message_delivered`` fires for each room line after the pass's fan-out
  queued it (``Host.watch_rooms``), with the number of
  members it was queued to, in the order the lines were said.
- ``member_joined`` and ``member_left`` fire for every join and leave of
  every room, once the room was told (``Host.watch_rooms`` again).
- A plugin quarantined for blocking the loop (:mod:`chatroom.plugins.slowness`)
  is reported to every connected admin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatroom.model.history import Entry
    from chatroom.model.member import Member
    from chatroom.model.room import Room
    from chatroom.plugins.manager import PluginHost
    from chatroom.plugins.port import Host

__all__ = ["PluginEvents"]


class PluginEvents:
    """Fires ``member_ready`` and ``message_delivered`` through *host*, for the hooks of *plugins*."""

    def __init__(self, host: Host, plugins: PluginHost, grace: float) -> None:
        self.host = host
        self.plugins = plugins
        self.grace = grace
        self._waiting: dict[int, Any] = {}  # member id -> its grace timer
        plugins.on_quarantine = self.quarantined

    def refresh(self) -> None:
        """Ask the host for the room events some plugin needs now (at start-up, and after a reload)."""
        implemented = self.plugins.implemented
        self.host.watch_rooms(self._delivered if implemented("message_delivered") else None,
                              self._membership if implemented("member_joined") or implemented("member_left") else None)

    def stop(self) -> None:
        """No more room events (the server is closing its connections: ``client_left`` ran for them)."""
        self.host.watch_rooms(None, None)

    def quarantined(self, plugin: str, text: str) -> None:
        """*plugin* was quarantined for blocking the loop: tell every connected admin ``* TEXT``."""
        self.host.notify_admins(f"* {text}")

    # -- member_ready ----------------------------------------------------------------
    def joined(self, member: Member) -> None:
        """*member* is in (greeted, in the default room): start its grace period."""
        if self.plugins.implemented("member_ready"):
            self._waiting[member.id] = self.host.call_later(self.grace, self._ready, member)

    def named(self, member: Member) -> None:
        """*member* chose a nick or logged in: it is ready once the command that named it was answered
        (the hook runs from a zero-delay timer, so its output follows the command's ``OK``)."""
        timer = self._waiting.get(member.id)
        if timer is not None:
            timer.cancel()
            self._waiting[member.id] = self.host.call_later(0.0, self._ready, member)

    def left(self, member: Member) -> None:
        """*member* is gone: it will never be ready."""
        timer = self._waiting.pop(member.id, None)
        if timer is not None:
            timer.cancel()

    def _ready(self, member: Member) -> None:
        if self._waiting.pop(member.id, None) is not None and not member.gone:
            self.host.call_hook("member_ready", member)

    # -- message_delivered ---------------------------------------------------------------
    def _membership(self, member: Member, room: Room, joined: bool, reason: str) -> None:
        if joined:
            self.host.call_hook("member_joined", member, room=room)
        else:
            self.host.call_hook("member_left", member, room=room, reason=reason)

    def _delivered(self, room: Room, entry: Entry, author: Member | None, recipients: int) -> None:
        author = author if author is not None and not author.gone else None
        self.host.call_hook("message_delivered", author, room=room, entry=entry, recipients=recipients)
