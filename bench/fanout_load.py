"""Load-generator workers and shared constants for bench/fanout.py (see its docstring).

Rooms (``rooms`` > 0, chatroom protocol only; bench/rooms.py): client ``i`` is
in room ``#rNNN`` with ``NNN = i % rooms``; after ``/nick`` it sends
``/join #rNNN`` then ``/part #lobby`` and is registered at ``OK part``, so it
is in its room only. Sender ``k`` (client ``k``) then reaches the other
members of room ``k % rooms``; each worker's completion levels, loss count and
disconnect handling count only those. A line from a sender of another room
counts as an anomaly (misrouted). ``rooms`` = 0 is everyone in ``#lobby``.
"""


from __future__ import annotations

import os
import random
import re
import selectors
import socket
import time
from array import array
from collections import Counter
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



# --------------------------------------------------------------------------- workers
class _Client:
    __slots__ = ("got", "idx", "nick", "nxt", "out", "room", "sent", "sid", "sock", "state", "tail")

    def __init__(self, idx: int, rooms: int = 0) -> None:
        self.idx = idx
        self.room = idx % rooms if rooms else -1  # -1: #lobby
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
                lat_every: int, rooms: int = 0, window: int = WINDOW, tls: bool = False) -> None:
    """Worker process *w*: owns clients ``w, w+W, ...``; see the module docstring.

    *rooms* > 0 spreads the clients over that many rooms (``i % rooms``);
    *window* is the number of lines in flight over all senders; *tls* wraps
    every client socket in TLS (``fanout_tls.TLSWorker``).

    Protocol with the coordinator over *ctl*: sends ``("ready",)`` or
    ``("fail", reason)``; receives ``("go", t_go, m0, m1, drain_end)`` (monotonic
    ns); sends ``("result", dict)``; receives ``("exit",)``.
    """
    try:
        cls = _Worker
        if tls:
            from fanout_tls import TLSWorker as cls  # the TLS client subclass
        cls(w, nworkers, n, port, irc, ctl, done_arr, sent_arr, stopped, wake_r, wake_w,
            lat_every, rooms, window).run()
    except Exception as exc:  # noqa: BLE001 - any failure is reported, never hangs the coordinator
        ctl.send(("fail", f"worker {w}: {exc!r}"))


class _Worker:
    #: Exceptions that mean "the socket cannot take more now" (a TLS worker adds SSL's want-errors).
    BLOCKED: tuple[type[BaseException], ...] = (BlockingIOError,)

    def __init__(self, w: int, nworkers: int, n: int, port: int, irc: bool, ctl: Connection,
                 done_arr: Any, sent_arr: Any, stopped: Any, wake_r: int, wake_w: list[int],
                 lat_every: int, rooms: int = 0, window: int = WINDOW) -> None:
        if rooms and irc:
            raise ValueError("rooms are for the chatroom protocol only")
        self.w, self.W, self.port, self.irc, self.ctl = w, nworkers, port, irc, ctl
        self.done_arr, self.sent_arr, self.stopped = done_arr, sent_arr, stopped
        self.wake_r, self.wake_w = wake_r, wake_w
        self.clients = [_Client(i, rooms) for i in range(w, n, nworkers)]
        self.senders = [c for c in self.clients if c.sid >= 0]
        self.win = sender_windows(window=window)
        #: room of each sender (-1: #lobby); a client hears sender k iff same room
        self.sroom = [k % rooms if rooms else -1 for k in range(SENDERS)]
        self.need = [sum(1 for c in self.clients if c.room == self.sroom[k] and c.idx != k)
                     for k in range(SENDERS)]
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
            except self.BLOCKED:
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
                if c.room < 0:
                    c.state = 3
                else:
                    self.send(c, b"/join #r%03d\n/part #lobby\n" % c.room)
                    c.state = 2
            elif c.state == 2 and line.startswith(b"OK part"):
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
                    data = self.recv(c)
                    if data is None:
                        continue
                    if not data:
                        raise RuntimeError(f"{c.nick!r} closed by server during setup")
                    if c.state != 3 and self.handshake(c, data):
                        pending -= 1
                        registered += 1
                    elif self.irc and b"PING" in data:
                        self.ping(c, data)

    # -- steady state
    def recv(self, c: _Client) -> bytes | None:
        """What *c*'s socket has (up to 64 KiB); None if nothing yet, b"" at its end."""
        try:
            return c.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return b""

    def flush(self, c: _Client) -> None:
        try:
            del c.out[: c.sock.send(c.out)]
        except self.BLOCKED:
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
            if self.sroom[k] != c.room:
                self.anomalies += 1
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
            if k == c.sid or not self.need[k] or self.sroom[k] != c.room:
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
        for k in range(SENDERS):  # a worker with none of k's receivers (rooms) must not pin k at 0
            self.done_arr[self.w * SENDERS + k] = self.done[k]
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
                    data = self.recv(c)
                    if data is None:
                        continue
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
            exp = sum(final[k] for k in range(SENDERS) if self.sroom[k] == c.room and k != c.sid)
            expected += exp
            got += c.got
            lost += max(0, exp - c.got)
        result = {"win_deliv": self.win_deliv, "lat": dict(Counter(self.lat)), "lost": lost,
                  "expected": expected, "got": got, "anomalies": self.anomalies,
                  "echoes": self.echoes, "dead": self.dead, "cpu": cpu1 - cpu0,
                  "cipher": getattr(self, "cipher", ""),
                  "drained": self.drained()}
        self.ctl.send(("result", result))
        self.ctl.recv()  # ("exit",): the coordinator stops the server first


