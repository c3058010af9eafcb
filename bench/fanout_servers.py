"""The servers bench/fanout.py measures: chatroom-server, ngircd, and the batched Python baseline.

Run as a script, it serves the baseline (used by start_server).
"""


from __future__ import annotations

import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from fanout_load import HOST, free_port


# --------------------------------------------------------------------------- servers
@dataclass
class Server:
    """A running target: its process and where it listens."""

    name: str
    proc: subprocess.Popen
    port: int
    irc: bool


def _read_listen_line(proc: subprocess.Popen, deadline: float) -> int:
    """Port from the child's first stdout line ``... listening on HOST:PORT``."""
    assert proc.stdout is not None
    box: list[bytes] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(max(0.0, deadline - time.monotonic()))
    if not box or b"listening on" not in box[0]:
        raise RuntimeError(f"server did not announce its port: {box!r}")
    # Keep draining stdout so a chatty server never blocks on a full pipe.
    threading.Thread(target=lambda: proc.stdout.read(), daemon=True).start()
    return int(box[0].strip().rsplit(b":", 1)[1])


NGIRCD_CONF = """[Global]
  Name = bench.local
  Info = fanout benchmark
  Listen = {host}
  Ports = {port}
  MotdPhrase = bench
  AdminInfo1 = fanout benchmark
  AdminInfo2 = loopback
  AdminEMail = bench@bench.local
[Limits]
  MaxConnections = 20000
  MaxConnectionsIP = 0
  MaxJoins = 0
  MaxNickLength = 30
  MaxPenaltyTime = 0
  PingTimeout = 600
  PongTimeout = 600
[Options]
  DNS = no
  Ident = no
  PAM = no
  DefaultUserModes = F
"""


def _wait_port(proc: subprocess.Popen, port: int, deadline: float) -> int:
    """Return *port* once it accepts a connection; raise if *proc* dies or time runs out."""
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port}")


def start_server(target: str, tmp: str) -> Server:
    """Start *target* (chatroom, ngircd or baseline) as a child process.

    Raises RuntimeError (with the tail of the server's log) if it does not come up in 15 s.
    """
    deadline = time.monotonic() + 15
    log_path = os.path.join(tmp, f"{target}.log")
    port = free_port()
    if target == "ngircd":
        conf = os.path.join(tmp, "ngircd.conf")
        with open(conf, "w") as f:
            f.write(NGIRCD_CONF.format(host=HOST, port=port))
        cmd = [shutil.which("ngircd") or "/usr/sbin/ngircd", "-n", "-f", conf]
    elif target == "chatroom":
        exe = shutil.which("chatroom-server")
        if exe is None:
            raise RuntimeError("chatroom-server is not installed (pip install -e .)")
        cmd = [exe, "--port", "0", "--data-dir", os.path.join(tmp, "chatroom-data")]
        os.makedirs(cmd[-1], exist_ok=True)
    elif target == "baseline":
        cmd = [sys.executable, os.path.abspath(__file__)]
    else:
        raise ValueError(f"unknown target {target!r}")
    irc = target == "ngircd"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log if irc else subprocess.PIPE, stderr=log)
    try:
        port = _wait_port(proc, port, deadline) if irc else _read_listen_line(proc, deadline)
    except RuntimeError as exc:
        proc.kill()
        proc.wait()
        with open(log_path, "rb") as log:
            tail = log.read()[-300:].decode(errors="replace")
        raise RuntimeError(f"{target} did not start ({exc}); log ends: {tail}") from None
    return Server(target, proc, port, irc)


def stop_server(server: Server) -> None:
    """SIGTERM the server, SIGKILL after 3 s."""
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(3)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(3)


class _Peer:
    __slots__ = ("inbuf", "nick", "out", "sock", "writing")

    def __init__(self, sock: socket.socket, nick: bytes) -> None:
        self.sock, self.nick, self.inbuf, self.out, self.writing = sock, nick, b"", bytearray(), False


def serve_baseline() -> None:
    """The reference broadcast server (chatroom wire subset), run until killed.

    Greeting, ``/nick NAME`` -> ``OK nick NAME``, a plain line goes to every
    other client as ``NICK: text``; joins, nick changes and leaves are
    announced as ``* ...`` lines. Each line is encoded once and appended to
    every recipient's bytearray; output is flushed with one ``send`` per
    connection per loop pass (``EVENT_WRITE`` only while output is pending).
    """
    lsock = socket.create_server((HOST, 0), backlog=4096)
    lsock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ, None)
    peers: list[_Peer] = []
    serial = 0
    print(f"baseline listening on {HOST}:{lsock.getsockname()[1]}", flush=True)

    def broadcast(msg: bytes, skip: _Peer | None) -> None:
        for p in peers:
            if p is not skip:
                p.out += msg

    while True:
        for key, mask in sel.select():
            p = key.data
            if p is None:
                while True:
                    try:
                        sock, _ = lsock.accept()
                    except BlockingIOError:
                        break
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    serial += 1
                    p = _Peer(sock, b"guest%d" % serial)
                    broadcast(b"* %s joined lobby\n" % p.nick, None)
                    peers.append(p)
                    p.out += b"* Welcome to baseline, room lobby. You are %s.\n" % p.nick
                    sel.register(sock, selectors.EVENT_READ, p)
                continue
            if mask & selectors.EVENT_READ:
                try:
                    data = p.sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(p.sock)
                    p.sock.close()
                    peers.remove(p)
                    broadcast(b"* %s left lobby (quit)\n" % p.nick, None)
                    continue
                lines = (p.inbuf + data).split(b"\n")
                p.inbuf = lines.pop()
                for line in lines:
                    line = line.rstrip(b"\r")
                    if line.startswith(b"/nick "):
                        old, p.nick = p.nick, line[6:].strip()
                        p.out += b"OK nick %s\n" % p.nick
                        broadcast(b"* %s is now known as %s\n" % (old, p.nick), p)
                    elif line.startswith(b"/") and not line.startswith(b"//"):
                        p.out += b"ERROR - Command not understood\n"
                    else:
                        broadcast(b"%s: %s\n" % (p.nick, line.removeprefix(b"/")), p)
        for p in peers:
            if p.out:
                try:
                    del p.out[: p.sock.send(p.out)]
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    p.out.clear()
            if bool(p.out) != p.writing:
                p.writing = not p.writing
                events = selectors.EVENT_READ | (selectors.EVENT_WRITE if p.writing else 0)
                sel.modify(p.sock, events, p)



if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve_baseline()
