"""Where Redis is: ``--redis URL`` parsed into a :class:`RedisAddress`.

Forms (those of redis-cli's ``-u`` and redis-py's ``from_url``, minus TLS):

- ``redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`` (port 6379, database 0 by default; an IPv6 host in
  brackets);
- ``unix://[[USER]:PASSWORD@]/PATH/TO/redis.sock[?db=DB]`` (a unix socket; ``redis+unix://`` too).

``rediss://`` (TLS) is refused with a one-line reason: put Redis on loopback, a unix socket or a
private network (docs/scale-out.md). User and password are percent-decoded. Pure; any thread.
"""

from __future__ import annotations

import socket
from typing import NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["RedisAddress", "parse_redis_url"]


class RedisAddress(NamedTuple):
    """``family`` (``socket.AF_UNIX`` or ``socket.AF_INET``/``AF_UNSPEC`` to resolve), ``host`` (a path for a
    unix socket), ``port`` (0 for a unix socket), ``db`` (``int``), ``username`` and ``password`` (``str`` or
    None: ``AUTH`` is sent when a password is given)."""

    family: int
    host: str
    port: int
    db: int = 0
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        """The address without its password: ``unix:/tmp/r.sock`` or ``redis://127.0.0.1:6379/0``."""
        if self.family == socket.AF_UNIX:
            return f"unix:{self.host}" + (f"?db={self.db}" if self.db else "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"redis://{host}:{self.port}/{self.db}"


def parse_redis_url(url: str) -> RedisAddress:
    """The :class:`RedisAddress` of *url*; raises ValueError with a one-line reason (no password in it)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a Redis URL ({exc}): use redis://HOST:PORT/DB or unix:///PATH/redis.sock") from None
    scheme = parts.scheme.lower()
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    query = parse_qs(parts.query)
    if scheme == "rediss":
        raise ValueError("rediss:// (Redis over TLS) is not supported: use a unix socket, loopback or a private "
                         "network (docs/scale-out.md)")
    if scheme in ("unix", "redis+unix"):
        if not parts.path:
            raise ValueError(f"no socket path in {scheme}:// (unix:///run/redis/redis.sock)")
        db = _db(query.get("db", ["0"])[-1])
        return RedisAddress(socket.AF_UNIX, unquote(parts.path), 0, db, username, password)
    if scheme != "redis":
        raise ValueError(f"not a Redis URL: {scheme or 'no'} scheme (redis://HOST:PORT/DB or unix:///PATH)")
    if not parts.hostname:
        raise ValueError("no host in the Redis URL (redis://127.0.0.1:6379/0)")
    path = parts.path.strip("/")
    db = _db(path if path else query.get("db", ["0"])[-1])
    return RedisAddress(socket.AF_UNSPEC, parts.hostname, port if port is not None else 6379, db, username,
                        password)


def _db(text: str) -> int:
    if not text.isdigit() or int(text) > 100_000:
        raise ValueError(f"not a Redis database number: {text!r} (0, 1, 2...)")
    return int(text)
