"""The server's side of scale-out: what ``--redis`` adds at start-up (docs/scale-out.md).

:func:`preflight` runs before any plugin is loaded, so its mistakes are one line and exit status 2 like
every start-up mistake: the ``redis`` extra missing (``pip install 'chatroom[redis]'``), Redis unreachable,
refusing the password, too old. It returns warnings for settings that can lose chat (no persistence, an
evicting memory policy). Nothing here runs, and :mod:`chatroom.scaleout` is never imported, without
``--redis``.
"""

from __future__ import annotations

from chatroom.server.checks import StartupError
from chatroom.server.options import ServerOptions

__all__ = ["INSTALL_HINT", "preflight"]

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
        return check_redis(parse_redis_url(options.redis), options.redis_timeout)
    except RedisCheckError as exc:
        raise StartupError(str(exc)) from None
