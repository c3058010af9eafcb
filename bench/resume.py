"""Benchmark: resumable transfers. How much of a 1 GiB file goes again after an interruption at 50 %, and
what resume support costs the relay when nothing is interrupted.

Usage::

    python bench/resume.py                        # 1 GiB, 3 runs of each case, results as Markdown
    python bench/resume.py --size 256M --runs 1   # a quick look
    python bench/resume.py --before /tmp/v-main/bin   # also the version before (its chatroom-server and
                                                      # chatroom-client), in the same run

**Resume** (the real ``chatroom-client`` at both ends, through a fresh ``chatroom-server``): the sender
offers the file; the receiver's connection goes through a TCP proxy of this script that stops at 50 % of
the file's size in bytes sent to the receiver, and then, by case:

* *stream cut*: the proxy closes both ends (the receiver, ``--reconnect``, comes back through the proxy);
* *receiver killed*: SIGKILL to the receiving client (what it had not synced yet is lost), started again
  in the same folder;
* *server killed*: SIGKILL to the server, started again on the same port and data dir (both clients
  ``--reconnect``).

Re-sent is what the sender's ``resumed "NAME" ... sent the missing N bytes`` line says, as a share of the
file; every run checks the received file's SHA-256 (the client does, and this script compares sizes).

**Relay** (raw frame clients, as ``bench/transfer.py``'s, so the clients are not what is measured): one
sender, one receiver that reads and discards, through a fresh server; *v1*: ``/sendfile`` and
``file-data ID`` frames (an older client); *v2*: ``file-announce`` with the hash list and ``file-data ID
INDEX`` frames to a receiver that sent ``/caps resume`` (the resumable path); *before*: v1 through the
``chatroom-server`` of ``--before``. MB/s end to end, server CPU seconds over the transfer.

**Clients** (the real ``chatroom-client`` at both ends, nothing interrupted): MB/s from ``/sendfile`` to
the receiver's ``received`` line, seconds from ``/sendfile`` to the receiver's ``is sending`` line (the
offer; the resumable sender hashes the file first), and each client's CPU seconds over that time, per GiB: the sender's
include hashing the file for its hash list before the offer, the receiver's hashing each chunk and the
whole file and syncing its sidecar; with ``--before``, the same with that version's server and clients.

Cases are interleaved run by run; each figure is the median of the runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import transfer as tb  # noqa: E402 - bench/transfer.py: frame clients, file maker, /proc helpers
from client_recv import Client  # noqa: E402 - a chatroom-client whose lines are read by a thread

from chatroom.wire import lines as protocol  # noqa: E402
from chatroom.wire.chunks import DEFAULT_CHUNK  # noqa: E402

GIB = 1 << 30
DEADLINE = 600.0


# -- roles of the relay cases (separate processes) ---------------------------------------------------
def role_sender(args: argparse.Namespace) -> None:
    conn = tb.Conn(args.port)
    conn.join("sender", binary=True)
    chunk = DEFAULT_CHUNK
    whole = hashlib.sha256()
    if args.mode == "v2":
        conn.send("/caps resume")
        conn.line("OK caps")
        hashes = []
        for piece in tb.read_chunks(args.file):
            whole.update(piece)
            hashes.append(hashlib.sha256(piece).digest())
        sha = whole.hexdigest()
        conn.sock.sendall(protocol.encode_frame(f"file-announce {args.size} {chunk} {sha} bench.bin", b"".join(hashes)))
    else:
        conn.send(f"/sendfile bench.bin {args.size}")
    tid = int(conn.line("OK sendfile ").split()[2])
    start = time.monotonic()
    hasher = hashlib.sha256()
    for index, piece in enumerate(tb.read_chunks(args.file)):  # v1 hashes as it sends, as chatroom-client does
        meta = f"file-data {tid} {index}" if args.mode == "v2" else f"file-data {tid}"
        if args.mode != "v2":
            hasher.update(piece)
        tb.send_all(conn.sock, protocol.encode_frame_header(meta, len(piece)), piece)
    digest = whole.hexdigest() if args.mode == "v2" else hasher.hexdigest()
    conn.sock.sendall(protocol.encode_frame(f"file-end {tid} {digest}", b""))
    while not isinstance(conn.event(), protocol.Frame):
        pass
    print(json.dumps({"start": start}), flush=True)


def role_discard(args: argparse.Namespace) -> None:
    conn = tb.Conn(args.port)
    conn.join("receiver", binary=True)
    if args.mode == "v2":
        conn.send("/caps resume")
        conn.line("OK caps")
    reader = tb.FrameReader(conn.sock)
    print("ready", flush=True)
    got, token = 0, ""
    while True:
        line = reader.header()
        if not line.startswith("\x10"):
            continue
        size_text, _, meta = line[1:].partition(" ")
        for piece in reader.payload(int(size_text)):
            got += len(piece)
        if meta.startswith("file-chunks "):
            token, got = meta.split()[2], 0
        if meta.startswith(("file-end", "file-abort")):
            end = time.monotonic()
            if token:
                conn.sock.sendall(protocol.encode_frame(f"file-received {token}", b""))
            print(json.dumps({"end": end, "bytes": got, "meta": meta}), flush=True)
            return


def run_relay(server_cmd: str, mode: str, path: Path, size: int, tmp: Path) -> dict[str, float]:
    shutil.rmtree(tmp / "data", ignore_errors=True)
    server = subprocess.Popen([server_cmd, "--port", "0", "--quiet", "--data-dir", str(tmp / "data"), *tb.NO_FLOOD,
                               "--max-file-size", str(size), "--web-port", "off", "--no-plugins"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    procs: list[subprocess.Popen[str]] = []
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().strip().rsplit(":", 1)[1])
        receiver = spawn("discard", "--port", str(port), "--mode", mode)
        procs.append(receiver)
        tb.wait_ready(receiver)
        cpu0 = tb.proc_cpu(server.pid)
        sender = spawn("sender", "--port", str(port), "--mode", mode, "--file", str(path), "--size", str(size))
        procs.append(sender)
        got, start = tb.last_json(receiver), tb.last_json(sender)["start"]
        cpu = tb.proc_cpu(server.pid) - cpu0
        if got["bytes"] != size or not got["meta"].startswith("file-end"):
            raise RuntimeError(f"{mode}: {got}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        server.terminate()
        server.wait()
    return {"mbps": size / (got["end"] - start) / 1e6, "cpu": cpu}


def spawn(role: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, "--role", role, *args], stdout=subprocess.PIPE, text=True)


# -- the resume cases -----------------------------------------------------------------------------------
class Proxy:
    """127.0.0.1 -> the server's *port*; its first connection stops after *limit* bytes toward the client
    (``reached`` is set), then is closed when ``release`` is set. Later connections pass through."""

    def __init__(self, port: int, limit: int) -> None:
        self.port, self.limit = port, limit
        self.reached, self.release = threading.Event(), threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()[1]
        self.first = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE)
            except OSError:
                client.close()
                continue
            limit, self.first = (self.limit if self.first else None), False
            threading.Thread(target=self._pipe, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, limit), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, limit: int | None) -> None:
        moved = 0
        try:
            while limit is None or moved < limit:
                data = source.recv(65536 if limit is None else min(65536, limit - moved))
                if not data:
                    break
                sink.sendall(data)
                moved += len(data)
            if limit is not None and moved >= limit:
                self.reached.set()
                self.release.wait(DEADLINE)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self.release.set()
        self.listener.close()


def start_server(data: Path, port: int = 0) -> tuple[subprocess.Popen[str], int]:
    server = subprocess.Popen(["chatroom-server", "--port", str(port), "--quiet", "--data-dir", str(data), *tb.NO_FLOOD,
                               "--max-file-size", "8G", "--web-port", "off"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert server.stdout is not None
    return server, int(server.stdout.readline().strip().rsplit(":", 1)[1])


def run_resume(case: str, path: Path, size: int, tmp: Path) -> dict[str, float]:
    for name in ("data", "alice", "bob"):
        shutil.rmtree(tmp / name, ignore_errors=True)
    server, port = start_server(tmp / "data")
    proxy = Proxy(port, size // 2)
    people: list[Client] = []
    try:
        bob = client(proxy.address, "bob", tmp / "bob")
        alice = client(port, "alice", tmp / "alice")
        people += [bob, alice]
        (tmp / "alice" / "out").mkdir(parents=True, exist_ok=True)
        os.link(path, tmp / "alice" / "out" / "big.bin")
        start = time.monotonic()
        alice.send("/sendfile big.bin")
        if not proxy.reached.wait(DEADLINE):
            raise RuntimeError("the transfer never reached 50 %")
        if case == "receiver killed":
            bob.proc.kill()
            bob.proc.wait()
            proxy.release.set()
            bob = client(proxy.address, "bob", tmp / "bob")
            people.append(bob)
        elif case == "server killed":
            server.send_signal(signal.SIGKILL)
            server.wait()
            proxy.release.set()
            server, _ = start_server(tmp / "data", port)
        else:
            proxy.release.set()
        line, _ = alice.expect('resumed "big.bin"')
        got, end = bob.expect('received "big.bin"')
        if "sha256 ok" not in got or (tmp / "bob" / "in" / "big.bin").stat().st_size != size:
            raise RuntimeError(f"bad receipt: {got}")
    finally:
        proxy.close()
        for person in people:
            person.stop()
        server.kill()
        server.wait()
    match = re.search(r"sent the missing (\d+) bytes", line)
    assert match, line
    return {"resent": 100 * int(match.group(1)) / size, "seconds": end - start}


def client(port: int, nick: str, folder: Path) -> Client:
    """A ``chatroom-client --reconnect`` in *folder* (bench/client_recv.py's Client, started with ``--reconnect``)."""
    return Client(port, nick, folder, extra=("--reconnect",))


def run_clients(bindir: Path | None, path: Path, size: int, tmp: Path) -> dict[str, float]:
    """One uninterrupted transfer between two real clients (of *bindir*, else this version's)."""
    for name in ("data", "alice", "bob"):
        shutil.rmtree(tmp / name, ignore_errors=True)
    server_cmd = str(bindir / "chatroom-server") if bindir else "chatroom-server"
    server = subprocess.Popen([server_cmd, "--port", "0", "--quiet", "--data-dir", str(tmp / "data"), *tb.NO_FLOOD,
                               "--max-file-size", "8G", "--web-port", "off"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    people: list[Client] = []
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().strip().rsplit(":", 1)[1])
        program = str(bindir / "chatroom-client") if bindir else None
        bob = Client(port, "bob", tmp / "bob", program=program)
        alice = Client(port, "alice", tmp / "alice", program=program)
        people += [bob, alice]
        (tmp / "alice" / "out").mkdir(parents=True, exist_ok=True)
        os.link(path, tmp / "alice" / "out" / "big.bin")
        cpu0 = (alice.cpu(), bob.cpu())
        start = time.monotonic()
        alice.send("/sendfile big.bin")
        _, offered = bob.expect('* alice is sending "big.bin"')
        got, end = bob.expect('received "big.bin"')
        alice.expect('sent "big.bin"')
        cpu = (alice.cpu() - cpu0[0], bob.cpu() - cpu0[1])
        if "sha256 ok" not in got:
            raise RuntimeError(got)
    finally:
        for person in people:
            person.stop()
        server.kill()
        server.wait()
    return {"mbps": size / (end - start) / 1e6, "offer": offered - start, "send_cpu": cpu[0] * GIB / size,
            "recv_cpu": cpu[1] * GIB / size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=tb.parse_size, default=GIB, help="file size (default 1G)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", metavar="BINDIR", type=Path,
                        help="a folder with the chatroom-server and chatroom-client of the version before (another "
                             "venv's bin): its relay and its clients are measured in the same run")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "sender":
        role_sender(args)
        return
    if args.role == "discard":
        role_discard(args)
        return
    relay_cases = [("v1 frames (an older client)", "chatroom-server", "v1"),
                   ("v2 frames (resumable, /caps resume)", "chatroom-server", "v2")]
    client_cases: list[tuple[str, Path | None]] = [("this version (resumable)", None)]
    if args.before:
        relay_cases.append(("v1 frames, the version before", str(args.before / "chatroom-server"), "v1"))
        client_cases.append(("the version before", args.before))
    clients: dict[str, list[dict[str, float]]] = {name: [] for name, _ in client_cases}
    resume_cases = ["stream cut", "receiver killed", "server killed"]
    relay: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in relay_cases}
    resume: dict[str, list[dict[str, float]]] = {name: [] for name in resume_cases}
    began = time.monotonic()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-resume-") as folder:
        tmp = Path(folder)
        path = tmp / "bench.bin"
        tb.make_file(path, args.size)  # a 16 MiB random block repeated
        for run in range(args.runs):
            for name, program, mode in relay_cases:
                relay[name].append(run_relay(program, mode, path, args.size, tmp))
                print(f"run {run + 1} {name}: {relay[name][-1]}", file=sys.stderr)
            for name, bindir in client_cases:
                clients[name].append(run_clients(bindir, path, args.size, tmp))
                print(f"run {run + 1} clients, {name}: {clients[name][-1]}", file=sys.stderr)
            for case in resume_cases:
                resume[case].append(run_resume(case, path, args.size, tmp))
                print(f"run {run + 1} {case}: {resume[case][-1]}", file=sys.stderr)
    print(f"\n{args.size / GIB:g} GiB, {args.runs} runs, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, load average {load[0]:.1f} -> {os.getloadavg()[0]:.1f}, "
          f"{time.monotonic() - began:.0f} s in all\n")
    table("interrupted at 50 % by", resume, [("re-sent (% of the file, median; runs)", "resent", ".2f", True),
                                             ("time to the whole file s", "seconds", ".1f", False)])
    table("relay, no interruption", relay, [("MB/s end to end (median; runs)", "mbps", ".0f", True),
                                            ("server CPU s", "cpu", ".2f", False)])
    table("chatroom-client to chatroom-client, no interruption", clients,
          [("MB/s (median; runs)", "mbps", ".0f", True), ("offer s", "offer", ".2f", False),
           ("sender CPU s per GiB", "send_cpu", ".2f", False), ("receiver CPU s per GiB", "recv_cpu", ".2f", False)])


def table(title: str, rows: dict[str, list[dict[str, float]]], columns: list[tuple[str, str, str, bool]]) -> None:
    """A Markdown table: one row per case, each column (heading, key, format, with every run) the median."""
    print(f"\n| {title} | " + " | ".join(c[0] for c in columns) + " |")
    print("| --- |" + " ---: |" * len(columns))
    for name, results in rows.items():
        cells = []
        for _, key, fmt, runs in columns:
            cell = format(statistics.median(r[key] for r in results), fmt)
            cells.append(cell + (" (" + ", ".join(format(r[key], fmt) for r in results) + ")" if runs else ""))
        print(f"| {name} | " + " | ".join(cells) + " |")

if __name__ == "__main__":
    main()
