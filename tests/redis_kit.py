"""A real ``redis-server`` for the tests: started on a unix socket in a temporary folder, stopped by PID.

``redis-server`` is Debian's package (the README's test command installs it when it is missing,
``scripts/install-test-packages.sh``). Each :class:`RedisServer` listens only on ``DIR/redis.sock``
(``--port 0`` disables TCP), keeps its files in *DIR*, and by default persists with the append-only
file (``--appendonly yes --appendfsync always``: what a SIGKILL leaves is what was acknowledged).
Start-up synchronises on the line Redis prints when it is ready, never on a sleep.

:meth:`RedisServer.command` is a small blocking client (on the project's RESP codec) for the tests'
own checks and set-up: ``CLIENT KILL``, ``CONFIG SET``, ``XRANGE``...
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from chatroom.scaleout.address import parse_redis_url
from chatroom.scaleout.probe import BlockingRedis

DEADLINE = 10.0

INSTALL_HINT = "redis-server is missing: run scripts/install-test-packages.sh (the README's test command does)"


def redis_binary() -> str:
    """The path of ``redis-server``; AssertionError with the install hint when it is missing."""
    path = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
    assert path, INSTALL_HINT
    return path


class RedisServer:
    """``redis-server`` in *folder* on the unix socket ``folder/redis.sock``; ``url`` is ``unix://...``.

    *appendonly*: persistence in ``folder/appendonlydir`` (False: none at all, ``--save ""`` either way).
    *extra*: more ``--option value`` words. Call :meth:`start`; :meth:`stop` (SIGTERM),
    :meth:`kill` (SIGKILL) and :meth:`restart` act on the PID.
    """

    def __init__(self, folder: Path, *, appendonly: bool = True, extra: tuple[str, ...] = ()) -> None:
        self.folder = folder
        self.socket_path = folder / "redis.sock"
        self.appendonly = appendonly
        self.extra = extra
        self.proc: subprocess.Popen[str] | None = None
        self.log: list[str] = []

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> RedisServer:
        """Start it and wait for "Ready to accept connections" (10 s at most)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [redis_binary(), "--port", "0", "--unixsocket", str(self.socket_path), "--unixsocketperm", "700",
                "--dir", str(self.folder), "--save", "", "--daemonize", "no", "--logfile", "",
                "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always", *self.extra]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ready = threading.Event()
        self._reader = threading.Thread(target=self._read_log, args=(self.proc, ready), daemon=True)
        self._reader.start()
        if ready.wait(DEADLINE):
            return self
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError("redis-server did not start:\n" + "\n".join(self.log[-20:]))

    def _read_log(self, proc: subprocess.Popen[str], ready: threading.Event) -> None:
        """Keep reading Redis's log (a full pipe would block it); *ready* is set by its ready line."""
        assert proc.stdout is not None
        for line in proc.stdout:
            self.log.append(line.rstrip())
            if "ready to accept connections" in line.lower():
                ready.set()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send *sig* to the PID and wait (10 s, then SIGKILL); returns the exit code."""
        proc = self.proc
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            code = proc.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        self._reader.join(DEADLINE)  # the log's end: the pipe can be closed
        assert proc.stdout is not None
        proc.stdout.close()
        self.proc = None
        return code

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final write (what the append-only file holds is what survives)."""
        self.stop(signal.SIGKILL)

    def restart(self, *, empty: bool = False) -> RedisServer:
        """Stop (SIGTERM) and start again in the same folder; *empty*: its files removed first."""
        self.stop()
        if empty:
            shutil.rmtree(self.folder / "appendonlydir", ignore_errors=True)
            (self.folder / "dump.rdb").unlink(missing_ok=True)
        return self.start()

    def command(self, *args: Any, timeout: float = DEADLINE) -> Any:
        """Send one command on a new blocking connection and return its reply (a ReplyError value too)."""
        with BlockingRedis(parse_redis_url(self.url), timeout) as redis:
            return redis.command(*args)

    def clients(self) -> list[dict[str, str]]:
        """``CLIENT LIST`` as one dict per client (``name``, ``flags``, ``sub``...)."""
        text = self.command("CLIENT", "LIST").decode()
        return [dict(field.split("=", 1) for field in line.split(" ") if "=" in field)
                for line in text.splitlines() if line]

    def wait_for_clients(self, name: str, count: int, timeout: float = DEADLINE) -> list[dict[str, str]]:
        """Wait until exactly *count* clients called *name* are connected; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.clients() if c.get("name") == name]
            if len(found) == count or time.monotonic() > deadline:
                assert len(found) == count, f"{len(found)} clients named {name}, wanted {count}"
                return found
            time.sleep(0.01)


def start_node(server_factory: Any, redis: RedisServer, name: str, *args: str, data_dir: Path | None = None) -> Any:
    """A ``chatroom-server --redis`` node (tests/conftest.py's ServerProcess) that has said it shares rooms."""
    web = () if "--web-port" in args else ("--web-port", "off")
    flood = () if "--flood-rate" in args else ("--flood-rate", "0")  # the tests poll and send bursts as set-up
    node = server_factory("--redis", redis.url, "--node", name, "--redis-timeout", "1", *web, *flood, *args,
                          data_dir=data_dir)
    deadline = time.monotonic() + DEADLINE
    node.startup_lines = []  # what it printed before (the web URL...)
    while time.monotonic() < deadline:
        line = node.proc.stdout.readline()
        assert line, f"node {name} stopped: {node.proc.stderr.read()}"
        if line.startswith(f"chatroom-server node {name} sharing rooms through Redis"):
            return node
        node.startup_lines.append(line)
    raise AssertionError(f"node {name} did not join")
