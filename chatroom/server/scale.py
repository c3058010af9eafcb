"""The server's side of scale-out: what ``--redis`` adds at start-up (docs/scale-out.md).

:func:`preflight` runs before any plugin is loaded, so its mistakes are one line and exit status 2 like
every start-up mistake: the ``redis`` extra missing (``pip install 'chatroom[redis]'``), Redis unreachable,
refusing the password, too old, a ``--node`` name a running node uses. It returns warnings for settings that can lose chat (no persistence, an
evicting memory policy). Nothing here runs, and :mod:`chatroom.scaleout` is never imported, without
``--redis``.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from chatroom.server.checks import StartupError
from chatroom.server.options import ServerOptions

if TYPE_CHECKING:
    from chatroom.model.accounts import AccountStore
    from chatroom.model.history import History
    from chatroom.model.hub import Hub
    from chatroom.model.member import Member
    from chatroom.net.loop import Loop
    from chatroom.net.tcp import LineTransport
    from chatroom.scaleout.node import Node

__all__ = ["CATCH_UP_WAIT", "INSTALL_HINT", "attach", "hold_until_caught_up", "node_name", "preflight"]

log = logging.getLogger("chatroom.server")

INSTALL_HINT = "--redis needs the redis extra: pip install 'chatroom[redis]'"


def preflight(options: ServerOptions) -> list[str]:
    """Check that *options*' Redis can be used (blocking, up to ``redis_timeout`` seconds; before the loop).
    Returns warnings (one line each); raises StartupError (one line)."""
    if options.redis is None:
        return []
    try:
        from chatroom.scaleout.address import parse_redis_url
        from chatroom.scaleout.probe import RedisCheckError, check_redis
    except ImportError as exc:
        raise StartupError(f"{INSTALL_HINT} ({exc})") from None
    try:
        return check_redis(parse_redis_url(options.redis), options.redis_timeout, node=node_name(options))
    except RedisCheckError as exc:
        raise StartupError(str(exc)) from None


def node_name(options: ServerOptions) -> str:
    """``--node``, or this host's name and the PID (``host-1234``; characters outside ``A-Za-z0-9._-`` as ``-``)."""
    if options.node:
        return options.node
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:50] or "node"
    return f"{host}-{os.getpid()}"


def attach(options: ServerOptions, loop: Loop, hub: Hub, history: History | None,
           tell: Callable[[Member, str], None], transports: list[LineTransport], accounts: AccountStore | None = None) -> Node:
    """Make the server of these parts a node of the scale-out *options* name (``--redis``): its room model
    publishes through Redis and delivers what every node said; ``tell(member, line)`` answers a speaker. Call
    only with ``options.redis`` set (and :func:`preflight` passed)."""
    from chatroom.scaleout.node import Node

    assert options.redis is not None
    node = Node(loop, hub, history, url=options.redis, name=node_name(options), timeout=options.redis_timeout,
                keep_lines=options.history_keep[0] or 0, tell=tell, announce=announce, accounts=accounts)
    try:
        ids = node.ids(options.redis_timeout)  # guest numbers unique across the nodes
    except (OSError, ValueError) as exc:
        node.close()
        raise StartupError(f"cannot reserve member ids in Redis: {exc}") from None
    for transport in transports:
        transport.ids = ids
    hold_until_caught_up(loop, node, transports)
    return node


#: Seconds the doors wait at most for a starting node's catch-up before they accept anyway (with a warning).
CATCH_UP_WAIT = 10.0


def hold_until_caught_up(loop: Loop, node: Node, transports: list[LineTransport]) -> None:
    """No door accepts until *node* fetched what its rooms missed while it was away (so a client that
    reconnects to a restarted node gets those lines as history, replayed or fetched by id, never again as
    live lines), or :data:`CATCH_UP_WAIT` seconds passed."""
    for transport in transports:
        transport.acceptor.hold()

    def serve() -> None:
        for transport in transports:
            transport.acceptor.release()

    def too_late() -> None:
        if node.on_ready is not None:  # still catching up
            node.on_ready = None
            log.warning("serving before the catch-up through Redis finished (%.0f s passed)", CATCH_UP_WAIT)
            serve()

    node.on_ready = serve
    loop.call_later(CATCH_UP_WAIT, too_late)


def announce(text: str) -> None:
    """A start-up line on stdout (``chatroom-server node NAME sharing rooms through Redis at URL``), logged too."""
    log.info("%s", text)
    print(f"chatroom-server {text}", flush=True)
