"""What a server holds before it serves: its data dir, its ports, its TLS certificate.

One server per data dir: :class:`DataDirLock` takes an exclusive
``fcntl.flock`` on ``DATA_DIR/server.lock`` for the server's life and writes
the holder's PID and ports into it (JSON, one object). A second server on the
same folder gets :class:`DataDirBusy` naming that PID and port, before it has
opened a store, written a file or loaded a plugin; the kernel drops the lock
when the holder exits, however it ends, so a stale file never blocks.

Restarts keep people connected: the same file remembers the ports after the
server stops. A server whose options give no port (``port=None``; likewise
``web_port``) binds the port it had last time when that one is free, and a
port the kernel picks only when it is taken; each choice is one line of
:attr:`Claim.notes`. ``0`` always means "the kernel picks".

:func:`take` does it all in order (lock, TLS certificate, listeners, record)
and raises :class:`~chatroom.server.checks.StartupError`, one line to print,
for a mistake: a busy data dir, an unusable certificate, an address in use
or not of this machine, a host that does not resolve.
"""

from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatroom.net.accept import listen
from chatroom.net.tls import load_tls
from chatroom.server.checks import StartupError
from chatroom.server.options import ServerOptions

__all__ = ["LOCK_NAME", "Claim", "DataDirBusy", "DataDirLock", "format_address", "take"]

LOCK_NAME = "server.lock"
#: Port fields of the lock file, and the option each one remembers.
PORT_KEYS = ("port", "tls_port", "web_port")


class DataDirBusy(StartupError):
    """Another live server holds the data dir; ``pid`` and ``ports`` are what it wrote (None if unreadable)."""

    def __init__(self, data_dir: Path, holder: dict[str, Any]) -> None:
        self.pid = holder.get("pid")
        self.ports = {key: holder.get(key) for key in PORT_KEYS}
        port, host = self.ports["port"], holder.get("host")
        where = ", starting" if holder.get("starting") or not isinstance(port, int) else \
            f", listening on {format_address(host if isinstance(host, str) else '127.0.0.1', port)}"
        who = f"PID {self.pid}" if isinstance(self.pid, int) else "a process whose PID it has not written yet"
        super().__init__(f"data dir {data_dir} is in use by another chatroom-server ({who}{where}); "
                         f"stop it first, or give this one its own --data-dir")


def format_address(host: str, port: int) -> str:
    """``HOST:PORT``, with an IPv6 host in brackets: ``[::1]:5000``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class DataDirLock:
    """The exclusive lock of one server on *data_dir* (``server.lock`` in it), taken by :meth:`acquire`.

    ``last`` holds what the previous holder recorded (``pid``, ``host``, ``port``, ``tls_port``,
    ``web_port``; ``{}`` the first time). Not thread-safe; one per server.
    """

    def __init__(self, path: Path, fd: int | None, last: dict[str, Any]) -> None:
        self.path = path
        #: The open lock file (None: released, or no lock); closed, hence unlocked, if this object is dropped.
        self._file = io.FileIO(fd, "r+", closefd=True) if fd is not None else None
        self.last = last

    @classmethod
    def acquire(cls, data_dir: Path) -> DataDirLock:
        """Lock *data_dir* (created if missing) for this process, without waiting.

        Raises :class:`DataDirBusy` if another server holds it, StartupError if the lock file cannot be
        opened. Writes this process's PID at once (the ports come with :meth:`record`).
        """
        path = data_dir / LOCK_NAME
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StartupError(f"cannot open the lock file {path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise StartupError(f"cannot lock {path}: {exc.strerror or exc}") from None
            holder = _read_holder(fd)
            os.close(fd)
            raise DataDirBusy(data_dir, holder) from None
        last = _parse(_read(fd)) or {}
        lock = cls(path, fd, last)
        lock.record({**{k: last.get(k) for k in ("host", *PORT_KEYS)}, "starting": True})
        return lock

    def record(self, state: dict[str, Any]) -> None:
        """Write this process's PID and *state* (``host``, ``port``, ``tls_port``, ``web_port``)."""
        if self._file is None:
            return
        data = json.dumps({"pid": os.getpid(), **state}).encode() + b"\n"
        os.pwrite(self._file.fileno(), data, 0)
        os.ftruncate(self._file.fileno(), len(data))

    def release(self) -> None:
        """Unlock (closing the file; its ports stay for the next start). Idempotent."""
        if self._file is not None:
            self._file.close()
            self._file = None


def _read(fd: int) -> bytes:
    return os.pread(fd, 4096, 0)


def _parse(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _read_holder(fd: int) -> dict[str, Any]:
    """What the holder wrote; it may be writing this instant, so a torn read is retried (0.2 s at most)."""
    for _ in range(20):
        holder = _parse(_read(fd))
        if holder is not None:
            return holder
        time.sleep(0.01)
    return {}


@dataclass
class Claim:
    """A server's hold on its resources: the data dir lock, the bound listeners (``listener``, and
    ``tls_listener``, ``web_listener`` or None), the TLS context and its certificate's fingerprint, and
    ``notes``: one console line per port chosen from memory. Made by :func:`take`."""

    lock: DataDirLock
    listener: Any
    tls_listener: socket.socket | None = None
    web_listener: socket.socket | None = None
    irc_listener: Any = None  # a bound socket, or the kit's fake
    irc_tls_listener: socket.socket | None = None
    tls: ssl.SSLContext | None = None
    tls_fingerprint: str = ""
    notes: list[str] = field(default_factory=list)

    def release(self) -> None:
        """Unlock the data dir (the transports close the listeners)."""
        self.lock.release()

    def abandon(self) -> None:
        """Undo :func:`take` when the server cannot be built after all: close the listeners, unlock."""
        for sock in (self.listener, self.tls_listener, self.web_listener, self.irc_listener, self.irc_tls_listener):
            if sock is not None:
                sock.close()
        self.release()


def take(options: ServerOptions, *, listener: Any = None, irc_listener: Any = None, lock: bool = True) -> Claim:
    """Lock *options*' data dir, load TLS, bind the main port (unless *listener* is given: an already
    bound listening socket, or the kit's fake), the TLS port, the web port and the IRC ports (*irc_listener*:
    the kit's fake IRC door, instead of ``--irc-port``), and record them.
    ``lock=False`` takes no lock and remembers no port: for the test kit, whose in-process servers may
    share a data dir to play a crash and a restart.

    Raises :class:`DataDirBusy` or :class:`~chatroom.server.checks.StartupError` (one line each); on
    failure nothing stays bound or locked.
    """
    if lock:
        held = DataDirLock.acquire(options.data_dir)
    else:
        options.data_dir.mkdir(parents=True, exist_ok=True)
        held = DataDirLock(options.data_dir / LOCK_NAME, None, {})
    return _take(options, listener, irc_listener, held)


def _take(options: ServerOptions, listener: Any, irc_listener: Any, lock: DataDirLock) -> Claim:
    bound: list[socket.socket] = []
    try:
        claim = Claim(lock, listener)
        claim.irc_listener = irc_listener
        reuse = options.reuse_port
        if options.tls_enabled:
            try:
                claim.tls, claim.tls_fingerprint = load_tls(options.data_dir, options.host, options.tls_cert,
                                                            options.tls_key)
            except ValueError as exc:
                raise StartupError(str(exc)) from None
        if listener is None:
            claim.listener = _bind(options.host, options.port, lock.last.get("port"), "port", claim.notes, reuse)
            bound.append(claim.listener)
        if options.tls_port is not None:
            claim.tls_listener = _bind(options.host, options.tls_port, None, "TLS port", claim.notes, reuse)
            bound.append(claim.tls_listener)
        if options.web:
            claim.web_listener = _bind(options.host, options.web_port, lock.last.get("web_port"), "web port",
                                       claim.notes, reuse)
            bound.append(claim.web_listener)
        if options.irc_port is not None:
            claim.irc_listener = _listen(options.host, options.irc_port)
            bound.append(claim.irc_listener)
        if options.irc_tls_port is not None:
            claim.irc_tls_listener = _listen(options.host, options.irc_tls_port)
            bound.append(claim.irc_tls_listener)
    except BaseException:
        for sock in bound:
            sock.close()
        lock.release()
        raise
    ports = {key: _port(sock) for key, sock in zip(PORT_KEYS, (claim.listener, claim.tls_listener,
                                                              claim.web_listener))}
    lock.record({"host": options.host, **ports})
    return claim


def _port(sock: Any) -> int | None:
    return None if sock is None else int(sock.getsockname()[1])


def _bind(host: str, port: int | None, last: Any, what: str, notes: list[str], reuse: bool = False) -> socket.socket:
    """Listen on *host*:*port*; for ``port=None``, on *last* (the data dir's port last time) if it is free,
    else on a port the kernel picks, with a note saying which; *reuse*: with ``SO_REUSEPORT``. Raises
    StartupError (one line)."""
    if port is None and isinstance(last, int) and 0 < last <= 65535:
        try:
            sock = listen(host, last, reuse_port=reuse)
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise StartupError(_cannot_listen(host, last, exc)) from None
            sock = _listen(host, 0, reuse)
            notes.append(f"{what} {last}, the one this data dir had last time, is taken: using {_port(sock)} "
                         f"instead (clients must use the new one)")
        else:
            notes.append(f"reusing {what} {last}, the one this data dir had last time")
        return sock
    return _listen(host, port or 0, reuse)


def _listen(host: str, port: int, reuse: bool = False) -> socket.socket:
    try:
        return listen(host, port, reuse_port=reuse)
    except OSError as exc:
        raise StartupError(_cannot_listen(host, port, exc)) from None


def _cannot_listen(host: str, port: int, exc: OSError) -> str:
    """``cannot listen on HOST:PORT: REASON`` (socket.create_server's repetition of the address left out)."""
    reason = str(exc.strerror or exc).split(" (while attempting")[0]
    if isinstance(exc, socket.gaierror) or (exc.errno or 0) < 0:  # create_server re-raises getaddrinfo's as OSError
        return f"cannot listen on {format_address(host, port)}: unknown host {host!r} ({reason})"
    if exc.errno == errno.EADDRNOTAVAIL:
        reason += f" ({host} is not an address of this machine)"
    return f"cannot listen on {format_address(host, port)}: {reason}"
