"""The server's doors, opened at start-up: the line transport, TLS beside it, the web door and the IRC door.

:func:`open_doors` builds a transport on each listener the server's :class:`~chatroom.server.claim.Claim` holds,
all with the same budgets (:class:`Budgets`, from the options: docs/protocol.md, "Budgets and limits") and
sharing the line transport's ids and connections, and says where each listens. Loop thread, once.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, TypedDict

from chatroom.model.hub import Hub
from chatroom.net.budget import FloodPolicy
from chatroom.net.ircport import IrcApplication
from chatroom.net.irctransport import open_irc
from chatroom.net.loop import Loop
from chatroom.net.tcp import LineTransport
from chatroom.net.tls import TLSGate
from chatroom.net.web import WebApplication, _version, open_web
from chatroom.server.claim import Claim
from chatroom.server.options import ServerOptions

__all__ = ["Budgets", "DoorsApplication", "Doors", "open_doors"]


class Budgets(TypedDict):
    """The budgets every transport of a server shares (:class:`~chatroom.net.tcp.LineTransport`'s keywords)."""

    flood: FloodPolicy
    partial_timeout: float
    max_per_address: int


class DoorsApplication(WebApplication, IrcApplication, Protocol):
    """What every door needs of the application (:class:`chatroom.server.app.Server`, checked where it passes
    itself to :func:`open_doors`): the web door's and the IRC door's interfaces, both over ``Application``."""


class Doors(NamedTuple):
    """The open doors: ``transport`` the main port's (clear or TLS), ``transports`` every one (it first), and the
    ``(host, port)`` each listens on (None, or no IRC address: that door is closed)."""

    transport: LineTransport
    transports: list[LineTransport]
    address: tuple[str, int]
    tls_address: tuple[str, int] | None
    web_address: tuple[str, int] | None
    irc_addresses: list[tuple[str, int]]


def open_doors(loop: Loop, app: DoorsApplication, hub: Hub, claim: Claim, options: ServerOptions) -> Doors:
    """Serve *app* on every listener of *claim* as *options* say (the web and IRC doors register their wires
    with *hub*, in that order)."""
    tls, timeout = claim.tls, options.tls_handshake_timeout
    flood = FloodPolicy(options.flood_rate, options.flood_burst, options.flood_kill, options.flood_backlog)
    budgets = Budgets(flood=flood, partial_timeout=options.idle_timeout, max_per_address=options.max_per_address)
    transport: LineTransport
    main_tls = TLSGate(tls, handshake_timeout=timeout) if tls is not None and claim.tls_listener is None else None
    transport = LineTransport(loop, app, claim.listener, tls=main_tls, **budgets)  # main_tls: the main port speaks TLS
    address: tuple[str, int] = claim.listener.getsockname()[:2]
    transports: list[LineTransport] = [transport]  # they share ids, connections, budgets
    tls_address: tuple[str, int] | None = address if tls is not None else None
    if tls is not None and claim.tls_listener is not None:
        transports.append(LineTransport(loop, app, claim.tls_listener, tls=TLSGate(tls, handshake_timeout=timeout),
                                        share=transport, **budgets))
        tls_address = claim.tls_listener.getsockname()[:2]
    web_address: tuple[str, int] | None = None
    if claim.web_listener is not None:  # the browser's door (HTTPS/WSS with tls): same rooms, ids and budgets
        door = open_web(loop, app, hub, options.host, tls=tls, handshake_timeout=timeout, share=transport,
                        listener=claim.web_listener, origins=options.web_origins, hosts=options.web_hosts,
                        static=options.web_static, request_timeout=options.web_request_timeout, **budgets)
        transports.append(door)
        web_address = door.listener.getsockname()[:2]
    irc = open_irc(loop, app, claim.irc_listener, claim.irc_tls_listener, tls=tls, version=_version(),
                   server_name=options.irc_server_name, share=transport, ping_after=options.irc_ping_after,
                   handshake_timeout=timeout, **budgets) if claim.irc_listener or claim.irc_tls_listener else []
    transports += irc
    return Doors(transport, transports, address, tls_address, web_address, [d.listener.getsockname()[:2] for d in irc])
