"""Fan-out benchmark: N clients in one room, 20 of them talking.

Usage::

    python bench/fanout.py [--targets chatroom,ngircd,baseline]
                           [--clients 50,200,1000] [--runs 3] [--seconds 5]

Targets (each started as a child process on a free 127.0.0.1 port):

* ``chatroom``: ``chatroom-server --port 0 --data-dir TMP`` (chatroom protocol).
* ``ngircd``: Debian's ``ngircd -n -f CONF`` with a generated config; flood
  control lifted (``MaxPenaltyTime = 0``, every user gets mode ``F`` through
  ``DefaultUserModes``, no per-IP or join limits, DNS/ident/PAM off). Clients
  speak IRC: ``NICK``/``USER``, ``JOIN #bench``, ``PRIVMSG #bench :text``.
* ``baseline``: a ~100-line ``selectors`` broadcast loop in this file (same wire
  protocol as chatroom) that encodes each line once, appends it to every
  recipient's bytearray and sends once per recipient per loop pass; the "bare
  Python" reference.

Load: client ``i`` is nick ``sNN`` (``i < 20``, a sender) or ``rNNNN``. Every
client, senders included, receives every line of every *other* sender, so a line
makes N-1 deliveries. A sender's line is 60 bytes of chat text (59 characters
plus the line end; IRC wraps the same 59 characters in ``PRIVMSG #bench :..``):
``K<sender:2>S<seq:8>T<send time:19 ns> xxx..``. The send time is
``time.monotonic_ns()``: CLOCK_MONOTONIC is system-wide on Linux, so a receiver
in another process can subtract it from its own clock.

In-flight window: at most 256 lines are sent but not yet delivered to every
receiver. The window is split statically: sender k may have ``win[k]`` lines in
flight (13 for 16 senders, 12 for 4: sum 256), so no cross-process negotiation
can overshoot it. A line of sender k is *delivered to every receiver* once every
receiver holds it or a later line of k (each server keeps per-pair FIFO order,
so for a lossless server this is exactly "all N-1 receivers got it"; a lost line
does not pin the window for ever, it is counted as lost instead). Each worker
keeps, per sender, how many of its receivers stand at each "next seq" level;
the lowest occupied level is the count of k's lines complete on that worker,
published as ``done[worker][k]`` in shared
memory; a sender's completed count is the min over workers. A worker that
advances a remote sender's count writes one byte to that sender's worker's wake
pipe, so no worker polls.

Load generator: ``--workers`` processes (default 2, ``multiprocessing`` fork),
each owning every W-th client and running one epoll loop. Receivers parse with
one compiled regex per ``recv`` chunk and do per-sender work once per chunk, not
per line (about 0.3 us of client CPU per delivery in all). Latency is kept for
1 in ``--lat-every`` (4) deliveries, picked with a random offset in each
``recv`` chunk so every delivery has the same chance whatever its place in the
chunk (microseconds, ``array('i')``, merged over workers as a histogram).

Run phases, all bounded: connect and register (at most 8 handshakes pending
per worker, deadline 30 s + 40 ms per client); ``go``; ``--warmup`` (0.5 s) not
counted; ``--seconds`` (5 s) measured; senders stop; drain up to ``--drain``
(3 s) for the lines still in flight; stop the server, then the clients.

Printed per (target, N, run):

* ``deliv/s``: deliveries whose ``recv`` happened inside the measured window,
  per second (lines/s = deliv/s / (N-1)).
* ``p50``/``p99``: latency send -> receive of those deliveries, ms.
* ``lost``: missing (line, receiver) deliveries after the drain, over the run.
* ``srv us/deliv``: server CPU (``/proc/PID/stat`` utime+stime, all threads)
  during the measured window divided by the deliveries in it.
* ``srv cpu``/``gen cpu``: CPU use of the server / of all generator workers
  during the window (100% = one core): tells whether the generator, not the
  server, was the limit.

Then a Markdown table of medians per (target, N) and, when both ran, the check
of the target at N=200: chatroom >= ngircd deliveries/s, <= server CPU per
delivery, <= p99 latency, and no line lost.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.connection import Connection
from typing import Any

HOST = "127.0.0.1"
SENDERS = 20
WINDOW = 256
LINE_TEXT = 59  # chars of chat text per line; + line end = 60 bytes
PENDING_PER_WORKER = 8  # ngircd listens with a backlog of 10
CLK_TCK = os.sysconf("SC_CLK_TCK")
MSG_RE = re.compile(rb"K(\d\d)S(\d{8}T\d{19})")  # (sender, "seq T time")
mono = time.monotonic_ns


def sender_windows(senders: int = SENDERS, window: int = WINDOW) -> list[int]:
    """Split *window* lines in flight over *senders*: sizes differ by at most 1."""
    base, extra = divmod(window, senders)
    return [base + (1 if k < extra else 0) for k in range(senders)]


def make_text(k: int, seq: int) -> bytes:
    """The 59-byte chat text of line *seq* of sender *k*, stamped now."""
    head = b"K%02dS%08dT%019d " % (k, seq, mono())
    return head + b"x" * (LINE_TEXT - len(head))


def cpu_ticks(pid: int) -> int:
    """utime+stime of process *pid* in clock ticks (all its threads)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


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
        cmd = [sys.executable, os.path.abspath(__file__), "--serve-baseline"]
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


# --------------------------------------------------------------------------- workers
class _Client:
    __slots__ = ("got", "idx", "nick", "nxt", "out", "sent", "sid", "sock", "state", "tail")

    def __init__(self, idx: int) -> None:
        self.idx = idx
        self.sid = idx if idx < SENDERS else -1
        self.nick = b"s%02d" % idx if idx < SENDERS else b"r%04d" % idx
        self.sock: socket.socket | None = None
        self.state = 0  # 0 greeting / 1 nick-or-welcome / 2 join / 3 registered
        self.tail = b""
        self.nxt = [0] * SENDERS  # next expected seq per sender
        self.got = 0  # benchmark lines received
        self.sent = 0  # lines sent (senders only)
        self.out = bytearray()


def worker_main(w: int, nworkers: int, n: int, port: int, irc: bool, ctl: Connection,
                done_arr: Any, sent_arr: Any, stopped: Any, wake_r: int, wake_w: list[int],
                lat_every: int) -> None:
    """Worker process *w*: owns clients ``w, w+W, ...``; see the module docstring.

    Protocol with the coordinator over *ctl*: sends ``("ready",)`` or
    ``("fail", reason)``; receives ``("go", t_go, m0, m1, drain_end)`` (monotonic
    ns); sends ``("result", dict)``; receives ``("exit",)``.
    """
    try:
        _Worker(w, nworkers, n, port, irc, ctl, done_arr, sent_arr, stopped, wake_r, wake_w,
                lat_every).run()
    except Exception as exc:  # noqa: BLE001 - any failure is reported, never hangs the coordinator
        ctl.send(("fail", f"worker {w}: {exc!r}"))


class _Worker:
    def __init__(self, w: int, nworkers: int, n: int, port: int, irc: bool, ctl: Connection,
                 done_arr: Any, sent_arr: Any, stopped: Any, wake_r: int, wake_w: list[int],
                 lat_every: int) -> None:
        self.w, self.W, self.port, self.irc, self.ctl = w, nworkers, port, irc, ctl
        self.done_arr, self.sent_arr, self.stopped = done_arr, sent_arr, stopped
        self.wake_r, self.wake_w = wake_r, wake_w
        self.clients = [_Client(i) for i in range(w, n, nworkers)]
        self.senders = [c for c in self.clients if c.sid >= 0]
        self.win = sender_windows()
        nlocal = len(self.clients)
        self.need = [nlocal - (1 if k % nworkers == w else 0) for k in range(SENDERS)]
        self.done = [0 if self.need[k] else 1 << 62 for k in range(SENDERS)]
        self.levels = [{0: self.need[k]} if self.need[k] else {} for k in range(SENDERS)]
        self.changed: set[int] = set()
        self.sel = selectors.DefaultSelector()
        self.lat = array("i")  # latency of sampled deliveries, us
        self.lat_every = lat_every
        self.rng = random.Random(w)
        self.win_deliv = 0
        self.anomalies = self.echoes = self.dead = 0
        self.m0 = self.m1 = 1 << 62

    # -- setup
    def connect(self, c: _Client) -> None:
        sock = socket.create_connection((HOST, self.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        c.sock = sock
        self.sel.register(sock, selectors.EVENT_READ, c)
        if self.irc:
            nick = c.nick.decode()
            self.send(c, f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())
            c.state = 1

    def send(self, c: _Client, data: bytes) -> None:
        if not c.out:
            try:
                n = c.sock.send(data)
            except BlockingIOError:
                n = 0
            data = data[n:]
            if not data:
                return
            self.sel.modify(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
        c.out += data

    def handshake(self, c: _Client, data: bytes) -> bool:
        """Advance *c*'s registration with *data*; True once registered."""
        lines = (c.tail + data).split(b"\n")
        c.tail = lines.pop()
        for line in lines:
            line = line.rstrip(b"\r")
            if self.irc:
                parts = line.split(b" ", 2)
                if parts[0] == b"PING":
                    self.send(c, b"PONG " + line[5:] + b"\r\n")
                elif parts[0] == b"ERROR":
                    raise RuntimeError(f"{c.nick!r}: {line!r}")
                elif len(parts) > 1 and parts[1] == b"001" and c.state == 1:
                    self.send(c, b"JOIN #bench\r\n")
                    c.state = 2
                elif len(parts) > 1 and parts[1] == b"366" and c.state == 2:
                    c.state = 3
            elif c.state == 0 and line.startswith(b"* Welcome"):
                self.send(c, b"/nick %s\n" % c.nick)
                c.state = 1
            elif c.state == 1 and line.startswith(b"OK"):
                c.state = 3
            elif line.startswith(b"ERROR"):
                raise RuntimeError(f"{c.nick!r}: {line!r}")
            if c.state == 3:
                c.tail = b""
                return True
        return False

    def setup(self) -> None:
        todo = list(reversed(self.clients))
        pending = registered = 0
        deadline = time.monotonic() + 30 + 0.04 * len(self.clients) * self.W
        while registered < len(self.clients):
            while todo and pending < PENDING_PER_WORKER:
                self.connect(todo.pop())
                pending += 1
            if time.monotonic() > deadline:
                raise RuntimeError(f"registration timed out ({registered} registered)")
            for key, mask in self.sel.select(1.0):
                c = key.data
                if mask & selectors.EVENT_WRITE:
                    self.flush(c)
                if mask & selectors.EVENT_READ:
                    data = c.sock.recv(65536)
                    if not data:
                        raise RuntimeError(f"{c.nick!r} closed by server during setup")
                    if c.state != 3 and self.handshake(c, data):
                        pending -= 1
                        registered += 1
                    elif self.irc and b"PING" in data:
                        self.ping(c, data)

    # -- steady state
    def flush(self, c: _Client) -> None:
        try:
            del c.out[: c.sock.send(c.out)]
        except BlockingIOError:
            pass
        if not c.out:
            self.sel.modify(c.sock, selectors.EVENT_READ, c)

    def ping(self, c: _Client, data: bytes) -> None:
        for line in data.split(b"\n"):
            if line.startswith(b"PING"):
                self.send(c, b"PONG " + line[5:].rstrip(b"\r") + b"\r\n")

    def receive(self, c: _Client, data: bytes, now: int) -> None:
        """Account the benchmark lines in *data* (hot path, once per recv chunk).

        Per chunk, not per line: ``dict(found)`` keeps each sender's last line
        (per-pair FIFO makes it the newest), which moves this receiver from
        level ``nxt[k]`` to ``s + 1`` in ``levels[k]`` ({next seq: receivers}).
        A worker's completed count for k is the lowest occupied level.
        """
        if c.tail:
            data = c.tail + data
        end = data.rfind(b"\n") + 1
        c.tail = data[end:]
        found = MSG_RE.findall(data, 0, end)
        if self.irc and b"PING" in data:
            self.ping(c, data[:end])
        if not found:
            return
        n = len(found)
        c.got += n
        if self.m0 <= now < self.m1:
            self.win_deliv += n
            every = self.lat_every  # sample: each delivery with probability 1/every
            self.lat.extend([(now - int(v[9:])) // 1000
                             for _, v in found[self.rng.randrange(every)::every]])
        nxt, levels, done = c.nxt, self.levels, self.done
        span = 0
        for kb, v in dict(found).items():
            k = int(kb)
            if k == c.sid:
                self.echoes += 1
                continue
            e, s1 = nxt[k], int(v[:8]) + 1
            span += s1 - e
            nxt[k] = s1
            lv = levels[k]
            lv[s1] = lv.get(s1, 0) + 1
            left = lv[e] - 1
            if left:
                lv[e] = left
            else:
                del lv[e]
                if e == done[k]:
                    done[k] = min(lv)
                    self.changed.add(k)
        if span != n:
            self.anomalies += abs(n - span)

    def forget(self, c: _Client) -> None:
        """Drop a disconnected receiver from the completion levels."""
        self.dead += 1
        for k in range(SENDERS):
            if k == c.sid or not self.need[k]:
                continue
            lv = self.levels[k]
            lv[c.nxt[k]] -= 1
            if not lv[c.nxt[k]]:
                del lv[c.nxt[k]]
            if lv and min(lv) != self.done[k]:
                self.done[k] = min(lv)
                self.changed.add(k)
            elif not lv:
                self.done[k] = 1 << 62
                self.changed.add(k)

    def publish(self) -> None:
        """Publish advanced completion counts; wake the workers owning those senders."""
        owners = set()
        for k in self.changed:
            self.done_arr[self.w * SENDERS + k] = self.done[k]
            owners.add(k % self.W)
        self.changed.clear()
        for o in owners:
            if o != self.w:
                try:
                    os.write(self.wake_w[o], b"x")
                except BlockingIOError:
                    pass

    def pump(self) -> None:
        """Send as many lines as each local sender's window allows."""
        arr, W = self.done_arr, self.W
        for c in self.senders:
            k = c.sid
            complete = min(arr[w * SENDERS + k] for w in range(W))
            room = self.win[k] - (c.sent - complete)
            if room <= 0 or c.sock is None:
                continue
            if self.irc:
                data = b"".join(b"PRIVMSG #bench :%s\r\n" % make_text(k, c.sent + i) for i in range(room))
            else:
                data = b"".join(make_text(k, c.sent + i) + b"\n" for i in range(room))
            c.sent += room
            self.sent_arr[k] = c.sent
            self.send(c, data)

    def drained(self) -> bool:
        if not all(self.stopped):
            return False
        return all(self.done[k] >= self.sent_arr[k] for k in range(SENDERS))

    def run(self) -> None:
        self.setup()
        self.ctl.send(("ready",))
        _, t_go, self.m0, self.m1, drain_end = self.ctl.recv()
        self.sel.register(self.wake_r, selectors.EVENT_READ, None)
        cpu0 = cpu1 = 0.0
        sending = False
        while True:
            now = mono()
            if not sending and t_go <= now < self.m1:
                sending = True
            if now >= self.m0 and not cpu0:
                cpu0 = time.process_time()
            if now >= self.m1:
                if not cpu1:
                    cpu1 = time.process_time()
                if sending or not self.stopped[self.w]:
                    sending = False
                    self.stopped[self.w] = 1
                if now >= drain_end or self.drained():
                    break
            upcoming = [t for t in (t_go, self.m0, self.m1, drain_end) if t > now]
            timeout = min(0.05, (min(upcoming) - now) / 1e9) if upcoming else 0.0
            for key, mask in self.sel.select(timeout):
                c = key.data
                if c is None:
                    os.read(self.wake_r, 65536)
                    continue
                if mask & selectors.EVENT_WRITE:
                    self.flush(c)
                if mask & selectors.EVENT_READ:
                    try:
                        data = c.sock.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        self.forget(c)
                        self.sel.unregister(c.sock)
                        c.sock.close()
                        c.sock = None
                        continue
                    self.receive(c, data, mono())
            if self.changed:
                self.publish()
            if sending:
                self.pump()
        expected = lost = got = 0
        final = list(self.sent_arr)
        for c in self.clients:
            exp = sum(final) - (final[c.sid] if c.sid >= 0 else 0)
            expected += exp
            got += c.got
            lost += max(0, exp - c.got)
        result = {"win_deliv": self.win_deliv, "lat": dict(Counter(self.lat)), "lost": lost,
                  "expected": expected, "got": got, "anomalies": self.anomalies,
                  "echoes": self.echoes, "dead": self.dead, "cpu": cpu1 - cpu0,
                  "drained": self.drained()}
        self.ctl.send(("result", result))
        self.ctl.recv()  # ("exit",): the coordinator stops the server first


# --------------------------------------------------------------------------- coordinator
def percentile(hist: dict[int, int], q: float) -> float:
    """The *q*-quantile (0..1) of a {value: count} histogram; nan when empty."""
    total = sum(hist.values())
    if not total:
        return float("nan")
    rank, acc = q * (total - 1), 0
    for value in sorted(hist):
        acc += hist[value]
        if acc > rank:
            return float(value)
    return float(max(hist))


def run_once(target: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """One run of *target* with *n* clients; returns the row's numbers (or ``error``)."""
    row: dict[str, Any] = {"target": target, "n": n}
    ctx = get_context("fork")
    W = args.workers
    tmp = tempfile.mkdtemp(prefix=f"fanout-{target}-")
    procs, ctls, pipes = [], [], []
    server = None
    try:
        server = start_server(target, tmp)
        done_arr = ctx.Array("q", W * SENDERS, lock=False)
        sent_arr = ctx.Array("q", SENDERS, lock=False)
        stopped = ctx.Array("q", W, lock=False)
        pipes = [os.pipe() for _ in range(W)]
        for r, wr in pipes:
            os.set_blocking(r, False)
            os.set_blocking(wr, False)
        for w in range(W):
            mine, theirs = ctx.Pipe()
            p = ctx.Process(target=worker_main, daemon=True,
                            args=(w, W, n, server.port, server.irc, theirs, done_arr, sent_arr,
                                  stopped, pipes[w][0], [wr for _, wr in pipes], args.lat_every))
            p.start()
            procs.append(p)
            ctls.append(mine)
        t_setup = time.monotonic()
        for ctl in ctls:
            msg = ctl.recv() if ctl.poll(60 + 0.05 * n) else ("fail", "no ready in time")
            if msg[0] != "ready":
                raise RuntimeError(msg[1])
        row["setup_s"] = time.monotonic() - t_setup
        t_go = mono() + 50_000_000
        m0 = t_go + int(args.warmup * 1e9)
        m1 = m0 + int(args.seconds * 1e9)
        drain_end = m1 + int(args.drain * 1e9)
        for ctl in ctls:
            ctl.send(("go", t_go, m0, m1, drain_end))
        pid = server.proc.pid
        time.sleep(max(0.0, (m0 - mono()) / 1e9))
        c0, w0 = cpu_ticks(pid), mono()
        time.sleep(max(0.0, (m1 - mono()) / 1e9))
        c1, w1 = cpu_ticks(pid), mono()
        results = []
        for ctl in ctls:
            msg = ctl.recv() if ctl.poll(args.drain + 30) else ("fail", "no result in time")
            if msg[0] != "result":
                raise RuntimeError(msg[1])
            results.append(msg[1])
        deliv = sum(r["win_deliv"] for r in results)
        hist: Counter[int] = Counter()
        for r in results:
            hist.update(r["lat"])
        srv_cpu_s = (c1 - c0) / CLK_TCK
        row.update(
            deliv_s=deliv / args.seconds,
            p50_ms=percentile(hist, 0.50) / 1000,
            p99_ms=percentile(hist, 0.99) / 1000,
            lost=sum(r["lost"] for r in results),
            us_deliv=srv_cpu_s * 1e6 / deliv if deliv else float("nan"),
            srv_cpu=100 * srv_cpu_s / ((w1 - w0) / 1e9),
            gen_cpu=100 * sum(r["cpu"] for r in results) / args.seconds,
            anomalies=sum(r["anomalies"] + r["echoes"] for r in results),
            dead=sum(r["dead"] for r in results),
            drained=all(r["drained"] for r in results),
        )
    except Exception as exc:  # noqa: BLE001 - a failed run becomes an ERROR row, the rest go on
        row["error"] = str(exc)[:200]
    finally:
        if server is not None:
            stop_server(server)
        for ctl in ctls:
            try:
                ctl.send(("exit",))
            except OSError:
                pass
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()
        for fds in pipes:
            for fd in fds:
                os.close(fd)
        shutil.rmtree(tmp, ignore_errors=True)
    return row


COLUMNS = [("target", "{}"), ("N", "{}"), ("run", "{}"), ("deliv/s", "{:,.0f}"),
           ("lines/s", "{:,.0f}"), ("p50 ms", "{:.2f}"), ("p99 ms", "{:.2f}"), ("lost", "{}"),
           ("srv us/deliv", "{:.3f}"), ("srv cpu %", "{:.0f}"), ("gen cpu %", "{:.0f}")]


def format_row(row: dict[str, Any], run: Any) -> list[str]:
    """Cells of *row* in :data:`COLUMNS` order."""
    if "error" in row:
        return [row["target"], str(row["n"]), str(run), "ERROR: " + row["error"]] + [""] * 7
    values = [row["target"], row["n"], run, row["deliv_s"], row["deliv_s"] / (row["n"] - 1),
              row["p50_ms"], row["p99_ms"], row["lost"], row["us_deliv"], row["srv_cpu"],
              row["gen_cpu"]]
    return [fmt.format(v) for (_, fmt), v in zip(COLUMNS, values)]


def markdown(rows: list[list[str]]) -> str:
    """A Markdown table with the :data:`COLUMNS` header."""
    out = ["| " + " | ".join(name for name, _ in COLUMNS) + " |",
           "|" + "|".join("---" if i < 3 else "---:" for i in range(len(COLUMNS))) + "|"]
    out += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(out)


def medians(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of each number over the good runs; ``lost`` is the sum over runs."""
    good = [r for r in rows if "error" not in r]
    if not good:
        return rows[0]
    med = {k: statistics.median(r[k] for r in good)
           for k in ("deliv_s", "p50_ms", "p99_ms", "us_deliv", "srv_cpu", "gen_cpu")}
    med.update(target=good[0]["target"], n=good[0]["n"], lost=sum(r["lost"] for r in good))
    return med


def verdict(summary: dict[tuple[str, int], dict[str, Any]], n: int = 200) -> str | None:
    """The chatroom-vs-ngircd target check at *n* clients, or None if either is missing."""
    c, g = summary.get(("chatroom", n)), summary.get(("ngircd", n))
    if not c or not g or "error" in c or "error" in g:
        return None
    checks = [("deliv/s >= ngircd", c["deliv_s"] >= g["deliv_s"]),
              ("srv us/deliv <= ngircd", c["us_deliv"] <= g["us_deliv"]),
              ("p99 <= ngircd", c["p99_ms"] <= g["p99_ms"]),
              ("no line lost", c["lost"] == 0)]
    met = all(ok for _, ok in checks)
    return (f"Target at N={n}: {'MET' if met else 'NOT MET'} ("
            + ", ".join(f"{name}: {'yes' if ok else 'no'}" for name, ok in checks) + ")")


def environment() -> str:
    """One line about the machine: cores, CPU model, Python, ngircd, load average."""
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        ngircd = subprocess.run([shutil.which("ngircd") or "ngircd", "--version"], capture_output=True,
                                text=True, timeout=5, check=False).stdout.split("\n", 1)[0].split("-", 1)[0]
    except (OSError, subprocess.SubprocessError):
        ngircd = "ngircd missing"
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return (f"nproc {os.cpu_count()}, CPU {model}, Python {sys.version.split()[0]}, {ngircd}, "
            f"load average {load}")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (1 if a run failed)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", default="chatroom,ngircd,baseline")
    ap.add_argument("--clients", default="50,200,1000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds after go")
    ap.add_argument("--drain", type=float, default=3.0, help="max seconds to drain after the load")
    ap.add_argument("--workers", type=int, default=2, help="load-generator processes")
    ap.add_argument("--lat-every", type=int, default=4,
                    help="keep the latency of 1 in this many deliveries (random offset per recv)")
    ap.add_argument("--serve-baseline", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve_baseline:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        serve_baseline()
        return 0
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    sizes = [int(x) for x in args.clients.split(",")]
    if min(sizes) < max(SENDERS, 2 * args.workers):
        ap.error(f"need at least {SENDERS} clients")
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    print(f"<!-- before: {environment()} -->\n")
    print(markdown([]), flush=True)
    failed = False
    for n in sizes:
        for run in range(1, args.runs + 1):  # interleaved, so drift hits every target alike
            for target in targets:
                row = run_once(target, n, args)
                runs.setdefault((target, n), []).append(row)
                failed |= "error" in row
                note = "" if "error" in row else (
                    f"  (setup {row['setup_s']:.1f}s" + (f", anomalies {row['anomalies']}" if row["anomalies"] else "")
                    + (f", disconnected {row['dead']}" if row["dead"] else "")
                    + ("" if row["drained"] else ", NOT drained") + ")")
                print("| " + " | ".join(format_row(row, run)) + " |" + note, flush=True)
    summary = {key: medians(rows) for key, rows in runs.items()}
    print(f"\nMedians over {args.runs} run(s), {args.seconds:g} s measured each "
          "(lost: sum over runs):\n")
    print(markdown([format_row(summary[(t, n)], "med") for n in sizes for t in targets]))
    line = verdict(summary)
    if line:
        print("\n" + line)
    print(f"\n<!-- after: {environment()} -->")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
