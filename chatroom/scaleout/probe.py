"""Start-up checks of Redis, on a plain blocking socket (before the loop runs; never on it).

:func:`check_redis` connects once (``AUTH``/``SELECT`` as the URL says), checks the version (streams
need 5.0; 6.2 for what the scripts use) and reads the configuration an operator must get right for
chat (docs/scale-out.md, "Redis settings"):

- **persistence**: neither the append-only file nor RDB snapshots: a Redis restart loses every room's
  history and ids (nodes then report the gap and start above the ids they know);
- **eviction**: a ``maxmemory-policy`` other than ``noeviction`` (or ``volatile-*`` with keys that never
  expire) can delete a room's stream or counter under memory pressure.

It returns warnings (one line each) and raises :class:`RedisCheckError` (one line) when Redis cannot be
reached or refuses the handshake. ``CONFIG GET`` refused (managed services rename it) is itself a
warning. :class:`BlockingRedis` is the small client it uses (the tests use it too). Any thread; blocks.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from chatroom.scaleout.address import RedisAddress
from chatroom.scaleout.presence import BEAT, TTL
from chatroom.scaleout.resp import Codec, ProtocolError, ReplyError, pack

__all__ = ["BlockingRedis", "RedisCheckError", "check_node_name", "check_redis"]

#: Oldest Redis the scripts run on (XADD with explicit ids and XTRIM MAXLEN ~: 5.0; HSET with many fields: 4.0;
#: the CLIENT KILL and output-buffer behaviour the tests rely on: 6.2).
MIN_VERSION = (6, 2)


class RedisCheckError(Exception):
    """Redis cannot be used: unreachable, refusing the handshake, too old. ``str()`` is one line."""


class BlockingRedis:
    """One blocking connection to *address* with a *timeout* (seconds) per operation; a context manager.

    :meth:`command` returns the reply (an error reply as a :class:`~chatroom.scaleout.resp.ReplyError`
    value). Raises OSError (unreachable, timed out) and ProtocolError. Not for the loop thread.
    """

    def __init__(self, address: RedisAddress, timeout: float = 2.0) -> None:
        if address.family == socket.AF_UNIX:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: Any = address.host
        else:
            info = socket.getaddrinfo(address.host, address.port, 0, socket.SOCK_STREAM)[0]
            self.sock = socket.socket(info[0], socket.SOCK_STREAM)
            target = info[4]
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(target)
        except OSError:
            self.sock.close()
            raise
        self.codec = Codec()

    def command(self, *args: str | bytes | int | float) -> Any:
        """Send one command, wait for its reply."""
        self.sock.sendall(pack(*args))
        while True:
            for reply in self.codec.replies():
                return reply
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionResetError("Redis closed the connection")
            self.codec.feed(data)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> BlockingRedis:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _log_in(redis: BlockingRedis, address: RedisAddress) -> None:
    if address.password is not None:
        login = ([address.username] if address.username else []) + [address.password]
        _ok(redis.command("AUTH", *login), "AUTH")
    if address.db:
        _ok(redis.command("SELECT", address.db), f"SELECT {address.db}")


def check_redis(address: RedisAddress, timeout: float = 2.0, *, node: str = "", prefix: str = "chatroom") -> list[str]:
    """Connect to *address*, log in, check version and settings; the warnings (see the module docstring).
    With *node* (this process's ``--node`` name), also that no running node uses it: :func:`check_node_name`.
    Raises :class:`RedisCheckError`."""
    try:
        with BlockingRedis(address, timeout) as redis:
            _log_in(redis, address)
            if node:
                check_node_name(redis, prefix, node)
            info = redis.command("INFO", "server")
            if isinstance(info, ReplyError):
                raise RedisCheckError(f"Redis at {address} refused INFO: {info}")
            version = _version(info)
            if version < MIN_VERSION:
                raise RedisCheckError(f"Redis at {address} is version {'.'.join(map(str, version))}: "
                                      f"chatroom needs {'.'.join(map(str, MIN_VERSION))} or later")
            return _settings(redis, address)
    except (OSError, ProtocolError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise RedisCheckError(f"cannot reach Redis at {address}: {reason}") from None


def check_node_name(redis: BlockingRedis, prefix: str, name: str, *, beat: float = BEAT, ttl: float = TTL) -> None:
    """Raise :class:`RedisCheckError` when a running node shares rooms under *name*: its heartbeat key
    (``PREFIX:alive:NAME``, set to *ttl* s every *beat* s: :mod:`chatroom.scaleout.presence`) is refreshed
    within a *beat* and a half of its last refresh. Two processes under one name would each clear the other's
    members from Redis as "its previous life". A key left by a node that died (SIGKILL, a crash: a supervisor
    restarting it at once) is not refreshed: the name is free. Waits only while such a key was refreshed less
    than 1.5 *beat* s ago (so at most that long after the death); blocks."""
    key = f"{prefix}:alive:{name}"
    left = redis.command("PTTL", key)  # ms: the key is set to TTL at each beat
    while isinstance(left, int) and left > 0 and (ttl - left / 1000) < 1.5 * beat:  # (beaten within 1.5 beats)
        time.sleep(beat / 10)
        now = redis.command("PTTL", key)
        if isinstance(now, int) and now > left:  # refreshed: alive
            raise RedisCheckError(f"the node name {name} is in use: a running chatroom-server shares rooms under "
                                  f"--node {name} through this Redis (its heartbeat is alive); give each process "
                                  f"its own --node")
        left = now


def _ok(reply: Any, what: str) -> None:
    if isinstance(reply, ReplyError):
        raise RedisCheckError(f"Redis refused {what}: {reply}")


def _version(info: bytes) -> tuple[int, ...]:
    for line in info.decode(errors="replace").splitlines():
        if line.startswith("redis_version:"):
            try:
                return tuple(int(part) for part in line.split(":", 1)[1].strip().split(".")[:2])
            except ValueError:
                break
    return (0, 0)


def _settings(redis: BlockingRedis, address: RedisAddress) -> list[str]:
    config: dict[str, str] = {}
    for name in ("appendonly", "save", "maxmemory-policy", "maxmemory"):
        reply = redis.command("CONFIG", "GET", name)
        if isinstance(reply, ReplyError):
            return [f"cannot check Redis's persistence and eviction settings (CONFIG GET refused: {reply}); "
                    f"see docs/scale-out.md, Redis settings"]
        config.update(zip((k.decode() for k in reply[::2]), (v.decode() for v in reply[1::2])))
    warnings = []
    if config.get("appendonly") != "yes" and not config.get("save", "").strip():
        warnings.append(f"Redis at {address} has no persistence (appendonly no, no save points): a Redis restart "
                        f"loses the history of every room (set appendonly yes; docs/scale-out.md)")
    policy = config.get("maxmemory-policy", "noeviction")
    if policy != "noeviction" and config.get("maxmemory", "0") != "0":
        warnings.append(f"Redis at {address} evicts keys when full (maxmemory-policy {policy}): it may delete a "
                        f"room's history or counters; use noeviction (docs/scale-out.md)")
    elif policy.startswith("allkeys"):
        warnings.append(f"Redis at {address} has maxmemory-policy {policy}: with a maxmemory set it would delete "
                        f"chat history; use noeviction (docs/scale-out.md)")
    return warnings
