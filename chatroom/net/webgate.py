"""Which HTTP requests the web listener answers, and how, sans-I/O (no sockets: tested with bare requests).

:class:`Gate` decides for one parsed request (:class:`~chatroom.net.webproto.HttpRequest`):
a refusal (:class:`Refusal`: status, a short text of ours, extra headers),
a WebSocket upgrade, or a file of the page. The rules (docs/protocol.md,
"WebSocket and JSON events"):

- ``Host`` must be one of the server's own names or addresses
  (:class:`Hosts`): a page of another site on a name that resolves to the
  server (DNS rebinding) is refused before anything else, so an ``Origin``
  equal to its ``Host`` proves nothing by itself;
- ``/ws`` needs a ``GET`` with ``Upgrade: websocket``, an allowed ``Origin``
  (the page's own, or one of ``--web-origin``) and
  ``Sec-WebSocket-Version: 13`` (otherwise ``426`` naming it, RFC 6455 4.4);
- ``/f/TOKEN`` needs a ``GET``, ``/u/TOKEN/NAME`` a ``PUT`` or ``POST`` (one-time
  file links, :mod:`chatroom.net.webfiles`); no other request may have a body;
- anything else is ``GET`` or ``HEAD`` of the static files.

Any thread (a :class:`Gate` is read-only once built).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import NamedTuple

import h11

from chatroom.net.webhttp import HOST, StaticFiles, respond
from chatroom.net.webproto import HttpRequest

__all__ = ["UPGRADE_HEADERS", "Gate", "Hosts", "Refusal", "host_name", "origin_key"]

#: What a 426 carries: the upgrade to make and the one WebSocket version spoken (RFC 6455, 4.4).
UPGRADE_HEADERS = ((b"upgrade", b"websocket"), (b"sec-websocket-version", b"13"))


class Refusal(NamedTuple):
    """Answer ``status`` with the text ``reason`` and the ``extra`` headers, then close; ``log``, if not empty,
    says why in the server's log."""

    status: int
    reason: str
    extra: tuple[tuple[bytes, bytes], ...] = ()
    log: str = ""


def origin_key(text: str) -> str:
    """An origin compared as browsers send it: lower case, no trailing slash, no default port."""
    text = text.strip().lower().rstrip("/")
    for scheme, port in (("http://", ":80"), ("https://", ":443")):
        if text.startswith(scheme) and text.endswith(port):
            return text[: -len(port)]
    return text


def host_name(host: str) -> str:
    """A ``Host`` value or a configured name as compared: lower case, no port, no brackets, no final dot; an
    address in its canonical form; ``""`` when *host* is not a valid host (:data:`~chatroom.net.webhttp.HOST`)."""
    if not HOST.fullmatch(host):
        return ""
    name = host[1:host.index("]")] if host.startswith("[") else host.partition(":")[0]
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower().rstrip(".")


class Hosts:
    """The ``Host`` names and addresses the web listener answers to, against DNS rebinding.

    A request is answered when its ``Host`` (port ignored) is one of *names*
    (the machine's names, the bound host, ``--web-host``; ``"*"``: any),
    ``localhost`` or a name under it (RFC 6761: always loopback), a loopback
    address, or the address the connection came in on (someone typed the
    server's address). A request without ``Host`` (HTTP/1.0: not a browser) passes.
    """

    def __init__(self, names: Iterable[str]) -> None:
        given = set(names)
        self.any = "*" in given
        self.names = {key for key in (host_name(name) for name in given - {"*"}) if key} | {"localhost"}

    def allows(self, host: bytes | None, local: str) -> bool:
        """May a request with this ``Host`` header, on a connection to the address *local* (``getsockname()``'s
        host, ``""`` if unknown), be answered?"""
        if host is None or self.any:
            return True
        name = host_name(host.decode("latin-1"))
        if name in self.names or name.endswith(".localhost"):
            return True
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return False
        return address.is_loopback or address == _unmapped(local)


def _unmapped(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """*text* as an address; an IPv4-mapped IPv6 one (``::ffff:a.b.c.d``, from a dual-stack listener) as IPv4."""
    try:
        address = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


class Gate:
    """The web listener's rules for one request: *static* files, *hosts* answered, *origins* allowed besides
    the page's own (``"*"``: any), *scheme* (``http`` or ``https``) of the page's own origin."""

    def __init__(self, static: StaticFiles, hosts: Hosts, origins: Iterable[str] = (), scheme: str = "http") -> None:
        self.static = static
        self.hosts = hosts
        self.origins = {origin_key(o) for o in origins}
        self.scheme = scheme

    @staticmethod
    def websocket(request: HttpRequest) -> bool:
        """Does *request* name the WebSocket (``/ws``)?"""
        return request.target.split(b"?", 1)[0] == b"/ws"

    def check(self, request: HttpRequest, local: str) -> Refusal | None:
        """Why *request* (on a connection to the address *local*) is refused, or None."""
        headers, host = request.headers, request.headers.get(b"host")
        if request.body is not None and request.target[:3] != b"/u/":
            return Refusal(400, "request bodies are not accepted")
        if not self.hosts.allows(host, local):
            shown = (host or b"").decode("latin-1")[:100]
            return Refusal(403, f"this server does not answer to the name {shown} (chatroom-server --web-host "
                                "NAME adds it)", log=f"host {shown!r} is not one of the server's")
        link = request.target[:3]
        if link in (b"/f/", b"/u/"):
            allowed = (b"GET",) if link == b"/f/" else (b"PUT", b"POST")
            if request.method not in allowed:
                return Refusal(405, f"{' or '.join(m.decode() for m in allowed)} only", ((b"allow", b", ".join(allowed)),))
            return None
        if not self.websocket(request):
            if request.method not in (b"GET", b"HEAD"):
                return Refusal(405, "GET or HEAD only", ((b"allow", b"GET, HEAD"),))
            return None
        if headers.get(b"upgrade", b"").lower() != b"websocket":
            return Refusal(426, "this is the WebSocket: connect with a WebSocket upgrade", UPGRADE_HEADERS)
        if request.method != b"GET":
            return Refusal(405, "GET only", ((b"allow", b"GET"),))
        origin = headers.get(b"origin")
        if not self._origin_allowed(origin, host):
            shown = (origin or b"").decode("latin-1")[:100]
            return Refusal(403, f"origin {shown} is not allowed (chatroom-server --web-origin)",
                           log=f"a WebSocket from origin {shown!r}")
        if headers.get(b"sec-websocket-version") != b"13":
            return Refusal(426, "only WebSocket version 13 (RFC 6455) is spoken here", UPGRADE_HEADERS)
        return None

    def _origin_allowed(self, origin: bytes | None, host: bytes | None) -> bool:
        if origin is None:  # not a browser: Origin is what protects a browser's user from other pages
            return True
        given = origin_key(origin.decode("latin-1"))
        if "*" in self.origins or given in self.origins:
            return True
        return host is not None and given == origin_key(f"{self.scheme}://{host.decode('latin-1')}")

    def answer(self, http: h11.Connection, request: HttpRequest) -> bytes:
        """The whole answer to a ``GET``/``HEAD`` of a file on *http*: 200, 304 for a matching ``If-None-Match``,
        or 404."""
        host, head = request.headers.get(b"host"), request.method == b"HEAD"
        found = self.static.get(request.target)
        if found is None:
            return respond(http, 404, body=b"not found\n", host=host, head=head)
        body, content_type, etag = found
        match = etag in request.headers.get(b"if-none-match", b"")
        return respond(http, 304 if match else 200, body=body, content_type=content_type, etag=etag, host=host,
                       head=head)
