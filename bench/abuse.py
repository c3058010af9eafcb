"""Abuse benchmark: hostile clients against a fresh chatroom-server, a probe pair timing chat.

Usage::

    python bench/abuse.py [--attacks 3,4,5,6,7,8,9,10,11,13,14] [--seconds 5] [--runs 1]
                          [--members 300] [--idle 1000] [--churn-rate 200]
                          [--probe-senders 30] [--probe-interval-ms 20] [--fd-limit] [--server-args "..."]

For every attack (numbers are the rows of issue 8's table) and every run, a
fresh ``chatroom-server --port 0 --quiet --data-dir TMP`` is started (port read
from its first stdout line ``chatroom-server listening on HOST:PORT``), with
``--max-per-address 0`` if its ``--help`` lists that flag (every attacker is on
127.0.0.1, standing for many addresses), then ``--server-args``. A **probe**
process joins the room: ``--probe-senders`` connections take turns to say
``ping <n> <monotonic ns>`` every ``--probe-interval-ms`` in all (by default
every 20 ms, each sender every 600 ms: 1.7 lines/s, under the default
``--flood-rate 2``; one connection at 50 lines/s would itself be a flood),
and one more connection times each ping's arrival.
Phases: optional set-up (idle members: part of the scene, not of the attack),
**baseline** (probe only, ``min(3, --seconds)`` s), **attack** (``--seconds``)
with the probe measuring, then up to 2 s for late pings (a ping that never
arrives counts with the time it waited, so a stalled room shows as a huge p99).

Columns: probe p50/p99 during the attack, baseline p99 (same server, just
before), server peak RSS (``VmHWM`` of ``/proc/PID/status``, MiB; the server is
fresh per attack), server CPU seconds during the attack window (utime+stime;
the outcome cell adds the baseline's, scaled to the same length, since the
probe's own pings cost CPU: 200 lines/s to every member),
and the attacker's outcome read from its sockets (the server closing a socket
is seen through ``TCP_INFO`` state even behind unread data; the last line
received, when read, tells why). With ``--runs`` > 1 the numbers are medians.

Attacks (each bounded by its deadline; every loop bounded in count and time):
 3  50 connections without ``/caps binary`` send a 4 MiB frame header and 4 MiB - 1 bytes of it.
 4  ``--members`` idle members; 4 attackers each send 256 KiB of ``/who`` lines, never read.
 5  100 ``/caps binary`` receivers that never read; a sender announces
    ``/sendfile f 4194304`` and sends one 4 MiB ``file-data`` frame.
 6  40 clients each ask for ~4 MiB of ``/help`` replies, send ``/quit``, never read.
 7  one client sends ``/x`` at ~100 KiB/s (reads its replies).
 8  one client floods, flat out: (a) chat, (b) ``/upper``, (c) ``/help``.
 9  (root and ``--fd-limit`` only) server under ``prlimit --nofile=128``; 200 connections held.
10  ``--idle`` idle connections, then 100 of them hold a 60 KiB unfinished line:
    RSS per idle connection and per unfinished line (``VmRSS`` differences).
11  ``--idle`` idle members; connect/close churn at ``--churn-rate`` per second.
13  a 65,535-byte chat line (line end included): does a receiver get a line over 65,536 bytes?
14  (issue 17, row 4) a named client sends 5,000 chat lines of 100 bytes at once and never reads, as ``nc < file``
    does; a named witness counts how many reach it before the flooder is gone (or the attack ends),
    and the flooder's socket is read to its end: its last line, and a clean close (EOF) or a reset.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import selectors
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing import get_context
from typing import Any, Callable

HOST = "127.0.0.1"
MiB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")
TCP_STATES = {1: "open", 7: "closed", 8: "closed by server", 9: "closed", 11: "closed"}


# --------------------------------------------------------------------------- server
class Server:
    """A fresh chatroom-server child (``--quiet``, temp data dir); ``port``, ``pid``."""

    def __init__(self, tmp: str, extra: list[str], prefix: list[str] = ()) -> None:
        exe = shutil.which("chatroom-server")
        if exe is None:
            raise RuntimeError("chatroom-server is not on PATH (pip install -e .)")
        data = tempfile.mkdtemp(prefix="data-", dir=tmp)
        self.proc = subprocess.Popen([*prefix, exe, "--port", "0", "--quiet", "--data-dir", data, *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        box: list[bytes] = []
        t = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(15)
        m = re.match(rb"chatroom-server listening on (.+):(\d+)", box[0] if box else b"")
        if not m:
            self.stop()
            raise RuntimeError(f"server did not announce its port: {box!r}")
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()  # never block its stdout
        self.port, self.pid = int(m.group(2)), self.proc.pid

    def status(self, key: str) -> float:
        """``VmHWM``/``VmRSS`` of the server in MiB (nan once it is gone)."""
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return float("nan")

    def cpu(self) -> float:
        """utime+stime in seconds (nan once it is gone)."""
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError):
            return float("nan")

    def settle(self, limit: float = 3.0) -> None:
        """Wait (at most *limit* s) until the server uses under 10 % of a core for 0.2 s."""
        end, last = time.monotonic() + limit, self.cpu()
        while time.monotonic() < end:
            time.sleep(0.2)
            now = self.cpu()
            if not now - last > 0.02:  # also stops once the server is gone (nan)
                return
            last = now

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(3)


def server_flags() -> tuple[str, ...]:
    """Words of ``chatroom-server --help`` (to pass flags only where they exist)."""
    exe = shutil.which("chatroom-server") or "chatroom-server"
    try:
        return tuple(subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=20).stdout.split())
    except (OSError, subprocess.SubprocessError):
        return ()


# --------------------------------------------------------------------------- sockets
def connect(port: int, timeout: float = 5.0) -> socket.socket:
    """A connected, non-blocking TCP socket to the server."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(False)
    return s


def connect_many(port: int, n: int, deadline: float) -> list[socket.socket]:
    """Up to *n* connections, as many as fit before *deadline* (refusals skipped)."""
    out: list[socket.socket] = []
    for _ in range(n):
        if time.monotonic() > deadline:
            break
        try:
            out.append(connect(port, timeout=max(0.1, min(5.0, deadline - time.monotonic()))))
        except OSError:
            pass
    return out


def tcp_state(s: socket.socket) -> str:
    """``open``, ``closed by server`` (FIN received, maybe behind unread data) or ``closed``."""
    try:
        return TCP_STATES.get(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0], "other")
    except OSError:
        return "closed"


def recv_lines(s: socket.socket, deadline: float, until: bytes | None = None,
               cap: int = 4 * MiB) -> tuple[list[bytes], bool]:
    """Read what *s* has (until *until* is seen, EOF, *cap* bytes or *deadline*); (lines, eof)."""
    buf, eof = b"", False
    while time.monotonic() < deadline and len(buf) < cap:
        try:
            data = s.recv(262144)
        except BlockingIOError:
            if until is None or until in buf:
                break
            time.sleep(0.005)
            continue
        except OSError:
            data = b""
        if not data:
            eof = True
            break
        buf += data
        if until is not None and until in buf:
            break
    return buf.split(b"\n"), eof


def pump(payloads: dict[socket.socket, bytes], deadline: float, read: bool = False) -> dict[socket.socket, int]:
    """Send each socket its payload without blocking, until all sent or *deadline*; bytes sent per socket."""
    left = {s: memoryview(p) for s, p in payloads.items()}
    sent = dict.fromkeys(payloads, 0)
    sel = selectors.DefaultSelector()
    for s in left:
        sel.register(s, selectors.EVENT_WRITE | (selectors.EVENT_READ if read else 0))
    while left and time.monotonic() < deadline:
        for key, mask in sel.select(min(0.1, max(0.0, deadline - time.monotonic()))):
            s = key.fileobj
            try:
                if mask & selectors.EVENT_READ:
                    s.recv(262144)
                if mask & selectors.EVENT_WRITE and s in left:
                    n = s.send(left[s][:262144])
                    sent[s] += n
                    left[s] = left[s][n:]
                    if not left[s]:
                        del left[s]
                        if not read:
                            sel.unregister(s)
            except BlockingIOError:
                pass
            except OSError:
                left.pop(s, None)
                sel.unregister(s)
    sel.close()
    return sent


def summarize(socks: list[socket.socket], what: str, deadline: float | None = None) -> str:
    """How many of *socks* the server closed; with *deadline*, the last non-chat line they got."""
    closed = [s for s in socks if tcp_state(s) != "open"]
    why = ""
    end = deadline or time.monotonic() + min(1.0, 0.01 * len(closed))
    for s in closed[:20]:
        lines, _ = recv_lines(s, end, cap=16 * MiB)
        last = [ln for ln in lines if ln.startswith(b"ERROR") and b"not understood" not in ln]
        if last:
            why = last[-1].decode(errors="replace")[:60]
    if not closed:
        return f"{what}: all {len(socks)} still connected"
    return f"{what}: {len(closed)}/{len(socks)} disconnected ({why or 'no ERROR line read'})"


def flood(s: socket.socket, chunk: bytes, deadline: float, rate: float | None = None) -> str:
    """Send *chunk* over and over (at most *rate* bytes/s), reading and discarding replies."""
    sent, t0, tail, eof = 0, time.monotonic(), b"", False
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    while time.monotonic() < deadline and not eof:
        for _, mask in sel.select(0.01):
            try:
                if mask & selectors.EVENT_READ:
                    data = s.recv(262144)
                    eof = not data
                    tail = (tail + data)[-4096:]
                if mask & selectors.EVENT_WRITE and (rate is None or sent < rate * (time.monotonic() - t0)):
                    sent += s.send(chunk)
            except BlockingIOError:
                pass
            except OSError:
                eof = True
    sel.close()
    secs = time.monotonic() - t0
    rate_s = f"sent {sent / 1024 / max(secs, 1e-9):,.0f} KiB/s"
    if eof or tcp_state(s) != "open":
        last = [ln for ln in tail.split(b"\n") if ln.startswith(b"ERROR") and b"not understood" not in ln]
        why = last[-1].decode(errors="replace")[:50] if last else "no ERROR line read"
        return f"disconnected after {secs:.1f} s: {why}; {rate_s}"
    return f"still connected; {rate_s}"


# --------------------------------------------------------------------------- probe
PING_RE = re.compile(rb"ping (\d+) (\d+)")


def probe_main(port: int, senders: int, interval_ns: int, ctl: Any) -> None:
    """Probe process: *senders* ping connections and one timer; serves ``("measure", seconds)`` requests
    (*seconds* None: until a ``("stop",)`` message)."""
    try:
        tx = [connect(port) for _ in range(senders)]
        rx = connect(port)
        for i, s in enumerate([rx, *tx]):
            s.setblocking(True)
            s.sendall(b"/nick %s\n" % (b"probetimer" if i == 0 else b"probe%d" % i))
            s.settimeout(10)
            got = b""
            while b"\nOK" not in got and b"\nERROR" not in got and len(got) < 1 << 20:
                got += s.recv(65536) or b"\nERROR eof"
            s.setblocking(False)
        ctl.send(("ready",))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, never hangs it
        ctl.send(("fail", repr(exc)))
        return
    sel = selectors.DefaultSelector()
    for s in [rx, *tx]:
        sel.register(s, selectors.EVENT_READ, s is rx)
    seq, tail, dead = 0, b"", False
    while True:
        msg = ctl.recv()
        if msg[0] != "measure":
            return
        start = time.monotonic_ns()
        end = start + int(msg[1] * 1e9) if msg[1] is not None else 2**62
        sent: dict[int, int] = {}
        lat: list[float] = []
        nxt = start
        while True:
            now = time.monotonic_ns()
            if end == 2**62 and ctl.poll():  # ("stop",) ends an open-ended measure
                ctl.recv()
                end = now
            if now >= end and (not sent or now >= end + 2_000_000_000):
                break
            if nxt <= now < end:
                seq += 1
                try:
                    tx[seq % senders].send(b"ping %d %d\n" % (seq, now))
                    sent[seq] = now
                except OSError:
                    dead = True
                nxt += interval_ns
            for key, _ in sel.select(max(0.0, min(nxt - now, interval_ns) / 1e9)):
                try:
                    data = key.fileobj.recv(262144)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(key.fileobj)
                    dead = True
                    continue
                if key.data:  # the timer
                    data, t = tail + data, time.monotonic_ns()
                    cut = data.rfind(b"\n") + 1
                    tail = data[cut:]
                    for n, t0 in PING_RE.findall(data, 0, cut):
                        if sent.pop(int(n), None) is not None:
                            lat.append((t - int(t0)) / 1e6)
        now = time.monotonic_ns()
        lost = len(sent)
        lat += [(now - t0) / 1e6 for t0 in sent.values()]
        ctl.send(("result", lat, lost, dead))


class Probe:
    """The probe process and its control pipe."""

    def __init__(self, port: int, senders: int, interval_ms: float) -> None:
        ctx = get_context("fork")
        self.ctl, theirs = ctx.Pipe()
        self.proc = ctx.Process(target=probe_main, args=(port, senders, int(interval_ms * 1e6), theirs),
                                 daemon=True)
        self.proc.start()
        msg = self.ctl.recv() if self.ctl.poll(30) else ("fail", "probe not ready in 30 s")
        if msg[0] != "ready":
            self.stop()
            raise RuntimeError(f"probe: {msg[1]}")

    def start(self, seconds: float | None) -> None:
        """Ping for *seconds* (None: until :meth:`finish`)."""
        self.ctl.send(("measure", seconds))
        self.seconds = seconds if seconds is not None else 0.0

    def finish(self) -> tuple[list[float], int, bool]:
        """End an open-ended measure (:meth:`start` with None); its result."""
        self.ctl.send(("stop",))
        return self.result()

    def result(self) -> tuple[list[float], int, bool]:
        """``(latencies ms, pings lost, a connection died)``; a lost ping counts with the time it waited."""
        if not self.ctl.poll(self.seconds + 10):
            return [], 0, True
        _, lat, lost, dead = self.ctl.recv()
        return lat, lost, dead

    def stop(self) -> None:
        try:
            self.ctl.send(("exit",))
        except OSError:
            pass
        self.proc.join(3)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(3)


def pct(values: list[float], q: float) -> float:
    """The *q*-quantile (0..1, nearest rank) of *values*; nan when empty."""
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


# --------------------------------------------------------------------------- attacks
class Scene:
    """What an attack gets: the server, options, its deadline, sockets to close at the end."""

    def __init__(self, server: Server, args: argparse.Namespace) -> None:
        self.server, self.args, self.port = server, args, server.port
        self.deadline = 0.0
        self.socks: list[socket.socket] = []
        self.note = ""

    def many(self, n: int, limit: float = 30.0) -> list[socket.socket]:
        socks = connect_many(self.port, n, time.monotonic() + limit)
        self.socks += socks
        return socks

    def one(self) -> socket.socket:
        s = connect(self.port)
        self.socks.append(s)
        return s

    def greeted(self, socks: list[socket.socket], limit: float = 30.0) -> int:
        """Read each socket until its greeting arrived (bounded); how many were greeted."""
        end, ok = time.monotonic() + limit, 0
        for s in socks:
            lines, _ = recv_lines(s, end, until=b"Welcome", cap=MiB)
            ok += any(b"Welcome" in ln for ln in lines)
        return ok

    def hold(self) -> None:
        """Keep everything open until the deadline."""
        time.sleep(max(0.0, self.deadline - time.monotonic()))


def a3_frame(sc: Scene) -> str:
    socks = sc.many(50)
    pump({s: b"\x10%d x\n" % (4 * MiB) + b"\0" * (4 * MiB - 1) for s in socks}, sc.deadline)
    sc.hold()
    return summarize(socks, "frame senders")


def setup_members(n_attr: str) -> Callable[[Scene], None]:
    def setup(sc: Scene) -> None:
        n = getattr(sc.args, n_attr)
        members = sc.many(n, limit=60)
        got = sc.greeted(members, limit=60)
        sc.note = f"{got}/{n} members; "
    return setup


def a4_who(sc: Scene) -> str:
    socks = [sc.one() for _ in range(4)]
    pump({s: b"/who\n" * (256 * 1024 // 5) for s in socks}, sc.deadline)
    sc.hold()
    return summarize(socks, "/who senders")


def a5_file(sc: Scene) -> str:
    recv = sc.many(100)
    for s in recv:
        s.send(b"/caps binary\n")
    end = time.monotonic() + 15
    ready = sum(any(ln.startswith(b"OK caps") for ln in recv_lines(s, end, until=b"OK caps")[0]) for s in recv)
    tx = sc.one()
    tx.send(b"/caps binary\n/sendfile f %d\n" % (4 * MiB))
    lines, _ = recv_lines(tx, time.monotonic() + 5, until=b"sendfile")
    ok = [ln for ln in lines if ln.startswith((b"OK sendfile", b"ERROR"))]
    m = re.match(rb"OK sendfile (\d+)", ok[0] if ok else b"")
    if not m:
        return f"sendfile refused: {ok[:1]!r} ({ready} receivers ready)"
    sent = pump({tx: b"\x10%d file-data %s\n" % (4 * MiB, m.group(1)) + b"\xab" * (4 * MiB)}, sc.deadline, read=True)
    sc.hold()
    lines, eof = recv_lines(tx, time.monotonic() + 0.5)
    frames = [ln.split(b" ", 1)[1].decode(errors="replace")[:40] for ln in lines if ln.startswith(b"\x10")]
    return (f"sender sent {sent[tx] / MiB:.1f} MiB, {'closed' if eof else tcp_state(tx)}"
            + (f", got {frames[-1]!r}" if frames else "") + "; " + summarize(recv, f"receivers ({ready} ready)"))


def a6_quit(sc: Scene) -> str:
    one = sc.one()
    one.send(b"/help\n/upper endofhelp\n")
    lines, _ = recv_lines(one, time.monotonic() + 5, until=b"ENDOFHELP")
    size = sum(len(ln) + 1 for ln in lines if not ln.startswith(b"* Welcome")) - len(b"ENDOFHELP\n")
    socks = sc.many(40)
    help_lines = max(1, 4 * MiB // max(64, size))
    pump({s: b"/help\n" * help_lines + b"/quit\n" for s in socks}, sc.deadline)
    sc.hold()
    return summarize(socks, "quitters, never reading")


def a7_unknown(sc: Scene) -> str:
    return "/x at 100 KiB/s: " + flood(sc.one(), b"/x\n" * 341, sc.deadline, rate=100 * 1024)


def a8(line: bytes) -> Callable[[Scene], str]:
    def attack(sc: Scene) -> str:
        return flood(sc.one(), line * (65536 // len(line)), sc.deadline)
    return attack


def a9_fds(sc: Scene) -> str:
    socks = sc.many(200, limit=10)
    sc.hold()
    return f"{len(socks)} connected; " + summarize(socks, "holders")


def a10_idle(sc: Scene) -> str:
    """Unfinished lines first (few joins, so little freed memory for them to reuse), then idle."""
    srv, n = sc.server, sc.args.idle
    srv.settle()
    rss0 = srv.status("VmRSS")
    partial = sc.many(100)
    got = sc.greeted(partial)
    srv.settle()
    rss1 = srv.status("VmRSS")
    pump({s: b"a" * 61440 for s in partial}, time.monotonic() + 10)
    srv.settle()
    rss2 = srv.status("VmRSS")
    idle = sc.many(n - len(partial), limit=60)
    got += sc.greeted(idle, limit=60)
    srv.settle()
    rss3 = srv.status("VmRSS")
    sc.hold()
    per_line = (rss2 - rss1) * 1024 / max(1, len(partial))
    per_idle = (rss3 - rss2) * 1024 / max(1, len(idle))
    return (f"{got}/{n} greeted; {per_idle:.1f} KiB RSS per idle conn, {per_line:.1f} KiB per "
            f"60 KiB unfinished line (+{rss3 - rss0:.1f} MiB in all); " + summarize(partial + idle, "idle"))


def a11_churn(sc: Scene) -> str:
    rate, done, failed, live = sc.args.churn_rate, 0, 0, []
    t0 = time.monotonic()
    for i in range(int(rate * sc.args.seconds) + 1):
        wait = t0 + i / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if time.monotonic() > sc.deadline:
            break
        try:
            live.append(connect(sc.port, timeout=1))
            done += 1
        except OSError:
            failed += 1
        while len(live) > 10:
            live.pop(0).close()
    for s in live:
        s.close()
    secs = time.monotonic() - t0
    return f"{done} connect/close in {secs:.1f} s ({done / max(secs, 1e-9):.0f}/s), {failed} failed"


def a13_long(sc: Scene) -> str:
    tx, rx = sc.one(), sc.one()
    for s, nick in ((tx, b"longline"), (rx, b"longreader")):
        s.send(b"/nick %s\n" % nick)
        recv_lines(s, time.monotonic() + 5, until=b"\nOK")
    tx.send(b"y" * 65534 + b"\n")
    lines, _ = recv_lines(rx, min(sc.deadline, time.monotonic() + 5), until=b"yyy\n")
    got = [len(ln) + 1 for ln in lines if ln.startswith(b"longline: ")]
    back, _ = recv_lines(tx, time.monotonic() + 0.5)
    err = [ln.decode(errors="replace")[:60] for ln in back if ln.startswith(b"ERROR")]
    sc.hold()
    if got:
        verdict = "OVER the limit" if got[0] > 65536 else "within the limit"
        return f"receiver got a {got[0]:,}-byte line ({verdict} of 65,536)" + (f"; sender got {err[0]}" if err else "")
    return "receiver got no such line" + (f"; sender got {err[0]}" if err else "; sender got no ERROR")


def a14_flood_count(sc: Scene) -> str:
    witness, flooder = sc.one(), sc.one()
    for s, nick in ((witness, b"witness"), (flooder, b"flooder")):
        s.send(b"/nick %s\n" % nick)
        recv_lines(s, time.monotonic() + 5, until=b"\nOK")
    t0 = time.monotonic()
    flood = b"".join(b"flood %04d %s\n" % (i, b"z" * 88) for i in range(5000))  # 100-byte lines: 500 KB
    sent = pump({flooder: flood}, sc.deadline)[flooder]
    got, gone, buf = 0, 0.0, b""
    while time.monotonic() < sc.deadline and not gone:  # the witness: flood lines until the flooder left
        lines, eof = recv_lines(witness, min(sc.deadline, time.monotonic() + 0.2), until=b"flooder left")
        got += sum(ln.startswith(b"flooder: flood ") for ln in lines)
        if any(ln.startswith(b"* flooder left") for ln in lines):
            gone = time.monotonic() - t0
        if eof:
            break
    end = "still open"
    while time.monotonic() < sc.deadline + 5:  # the flooder's stream, to its end
        try:
            data = flooder.recv(262144)
        except BlockingIOError:
            time.sleep(0.01)
            continue
        except ConnectionResetError:
            end = "a reset"
            break
        if not data:
            end = "EOF"
            break
        buf = (buf + data)[-4096:]
    last = buf.rstrip(b"\n").rsplit(b"\n", 1)[-1].decode(errors="replace")[:40] or "nothing"
    when = f"left after {gone:.1f} s" if gone else "still in the room"
    return (f"witness got {got} of 5,000 lines (flooder sent {sent // 1024} KiB, {when}); "
            f"flooder read {last!r} then {end}")


#: key -> (label, setup or None, attack). 9 needs root and --fd-limit.
ATTACKS: dict[str, tuple[str, Callable[[Scene], None] | None, Callable[[Scene], str]]] = {
    "3": ("3 unfinished 4 MiB frames, 50 conns, no caps", None, a3_frame),
    "4": ("4 /who 4x256 KiB, {members} members", setup_members("members"), a4_who),
    "5": ("5 4 MiB chunk to 100 non-reading receivers", None, a5_file),
    "6": ("6 /quit, never reading, 40 conns", None, a6_quit),
    "7": ("7 /x flood ~100 KiB/s", None, a7_unknown),
    "8a": ("8a chat flood", None, a8(b"flood " + b"z" * 53 + b"\n")),
    "8b": ("8b /upper flood", None, a8(b"/upper " + b"z" * 52 + b"\n")),
    "8c": ("8c /help flood", None, a8(b"/help\n")),
    "9": ("9 RLIMIT_NOFILE 128, 200 conns", None, a9_fds),
    "10": ("10 {idle} idle conns, 100 with 60 KiB unfinished line", None, a10_idle),
    "11": ("11 churn {churn_rate}/s beside {idle} members", setup_members("idle"), a11_churn),
    "13": ("13 65,535-byte chat line", None, a13_long),
    "14": ("14 5,000-line chat flood, never reading", None, a14_flood_count),
}


# --------------------------------------------------------------------------- runner
def run_attack(key: str, args: argparse.Namespace, extra: list[str], tmp: str) -> dict[str, Any]:
    """One attack on a fresh server: baseline, then the attack; the row's numbers."""
    _, setup, attack = ATTACKS[key]
    row: dict[str, Any] = {"key": key}
    prefix = ["prlimit", "--nofile=128:128", "--"] if key == "9" else []
    server = probe = sc = None
    try:
        server = Server(tmp, extra, prefix)
        probe = Probe(server.port, args.probe_senders, args.probe_interval_ms)
        sc = Scene(server, args)
        if setup:
            setup(sc)
            server.settle()
        base_s = min(3.0, args.seconds)
        c = server.cpu()
        probe.start(base_s)
        base, _, _ = probe.result()
        base_cpu = (server.cpu() - c) * args.seconds / base_s  # scaled to the attack's length
        cpu0 = server.cpu()
        sc.deadline = time.monotonic() + args.seconds
        probe.start(args.seconds)
        outcome = attack(sc)
        cpu1 = server.cpu()
        lat, lost, dead = probe.result()
        alive = server.proc.poll() is None
        row.update(p50=pct(lat, 0.5), p99=pct(lat, 0.99), base99=pct(base, 0.99),
                   rss=server.status("VmHWM"), cpu=cpu1 - cpu0)
        notes = [] if alive else [f"SERVER DIED rc={server.proc.returncode}"]
        if lost or dead:
            notes.append(f"probe lost {lost}/{len(lat)} pings" + (", probe disconnected" if dead else ""))
        row["outcome"] = "; ".join(notes + [sc.note + outcome, f"server CPU at baseline {base_cpu:.2f} s"])
    except Exception as exc:  # noqa: BLE001 - one failed attack is a row, the others go on
        row["outcome"] = f"bench error: {exc!r}"[:200]
        if server is not None and server.proc.poll() is not None:
            row["outcome"] = f"SERVER DIED rc={server.proc.returncode}; " + row["outcome"]
    finally:
        for s in sc.socks if sc else ():
            s.close()
        if probe is not None:
            probe.stop()
        if server is not None:
            server.stop()
    return row


def fmt(v: Any, spec: str) -> str:
    return "-" if v is None or v != v else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints one Markdown table; returns 0."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--attacks", default="3,4,5,6,7,8,9,10,11,13,14", help="comma-separated; 8 = 8a,8b,8c")
    ap.add_argument("--seconds", type=float, default=5.0, help="attack duration per attack")
    ap.add_argument("--runs", type=int, default=1, help="runs per attack (median)")
    ap.add_argument("--members", type=int, default=300, help="idle members in attack 4's room")
    ap.add_argument("--idle", type=int, default=1000, help="idle connections in attacks 10 and 11")
    ap.add_argument("--churn-rate", type=float, default=200, help="connect/close per second (11)")
    ap.add_argument("--probe-senders", type=int, default=30, help="connections the probe pings from")
    ap.add_argument("--probe-interval-ms", type=float, default=20.0, help="ms between two pings (all senders)")
    ap.add_argument("--fd-limit", action="store_true", help="run attack 9 (needs root)")
    ap.add_argument("--server-args", default="", help="extra chatroom-server arguments (shell-quoted)")
    args = ap.parse_args(argv)
    keys: list[str] = []
    for k in (x.strip() for x in args.attacks.split(",") if x.strip()):
        keys += ["8a", "8b", "8c"] if k == "8" else [k]
    unknown = [k for k in keys if k not in ATTACKS]
    if unknown:
        ap.error(f"unknown attack(s) {unknown}; known: {', '.join(ATTACKS)}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # many sockets here and in the server
    need = 2 * args.idle + 500
    if hard < need:
        print(f"<!-- RLIMIT_NOFILE {hard} < {need}: --idle may not be reached -->")
    extra = (["--max-per-address", "0"] if "--max-per-address" in server_flags() else []) + shlex.split(args.server_args)
    with open("/proc/loadavg") as f:
        load0 = " ".join(f.read().split()[:3])
    print(f"<!-- chatroom-server {' '.join(extra)}; {args.seconds:g} s per attack, {args.runs} run(s), "
          f"probe {args.probe_senders} senders, a ping every {args.probe_interval_ms:g} ms; "
          f"load average {load0} -->\n", flush=True)
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in keys}
    tmp = tempfile.mkdtemp(prefix="abuse-")
    try:
        for _ in range(args.runs):
            for k in keys:
                if k == "9" and not (args.fd_limit and os.geteuid() == 0):
                    rows[k].append({"key": k, "outcome": "skipped (needs root and --fd-limit)"})
                    continue
                rows[k].append(run_attack(k, args, extra, tmp))
                r = rows[k][-1]
                print(f"<!-- {k}: p50 {fmt(r.get('p50'), '.1f')} p99 {fmt(r.get('p99'), '.1f')} "
                      f"base p99 {fmt(r.get('base99'), '.1f')} rss {fmt(r.get('rss'), '.0f')} "
                      f"cpu {fmt(r.get('cpu'), '.2f')}: {r['outcome']} -->", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n| attack | probe p50 ms | p99 ms | baseline p99 ms | server peak RSS MiB | server CPU s | attacker outcome |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for k in keys:
        label = ATTACKS[k][0].format(**vars(args))
        med = {c: statistics.median([r[c] for r in rows[k] if r.get(c) is not None] or [float("nan")])
               for c in ("p50", "p99", "base99", "rss", "cpu")}
        print(f"| {label} | {fmt(med['p50'], ',.1f')} | {fmt(med['p99'], ',.1f')} | {fmt(med['base99'], ',.1f')} "
              f"| {fmt(med['rss'], ',.0f')} | {fmt(med['cpu'], '.2f')} | {rows[k][-1]['outcome']} |")
    with open("/proc/loadavg") as f:
        print(f"\n<!-- load average after: {' '.join(f.read().split()[:3])} -->")
    return 0


if __name__ == "__main__":
    sys.exit(main())
