"""Benchmark: the real ``chatroom-client`` receiving one file, against the relay's own throughput.

Usage::

    python bench/client_recv.py                       # 1 GiB, 3 runs of each case, results as Markdown
    python bench/client_recv.py --size 256M --runs 1  # a quick look
    python bench/client_recv.py --profile             # one 1-receiver run with the client under cProfile
    python bench/client_recv.py --before /tmp/v-old/bin/chatroom-client  # plus the old client, same run

Every case runs through a fresh ``chatroom-server --quiet --flood-rate 0 --no-plugins`` on 127.0.0.1, with
the raw frame-protocol sender of ``bench/transfer.py`` (1 MiB ``file-data`` frames read from a file, hashed
with SHA-256, sent with ``sendmsg``); cases are interleaved run by run so background load hits them alike:

* **relay** (the baseline): one raw receiver that only reads and discards (it finds the frame headers to
  see ``file-end``, nothing else: no hashing, no disk). Its MB/s is what the relay can deliver;
* **chatroom-client, 1 receiver** and **3 receivers**: ``chatroom-client --accept-files all`` in line
  mode (stdin a pipe kept open), each writing to its own ``--received-dir``; done when it prints
  ``received "bench.bin" ... sha256 ok`` (the client hashed, wrote, checked and moved the file);
* with ``--before CLIENT``, 1 receiver again with another ``chatroom-client`` executable (an older
  version in another venv), for a before/after comparison in the same run.

MB/s is end to end (10^6 bytes/s), from the sender's first data byte to the last receiver done. CPU
seconds per GiB per receiver are utime+stime of each receiving process from ``/proc/PID/stat`` over the
transfer, divided by the GiB moved, averaged over the receivers. Each figure is the median of the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import transfer as tb  # noqa: E402 - bench/transfer.py: sender role, file maker, /proc helpers

GIB = 1 << 30
DEADLINE = 300.0


def role_discard(args: argparse.Namespace) -> None:
    """The baseline receiver: join, then read and drop everything until ``file-end``."""
    conn = tb.Conn(args.port)
    conn.join(args.nick, binary=True)
    reader = tb.FrameReader(conn.sock)
    print("ready", flush=True)
    got = 0
    while True:
        line = reader.header()
        if not line.startswith("\x10"):
            continue
        size_text, _, meta = line[1:].partition(" ")
        for piece in reader.payload(int(size_text)):
            got += len(piece)
        if meta.startswith(("file-end", "file-abort")):
            print(json.dumps({"end": time.monotonic(), "bytes": got, "meta": meta}), flush=True)
            return


class Client:
    """A ``chatroom-client`` receiving into *folder*; its stdout lines are queued by a thread."""

    def __init__(self, port: int, nick: str, folder: Path, profile: Path | None = None,
                 program: str | None = None, extra: tuple[str, ...] = ()) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        args = ["--port", str(port), "--name", nick, "--accept-files", "all", "--received-dir", str(folder / "in"),
                "--send-dir", str(folder / "out"), *extra]
        if profile is None:
            cmd = [program or shutil.which("chatroom-client") or "chatroom-client", *args]
        else:
            code = ("import cProfile, sys; from chatroom.client.cli import main; "
                    f"sys.argv = ['chatroom-client', *{args!r}]; "
                    f"cProfile.run('main()', {str(profile)!r})")
            cmd = [sys.executable, "-c", code]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, cwd=folder)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.send("/upper ready")  # typed lines wait for the handshake: READY means the client is in
        self.expect("READY")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def expect(self, prefix: str) -> tuple[str, float]:
        deadline = time.monotonic() + DEADLINE
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            if line is None:
                raise RuntimeError(f"chatroom-client ended before {prefix!r}")
            if line.startswith(prefix):
                return line, time.monotonic()

    def cpu(self) -> float:
        return tb.proc_cpu(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # end of input: the client quits cleanly (and writes its profile)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_case(path: Path, size: int, receivers: int, tmp: Path, profile: Path | None = None,
             program: str | None = None) -> dict[str, Any]:
    """One run through a fresh server; ``receivers == 0`` is the discarding baseline receiver; *program*
    is another ``chatroom-client`` executable (``--before``)."""
    server = subprocess.Popen(
        ["chatroom-server", "--port", "0", "--quiet", "--data-dir", str(tmp / "data"), *tb.NO_FLOOD,
         "--max-file-size", str(size), "--no-plugins"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    clients: list[Client] = []
    procs: list[subprocess.Popen[str]] = []
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().strip().rsplit(":", 1)[1])
        if receivers == 0:
            discard = subprocess.Popen([sys.executable, __file__, "--role", "discard", "--port", str(port),
                                        "--nick", "d0"], stdout=subprocess.PIPE, text=True)
            procs.append(discard)
            tb.wait_ready(discard)
        for i in range(receivers):
            clients.append(Client(port, f"r{i}", tmp / f"r{i}", profile, program))
        cpu0 = [c.cpu() for c in clients]
        sender = tb.spawn("sender", "--mode", "chatroom", "--port", str(port), "--file", str(path),
                          "--size", str(size))
        procs.append(sender)
        ends = []
        for c in clients:
            line, end = c.expect('received "bench.bin"')
            if f"({size} bytes)" not in line or "sha256 ok" not in line:
                raise RuntimeError(f"bad receipt: {line}")
            ends.append(end)
        cpu = [c.cpu() - c0 for c, c0 in zip(clients, cpu0)]
        start = tb.last_json(sender)["start"]
        if receivers == 0:
            result = tb.last_json(discard)
            if result["bytes"] != size or not result["meta"].startswith("file-end"):
                raise RuntimeError(f"baseline receiver: {result}")
            ends.append(result["end"])
    finally:
        for c in clients:
            c.stop()
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        server.terminate()
        server.wait()
    for i in range(receivers):
        if (tmp / f"r{i}" / "in" / "bench.bin").stat().st_size != size:  # its SHA-256 the client checked
            raise RuntimeError("received file has the wrong size")
        shutil.rmtree(tmp / f"r{i}")
    gib = size / GIB
    return {"mbps": size / (max(ends) - start) / 1e6,
            "cpu_per_gib": statistics.mean(cpu) / gib if cpu else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=tb.parse_size, default=GIB, help="file size (default 1G)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="one 1-receiver run, the client under cProfile")
    parser.add_argument("--before", metavar="CLIENT", help="also run 1 receiver with this chatroom-client "
                        "executable (e.g. an older version installed in another venv), in the same run")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--nick", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "discard":
        role_discard(args)
        return
    plan: list[tuple[str, int, str | None]] = [("relay (raw receiver that discards)", 0, None),
                                               ("chatroom-client, 1 receiver", 1, None),
                                               ("chatroom-client, 3 receivers", 3, None)]
    if args.before:
        plan.append(("--before client, 1 receiver", 1, args.before))
    load0 = os.getloadavg()[0]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chatroom-client-bench-") as tmp_name:
        tmp = Path(tmp_name)
        path = tmp / "bench.bin"
        tb.make_file(path, args.size)
        if args.profile:
            prof = Path("client_recv.prof").resolve()
            print(run_case(path, args.size, 1, tmp, profile=prof), file=sys.stderr)
            import pstats

            pstats.Stats(str(prof)).sort_stats("tottime").print_stats(25)
            return
        results: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in plan}
        for run in range(args.runs):
            for name, n, program in plan:
                results[name].append(run_case(path, args.size, n, tmp, program=program))
                print(f"run {run + 1}/{args.runs} {name}: {results[name][-1]}", file=sys.stderr)
    med = {k: {f: statistics.median(r[f] for r in v) for f in ("mbps", "cpu_per_gib")} for k, v in results.items()}
    relay = med[plan[0][0]]["mbps"]
    print(f"{args.size / (1 << 20):.0f} MiB file, median of {args.runs} runs, {time.monotonic() - started:.0f} s; "
          f"{platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}, Python "
          f"{platform.python_version()}; load average {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end")
    print()
    print("| case | MB/s end to end | % of relay | CPU s per GiB per receiver |")
    print("| --- | ---: | ---: | ---: |")
    for name, m in med.items():
        cpu = "-" if m["cpu_per_gib"] != m["cpu_per_gib"] else f"{m['cpu_per_gib']:.2f}"
        print(f"| {name} | {m['mbps']:.0f} | {100 * m['mbps'] / relay:.0f}% | {cpu} |")


if __name__ == "__main__":
    main()
