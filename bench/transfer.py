"""Benchmark: one file through ``chatroom-server`` to 1 and to 4 receivers, against a socat relay.

Usage::

    python bench/transfer.py                     # 1 GiB, 3 runs of each case, results as Markdown
    python bench/transfer.py --size 256M --runs 1

Every process below is started by this script (it re-runs itself with
``--role``); all talk TCP on 127.0.0.1:

* ``chatroom-server --quiet --flood-rate 0`` (fresh for every run, so its peak RSS is per run; flood
  control off because the bystander pings 200 lines/s, over the default budget);
* **raw socket** receivers and sender speaking the frame protocol with
  :mod:`chatroom.wire.lines` (not ``chatroom-client``, so the terminal UI is not
  what is measured): the sender reads the file in 1 MiB chunks, hashes it
  with SHA-256 and sends ``file-data`` frames; each receiver parses frames,
  hashes and writes the payload to its own file in a temporary folder, and
  checks size and SHA-256 at ``file-end``;
* a **bystander** process with two plain (nc-like) connections in the same
  room: one says ``ping <time>`` every 5 ms, the other measures how long each
  line takes to arrive (chat latency during the transfer);
* the **ceiling**: the same sender and receiver code moving the same bytes,
  unframed, through ``socat -b 1048576 TCP-LISTEN:A TCP-LISTEN:B`` (Debian's
  socat).

MB/s is end to end: from the sender's first data byte to the last receiver
having written and verified the whole file (10^6 bytes per MB). Server CPU is
utime+stime from ``/proc/PID/stat`` over that window; peak RSS is
``VmHWM`` from ``/proc/PID/status``. Each figure is the median of the runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from chatroom.wire import lines as protocol

CHUNK = 1024 * 1024
DEADLINE = 300.0


# -- roles (separate processes) ------------------------------------------------------------
class Conn:
    """A blocking socket with a frame parser: ``event()`` returns the next Line or Frame."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.parser = protocol.Parser(max_frame=8 * CHUNK)
        self.pending: list[Any] = []

    def event(self) -> Any:
        while not self.pending:
            data = self.sock.recv(4 * CHUNK)
            if not data:
                raise ConnectionError("server closed the connection")
            self.pending = self.parser.feed(data)
        return self.pending.pop(0)

    def line(self, prefix: str) -> str:
        while True:
            ev = self.event()
            if isinstance(ev, protocol.Line) and ev.text.startswith(prefix):
                return ev.text

    def send(self, text: str) -> None:
        self.sock.sendall(protocol.encode_line(text))

    def join(self, nick: str, binary: bool) -> None:
        self.line("* Welcome")
        if binary:
            self.send("/caps binary")
            self.line("OK caps binary")
        self.send(f"/nick {nick}")
        self.line(f"OK nick {nick}")



#: The bystander pings 200 lines/s, over the default flood budget (25/s): measure the relay, not the throttle.
NO_FLOOD = ("--flood-rate", "0")

def send_all(sock: socket.socket, header: bytes, payload: Any) -> None:
    """Send header and payload with one ``sendmsg`` (no copy), finishing a partial send."""
    sent = sock.sendmsg([header, payload])
    if sent < len(header):
        sock.sendall(header[sent:])
        sent = len(header)
    if sent - len(header) < len(payload):
        sock.sendall(memoryview(payload)[sent - len(header) :])


class FrameReader:
    """A zero-copy frame reader for the receiver: payload bytes are handed out as
    memoryview slices of one reused buffer, never copied into new objects."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray(4 * CHUNK)
        self.view = memoryview(self.buf)
        self.start = self.end = 0

    def _fill(self) -> None:
        if self.start == self.end:
            self.start = self.end = 0
        elif self.end == len(self.buf):  # move the unread tail to the front
            n = self.end - self.start
            self.buf[:n] = self.view[self.start : self.end]
            self.start, self.end = 0, n
        got = self.sock.recv_into(self.view[self.end :])
        if not got:
            raise ConnectionError("server closed the connection")
        self.end += got

    def header(self) -> str:
        """The next line (a frame header keeps its DLE), without the newline."""
        while True:
            nl = self.buf.find(b"\n", self.start, self.end)
            if nl >= 0:
                line = self.buf[self.start : nl].decode()
                self.start = nl + 1
                return line
            self._fill()

    def payload(self, size: int) -> Any:
        """Yield memoryview pieces of the next *size* payload bytes (valid until the next call)."""
        while size:
            if self.start == self.end:
                self._fill()
            n = min(size, self.end - self.start)
            yield self.view[self.start : self.start + n]
            self.start += n
            size -= n


def role_receiver(args: argparse.Namespace) -> None:
    out = open(args.out, "wb", buffering=0)  # noqa: SIM115 - closed at file-end; the process exits after
    hasher = hashlib.sha256()
    got = 0
    if args.mode == "socat":
        sock = socket.create_connection(("127.0.0.1", args.port), timeout=DEADLINE)
        print("ready", flush=True)
        buf = bytearray(4 * CHUNK)
        view = memoryview(buf)
        while got < args.size:
            n = sock.recv_into(buf)
            if not n:
                break
            hasher.update(view[:n])
            out.write(view[:n])
            got += n
        out.close()
        print(json.dumps({"end": time.monotonic(), "bytes": got, "sha256": hasher.hexdigest()}), flush=True)
        return
    conn = Conn(args.port)
    conn.join(args.nick, binary=True)
    reader = FrameReader(conn.sock)
    if conn.pending or conn.parser.buffered:
        raise RuntimeError("unexpected data after the handshake")
    print("ready", flush=True)
    while True:
        line = reader.header()
        if not line.startswith("\x10"):
            continue  # chat lines and notices
        size_text, _, meta = line[1:].partition(" ")
        kind = meta.split(" ", 1)[0]
        for piece in reader.payload(int(size_text)):
            if kind == "file-data":
                hasher.update(piece)
                out.write(piece)
                got += len(piece)
        if kind == "file-end":
            out.close()
            ok = meta.split()[2] == hasher.hexdigest()
            print(json.dumps({"end": time.monotonic(), "bytes": got, "sha256": hasher.hexdigest(), "ok": ok}), flush=True)
            return
        if kind == "file-abort":
            raise SystemExit(f"aborted: {meta}")


def read_chunks(path: str) -> Any:
    """Yield memoryviews of successive CHUNK-sized pieces of *path*, read into one reused buffer."""
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            yield view[:n]


def role_sender(args: argparse.Namespace) -> None:
    hasher = hashlib.sha256()
    if args.mode == "socat":
        for _ in range(200):  # socat listens on the second port only once the receiver is connected
            try:
                sock = socket.create_connection(("127.0.0.1", args.port), timeout=DEADLINE)
                break
            except ConnectionRefusedError:
                time.sleep(0.01)
        start = time.monotonic()
        for chunk in read_chunks(args.file):
            hasher.update(chunk)
            sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)
        print(json.dumps({"start": start, "sha256": hasher.hexdigest()}), flush=True)
        sock.recv(1)
        return
    conn = Conn(args.port)
    conn.join("sender", binary=True)
    conn.send(f"/sendfile bench.bin {args.size}")
    tid = int(conn.line("OK sendfile ").split()[2])
    start = time.monotonic()
    meta = f"file-data {tid}"
    for chunk in read_chunks(args.file):
        hasher.update(chunk)
        send_all(conn.sock, protocol.encode_frame_header(meta, len(chunk)), chunk)
    conn.sock.sendall(protocol.encode_frame(f"file-end {tid} {hasher.hexdigest()}", b""))
    while True:
        ev = conn.event()
        if isinstance(ev, protocol.Frame):
            break
    print(json.dumps({"start": start, "sha256": hasher.hexdigest(), "done": ev.meta}), flush=True)


def role_bystander(args: argparse.Namespace) -> None:
    talker, listener = Conn(args.port), Conn(args.port)
    talker.join("bytalk", binary=False)
    listener.join("bylisten", binary=False)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            try:
                ev = listener.event()
            except (OSError, ConnectionError):
                return
            if isinstance(ev, protocol.Line) and ev.text.startswith("bytalk: ping "):
                sent = float(ev.text.rsplit(" ", 1)[1])
                samples.append((sent, time.monotonic() - sent))

    threading.Thread(target=listen, daemon=True).start()
    print("ready", flush=True)
    stdin_closed = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stdin_closed.set()), daemon=True).start()
    while not stdin_closed.is_set():
        talker.send(f"ping {time.monotonic():.6f}")
        time.sleep(0.005)
    time.sleep(0.2)
    stop.set()
    print(json.dumps({"samples": samples}), flush=True)


# -- orchestration -----------------------------------------------------------------------------
def spawn(role: str, *args: str, stdin: Any = subprocess.DEVNULL, nice: int = 0) -> subprocess.Popen[str]:
    prefix = ["nice", "-n", str(nice)] if nice else []
    return subprocess.Popen(
        [*prefix, sys.executable, __file__, "--role", role, *args], stdin=stdin, stdout=subprocess.PIPE, text=True
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def last_json(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=DEADLINE)  # closes stdin: the bystander's signal to stop
    if proc.returncode:
        raise RuntimeError(f"{proc.args} exited {proc.returncode}: {out[-500:]}")
    return json.loads(out.strip().splitlines()[-1])


def wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        raise RuntimeError(f"{proc.args} did not start: {line!r}")


def run_socat(path: Path, size: int, tmp: Path, digest: str) -> dict[str, Any]:
    p_recv, p_send = free_port(), free_port()
    relay = subprocess.Popen(
        ["socat", "-b", str(CHUNK), f"TCP4-LISTEN:{p_recv},bind=127.0.0.1,reuseaddr",
         f"TCP4-LISTEN:{p_send},bind=127.0.0.1,reuseaddr"],
    )  # fmt: skip
    try:
        for _ in range(200):
            try:
                receiver = spawn("receiver", "--mode", "socat", "--port", str(p_recv), "--size", str(size),
                                 "--out", str(tmp / "socat.out"))  # fmt: skip
                wait_ready(receiver)
                break
            except RuntimeError:
                receiver.wait()
                time.sleep(0.01)
        sender = spawn("sender", "--mode", "socat", "--port", str(p_send), "--file", str(path))
        s, r = last_json(sender), last_json(receiver)
    finally:
        time.sleep(0.05)  # socat exits by itself once both sides closed; otherwise stop it
        os.kill(relay.pid, signal.SIGTERM)  # harmless on an exited (not yet reaped) child
        _, status, usage = os.wait4(relay.pid, 0)  # reaping it ourselves gives its total CPU time
        relay.returncode = status
        cpu = usage.ru_utime + usage.ru_stime
    (tmp / "socat.out").unlink()
    assert r["bytes"] == size and r["sha256"] == digest, "socat run lost bytes"
    nan = float("nan")
    return {"mbps": size / (r["end"] - s["start"]) / 1e6, "cpu": cpu, "rss": nan, "p50": nan, "p99": nan, "pings": 0}


def run_chatroom(path: Path, size: int, receivers: int, tmp: Path, digest: str, nice: int = 0) -> dict[str, Any]:
    """One run through a fresh ``chatroom-server``; *nice* lowers the sender's and receivers' CPU priority."""
    server = subprocess.Popen(
        ["chatroom-server", "--port", "0", "--quiet", "--data-dir", str(tmp / "data"), *NO_FLOOD,
         "--max-file-size", str(size), "--no-plugins"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    procs: list[subprocess.Popen[str]] = []
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip().rsplit(":", 1)[1]
        recv = []
        for i in range(receivers):
            p = spawn("receiver", "--mode", "chatroom", "--port", port, "--nick", f"r{i}",
                      "--out", str(tmp / f"r{i}.out"), "--size", str(size), nice=nice)  # fmt: skip
            procs.append(p)
            wait_ready(p)
            recv.append(p)
        bystander = spawn("bystander", "--port", port, stdin=subprocess.PIPE)
        procs.append(bystander)
        wait_ready(bystander)
        time.sleep(0.1)  # a few pings before the transfer starts
        cpu0 = proc_cpu(server.pid)
        sender = spawn("sender", "--mode", "chatroom", "--port", port, "--file", str(path), "--size", str(size),
                       nice=nice)  # fmt: skip
        procs.append(sender)
        s = last_json(sender)
        results = [last_json(p) for p in recv]
        cpu = proc_cpu(server.pid) - cpu0
        rss = proc_hwm_mib(server.pid)
        samples = last_json(bystander)["samples"]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        server.terminate()
        server.wait()
    end = max(r["end"] for r in results)
    assert all(r["bytes"] == size and r["sha256"] == digest and r["ok"] for r in results), results
    for i in range(receivers):
        (tmp / f"r{i}.out").unlink()
    during = sorted(lat for sent, lat in samples if s["start"] <= sent <= end)
    p50 = during[len(during) // 2] * 1000 if during else float("nan")
    p99 = during[min(len(during) - 1, int(len(during) * 0.99))] * 1000 if during else float("nan")
    return {"mbps": size / (end - s["start"]) / 1e6, "cpu": cpu, "rss": rss, "p50": p50, "p99": p99,
            "pings": len(during)}  # fmt: skip


def make_file(path: Path, size: int) -> str:
    """Write *size* bytes (a 16 MiB random block repeated) and return their SHA-256 hex digest."""
    block = os.urandom(16 * CHUNK)
    hasher = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            part = block[: min(left, len(block))]
            f.write(part)
            hasher.update(part)
            left -= len(part)
    return hasher.hexdigest()


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    return int(float(text[:-1]) * units[text[-1]]) if text[-1:] in units else int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=1 << 30, help="file size (default 1G)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--receivers", default="1,4", help="comma-separated receiver counts (default 1,4)")
    parser.add_argument("--niced", default="4", help="receiver counts to run again with the sender and receivers "
                        "at nice 10, standing in for other machines (default 4; '' for none)")  # fmt: skip
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--nick", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        {"receiver": role_receiver, "sender": role_sender, "bystander": role_bystander}[args.role](args)
        return
    if shutil.which("socat") is None:
        raise SystemExit("socat is needed for the ceiling: apt-get install -y socat")
    plan: list[tuple[str, int, int]] = [("socat relay, 1 receiver", 1, -1)]
    for n in [int(x) for x in args.receivers.split(",") if x]:
        plan.append((f"chatroom-server, {n} receiver{'s' * (n > 1)}", n, 0))
    for n in [int(x) for x in args.niced.split(",") if x]:
        plan.append((f"chatroom-server, {n} receiver{'s' * (n > 1)}, sender+receivers at nice 10", n, 10))
    load0 = os.getloadavg()[0]
    started = time.monotonic()
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in plan}
    with tempfile.TemporaryDirectory(prefix="chatroom-bench-") as tmp_name:
        tmp = Path(tmp_name)
        path = tmp / "bench.bin"
        digest = make_file(path, args.size)
        for run in range(args.runs):  # cases interleaved, so background load hits them alike
            for name, n, nice in plan:
                if nice < 0:
                    results[name].append(run_socat(path, args.size, tmp, digest))
                else:
                    results[name].append(run_chatroom(path, args.size, n, tmp, digest, nice))
                print(f"run {run + 1}/{args.runs} {name}: {results[name][-1]}", file=sys.stderr)
    fields = ("mbps", "cpu", "rss", "p50", "p99", "pings")
    med = {k: {f: statistics.median(r[f] for r in v) for f in fields} for k, v in results.items()}
    ceiling = med[plan[0][0]]["mbps"]
    print(f"{args.size / (1 << 20):.0f} MiB file, median of {args.runs} runs, {time.monotonic() - started:.0f} s; "
          f"{platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}, Python "
          f"{platform.python_version()}; load average {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end")  # fmt: skip
    print()
    print("| case | MB/s end to end | % of socat | server CPU s | server peak RSS MiB "
          "| bystander chat p50 / p99 ms (pings) |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, m in med.items():
        pct = f"{100 * m['mbps'] / ceiling:.0f}%"
        rss = "-" if m["rss"] != m["rss"] else f"{m['rss']:.1f}"
        lat = "-" if m["p99"] != m["p99"] else f"{m['p50']:.1f} / {m['p99']:.1f} ({m['pings']:.0f})"
        print(f"| {name} | {m['mbps']:.0f} | {pct} | {m['cpu']:.2f} | {rss} | {lat} |")


if __name__ == "__main__":
    main()
