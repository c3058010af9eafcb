"""Lines, private events and invitations for members of other nodes (docs/scale-out.md, "Presence").

A :class:`~chatroom.scaleout.remote.RemoteMember` (a mirror of another node's member) hands what it is sent to
:class:`DirectLines`, which publishes it on that member's node's own channel (``PREFIX:node:NAME``); the node
that holds the member reads its channel and gives it the line, the private event or the invitation
(:meth:`DirectLines.on_direct`). Pub/Sub keeps nothing: a private line that nobody heard (its node dead within
the TTL, or resubscribing) is said to its sender, and one Redis cannot take now is refused. Who is mirrored
where is :mod:`chatroom.scaleout.presence`'s job. Loop thread only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chatroom.model.errors import Refused
from chatroom.model.member import Member
from chatroom.scaleout.events import decode
from chatroom.scaleout.link import Unavailable
from chatroom.scaleout.remote import RemoteMember, encode_remote

if TYPE_CHECKING:
    from chatroom.model.hub import Hub
    from chatroom.scaleout.bus import Keys
    from chatroom.scaleout.link import RedisLink

__all__ = ["DirectLines"]


class DirectLines:
    """What this node's members send to other nodes' members, and what those send to this node's, on *link*,
    with *keys*' prefix, for *hub*. ``tell(member, line)`` sends a local member a line. ``wire`` is the hub's
    wire index of mirrors (:func:`~chatroom.scaleout.remote.encode_remote`, registered here); ``channel`` the
    prefix of every node's own channel (``PREFIX:node:``, followed by the node's name)."""

    def __init__(self, hub: Hub, link: RedisLink, keys: Keys, *, tell: Callable[[Member, str], None]) -> None:
        self.hub = hub
        self.link = link
        self.tell = tell
        self.channel = f"{keys.prefix}:node:"
        self.wire = hub.add_wire(encode_remote, variants=False)

    def _publish(self, node: str, message: dict[str, Any]) -> None:
        try:
            self.link.call("PUBLISH", self.channel + node, json.dumps(message))
        except Unavailable:
            pass  # (a line or an invitation while Redis is away is lost, as any line to a dropped connection)

    def forward(self, remote: RemoteMember, data: bytes) -> None:
        """Send what a local part of the server gave a mirrored member to its node.

        A private line (``/msg``, IRC ``PRIVMSG nick``) is never lost unsaid: Raises Refused (``not delivered
        to NICK: ...``, which its sender is answered instead of ``OK``) when Redis cannot take it now; when
        Redis took it but nobody listens on the member's node (dead within the TTL, or its subscription being
        made again: Pub/Sub keeps nothing), its sender, if a member here, is told so (``ERROR``)."""
        if data[:1] != b"\0":
            self._publish(remote.node, {"to": remote.id, "lines": data.decode("utf-8", "replace").splitlines()})
            return
        event = data[1:].decode()
        sender = self.hub.find(decode(data[1:], "", 0).event.nick)
        nick = remote.nick

        def published(receivers: Any) -> None:
            if sender is not None and not sender.gone and not isinstance(sender, RemoteMember) and (
                    receivers == 0 or isinstance(receivers, Exception)):
                why = (f"was not delivered: {nick}'s server is not answering" if receivers == 0
                       else f"may not have been delivered ({receivers})" if isinstance(receivers, Unavailable)
                       else f"was not delivered: Redis refused it ({receivers})")
                self.tell(sender, f"ERROR your private line to {nick} {why}; try again")

        try:
            self.link.call("PUBLISH", self.channel + remote.node, json.dumps({"to": remote.id, "event": event}),
                           on_reply=published)
        except Unavailable as exc:
            raise Refused(f"not delivered to {nick}: the servers' shared store (Redis) is unavailable; try again "
                          f"({exc})") from None

    def unreachable(self) -> str | None:
        """Why the other nodes cannot be told anything now (the command link is down), or None."""
        if self.link.ready:
            return None
        return f"the servers' shared store (Redis) is unavailable ({self.link.last_error or 'not connected'})"

    def forward_invite(self, remote: RemoteMember, room: str) -> None:
        """Tell *remote*'s node that it was invited to *room* (after the line saying so: same connection)."""
        self._publish(remote.node, {"to": remote.id, "invite": room})

    def on_direct(self, data: bytes) -> None:
        """A message on this node's channel: a line, a private event or an invitation for one of its members.
        Raises ValueError, KeyError or TypeError on a message that is not one (the node logs and ignores it)."""
        message = json.loads(data)
        member = self.hub.members.get(message["to"])
        if member is None or isinstance(member, RemoteMember):
            return
        if "invite" in message:
            member.invite(str(message["invite"]))
        elif "event" in message:
            self.hub.send(member, decode(message["event"].encode(), "", 0).event)
        else:
            for line in message["lines"]:
                self.tell(member, line)
