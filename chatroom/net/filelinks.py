"""One-time file links: how members whose door has no file frames (IRC) take and give files, over the web listener.

:class:`Links` is one part the relay (:class:`chatroom.net.relay.Relay`)
holds, beside quota, consent and backpressure. No DCC, no spooling: a link
is a way into the relay's own flow (docs/irc.md, "Files").

- **Taking a file.** When a file is offered to a room, a member that takes
  links (an IRC client: ``takes_links``) is asked like a ``/files ask``
  member, with a ``NOTICE`` instead of a ``file-offer`` frame: name, size,
  sender, room and a one-time link ``/f/TOKEN`` on the web listener
  (HTTPS with ``--tls``). Fetching the link *is* the acceptance: the HTTP
  connection becomes that member's receiver of the transfer and the sender's
  report names the member. ``/quote decline ID`` declines; no fetch within
  the offer timeout counts as no answer. The link is valid while the offer
  waits for that member (one use); then ``410 Gone``.
- **Giving a file.** ``SENDFILE [#room]`` from an IRC client answers with a
  one-time upload link ``/u/TOKEN/`` (``curl -T FILE URL``): the upload
  (``PUT`` or ``POST`` of the raw bytes, with a ``Content-Length``) becomes
  an ordinary offer to the room, from that member, under its quota.

A token is 32 characters of :func:`secrets.token_urlsafe` (192 bits),
bound to one member (and one transfer, or one room): unknown tokens are
``404``, spent or expired ones ``410`` (the last :data:`ENDED_MEMORY` are
remembered). Without a web listener, the offer's ``NOTICE`` says that files
need one. Loop thread only.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chatroom.net.transfer import RelayHost, Transfer

if TYPE_CHECKING:
    from chatroom.net.connection import Connection as Client

__all__ = ["ENDED_MEMORY", "UPLOAD_TIMEOUT", "Link", "Links", "NO_WEB", "link_base"]

#: Seconds an upload link stays valid once given.
UPLOAD_TIMEOUT = 600.0
#: Spent or expired tokens remembered, so they answer 410 rather than 404.
ENDED_MEMORY = 4096
#: What an IRC member hears when a file cannot reach it.
NO_WEB = ("files reach IRC clients through the server's web listener, which this server does not run "
          "(its operator enables it: chatroom-server without --web-port off)")


def link_base(scheme: str, port: int) -> Callable[[Any], str]:
    """``base(member)`` for :class:`Links`: the web listener (*scheme* ``http`` or ``https``, *port*) at the
    address *member*'s own connection came in on, so the link works from where the member is
    (``http://192.168.1.5:8080``; IPv6 in brackets)."""

    def base(member: Any) -> str:
        try:
            host = str(member.sock.getsockname()[0]).partition("%")[0]
        except (OSError, AttributeError, IndexError):
            host = "127.0.0.1"
        if host.startswith("::ffff:") and "." in host:
            host = host[7:]
        return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"

    return base


@dataclass(eq=False)
class Link:
    """One link: ``token``, ``kind`` (``"get"``: take *transfer*; ``"put"``: give a file to *room*), the
    ``member`` it is bound to, and until when (``expires``, ``clock()`` seconds; 0: while the offer waits)."""

    token: str
    kind: str
    member: Client
    transfer: Transfer | None = None
    room: Any = None
    expires: float = 0.0


class Links:
    """The open links by token, and the tokens that ended.

    *host* sends the notices; ``base(member)`` is the web listener's URL as *member* reached this server
    (``http://127.0.0.1:8080``), or None without a web listener (the server sets it once the web door is open).
    """

    def __init__(self, host: RelayHost, *, clock: Callable[[], float] = time.monotonic,
                 upload_timeout: float = UPLOAD_TIMEOUT) -> None:
        self.host = host
        self.clock = clock
        self.upload_timeout = upload_timeout
        self.base: Callable[[Any], str | None] = lambda member: None
        self.open: dict[str, Link] = {}
        self.ended: OrderedDict[str, None] = OrderedDict()

    # -- taking a file -------------------------------------------------------------------------------
    def offer(self, transfer: Transfer, member: Client, timeout: float) -> bool:
        """Tell *member* of *transfer* with a one-time link; False (and a notice saying why) without a web listener."""
        sender, room = transfer.sender, getattr(transfer.sender, "room", None)
        where = f" in {room.name}" if room is not None else ""
        what = f'{sender.nick} offers "{transfer.name}" ({transfer.size} bytes){where}'
        base = self.base(member)
        if base is None:
            self.host.send_line(member, f"* {what}, but {NO_WEB}")
            return False
        link = self._issue("get", member, transfer=transfer)
        self.host.send_line(member, f"* {what}: {base}/f/{link.token} (one download, valid for {timeout:g} s; "
                                    f"the SHA-256 follows when it is done; /quote decline {transfer.id} refuses it)")
        return True

    def fetch(self, token: str) -> Link | int:
        """The download link *token* names, now spent; or the HTTP status to answer (404 unknown, 410 ended)."""
        link = self._take(token, "get")
        if isinstance(link, int):
            return link
        transfer = link.transfer
        if transfer is None or link.member.id not in transfer.asked or link.member.closed:
            return 410
        return link

    def transfer_ended(self, transfer: Transfer) -> None:
        """*transfer*'s offer is over (decided or ended): its links are spent."""
        for token in [t for t, link in self.open.items() if link.transfer is transfer]:
            self._end(token)

    def answered(self, transfer: Transfer, member: Client) -> None:
        """*member* answered *transfer* another way (``decline``, left): its link is spent."""
        for token in [t for t, link in self.open.items() if link.transfer is transfer and link.member is member]:
            self._end(token)

    # -- giving a file ------------------------------------------------------------------------------
    def upload(self, member: Client, room: Any) -> str | None:
        """A one-time upload link of *member* to *room* (the URL, ending in ``/``), or None without a web listener."""
        base = self.base(member)
        if base is None:
            return None
        for token in [t for t, link in self.open.items() if link.kind == "put" and link.member is member]:
            self._end(token)  # one upload link per member at a time: the newest
        link = self._issue("put", member, room=room, expires=self.clock() + self.upload_timeout)
        return f"{base}/u/{link.token}/"

    def put(self, token: str) -> Link | int:
        """The upload link *token* names, now spent; or the HTTP status to answer (404, 410)."""
        link = self._take(token, "put")
        if isinstance(link, int):
            return link
        if link.member.closed or link.expires <= self.clock():
            return 410
        return link

    def owner(self, token: str) -> Any:
        """The member an open link *token* is bound to (None: no such open link); the link stays unspent."""
        link = self.open.get(token)
        return link.member if link is not None else None

    # -- lifetime -------------------------------------------------------------------------------------
    def left(self, member: Client) -> None:
        """*member* is gone: its links are spent."""
        for token in [t for t, link in self.open.items() if link.member is member]:
            self._end(token)

    def expire(self, now: float) -> None:
        """Upload links past their time are spent."""
        for token in [t for t, link in self.open.items() if link.expires and link.expires <= now]:
            self._end(token)

    def _issue(self, kind: str, member: Client, **more: Any) -> Link:
        link = Link(secrets.token_urlsafe(24), kind, member, **more)
        self.open[link.token] = link
        return link

    def _take(self, token: str, kind: str) -> Link | int:
        link = self.open.get(token)
        if link is None or link.kind != kind:
            return 410 if token in self.ended else 404
        self._end(token)
        return link

    def _end(self, token: str) -> None:
        self.open.pop(token, None)
        self.ended[token] = None
        while len(self.ended) > ENDED_MEMORY:
            self.ended.popitem(last=False)
