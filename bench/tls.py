"""Benchmark: one file to one receiver through ``chatroom-server`` in clear and over TLS (issue 10).

Usage::

    python bench/tls.py                      # 1 GiB, 3 runs of each case, interleaved
    python bench/tls.py --size 256M --runs 3

Both cases use ``bench/transfer.py``'s raw frame-protocol roles unchanged
(the sender reads 1 MiB chunks, hashes them with SHA-256 and sends
``file-data`` frames; the receiver parses frames, hashes and writes the
payload, and checks size and SHA-256 at ``file-end``), each in its own
process started by this script with ``--role``. In the TLS case the role
process first replaces ``socket.create_connection`` with one that wraps the
socket in stdlib :mod:`ssl` (verification off: a fresh self-signed
certificate) and does the handshake blocking, and ``transfer.send_all`` with
two ``sendall`` calls (SSL sockets have no ``sendmsg``: the frame header
goes as its own small record, the 1 MiB payload as 64 full records; no
copy).

Server: a fresh ``chatroom-server --port 0 --quiet --data-dir TMP
--flood-rate 0 --max-file-size SIZE --no-plugins`` per run (fresh data dir,
so per-sender quotas never carry over), plus ``--tls`` for the TLS case
(TLS on the main port, a self-signed ECDSA P-256 certificate made in the
data dir before the port is announced). No bystander (transfer.py's has
one): the two cases differ only in TLS.

MB/s is end to end (10^6 bytes/s): the sender's first data byte to the
receiver having written and verified the whole file. Server CPU is
utime+stime from ``/proc/PID/stat`` over that window; peak RSS is ``VmHWM``.
The sender and receiver CPU seconds are their whole process lifetimes
(``wait4``), handshakes and joins included. Cases alternate run by run, so
background load hits them alike; the table shows each run and the medians,
and the verdict is issue 10's target: TLS at least 50 % of clear.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import transfer

#: The server flags of both cases; ``--tls`` is added for the TLS one.
SERVER_ARGS = ("--port", "0", "--quiet", "--flood-rate", "0", "--no-plugins")


# -- roles: transfer.py's, optionally over TLS --------------------------------------------------
def use_tls() -> None:
    """Make transfer.py's roles in this process speak TLS (see the module docstring)."""
    raw_connect = socket.create_connection
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def connect(address: Any, timeout: Any = None, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        return ctx.wrap_socket(raw_connect(address, timeout, *args, **kwargs))

    def send_all(sock: Any, header: bytes, payload: Any) -> None:
        sock.sendall(header)
        sock.sendall(payload)

    socket.create_connection = connect  # type: ignore[assignment]
    transfer.send_all = send_all


# -- orchestration ------------------------------------------------------------------------------
def spawn(role: str, tls: bool, *args: str) -> subprocess.Popen[str]:
    """Run *role* of transfer.py in a child process (over TLS if *tls*)."""
    return subprocess.Popen([sys.executable, __file__, "--role", role, *(["--tls"] if tls else []), *args],
                            stdout=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str]) -> tuple[dict[str, Any], float]:
    """The child's last JSON line and its CPU seconds (reaped with ``wait4``); raises RuntimeError if it failed.

    A child still running after ``transfer.DEADLINE`` seconds is killed (then it fails).
    """
    assert proc.stdout is not None
    timer = threading.Timer(transfer.DEADLINE, proc.kill)
    timer.start()
    try:
        out = proc.stdout.read()  # returns when the child exits (its stdout closes)
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{proc.args} exited {proc.returncode}: {out[-500:]}")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_utime + usage.ru_stime


def run_case(path: Path, size: int, tmp: Path, digest: str, tls: bool) -> dict[str, Any]:
    """One run through a fresh ``chatroom-server`` (with ``--tls`` if *tls*); returns the row's numbers."""
    data = Path(tempfile.mkdtemp(prefix="data-", dir=tmp))
    cmd = ["chatroom-server", *SERVER_ARGS, "--data-dir", str(data), "--max-file-size", str(size)]
    server = subprocess.Popen(cmd + (["--tls"] if tls else []), stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    procs: list[subprocess.Popen[str]] = []
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        if "listening on" not in first:
            raise RuntimeError(f"server did not start: {first!r}")
        port = first.strip().rsplit(":", 1)[1]
        receiver = spawn("receiver", tls, "--mode", "chatroom", "--port", port, "--nick", "r0",
                         "--out", str(tmp / "r0.out"), "--size", str(size))
        procs.append(receiver)
        transfer.wait_ready(receiver)
        cpu0 = transfer.proc_cpu(server.pid)
        sender = spawn("sender", tls, "--mode", "chatroom", "--port", port, "--file", str(path),
                       "--size", str(size))
        procs.append(sender)
        (s, s_cpu), (r, r_cpu) = finish(sender), finish(receiver)
        cpu = transfer.proc_cpu(server.pid) - cpu0
        rss = transfer.proc_hwm_mib(server.pid)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        server.terminate()
        server.wait()
        shutil.rmtree(data, ignore_errors=True)
    if not (r["bytes"] == size and r["sha256"] == digest and r["ok"]):
        raise RuntimeError(f"the file did not arrive whole: {r}")
    (tmp / "r0.out").unlink()
    return {"mbps": size / (r["end"] - s["start"]) / 1e6, "cpu": cpu, "rss": rss, "s_cpu": s_cpu, "r_cpu": r_cpu}


ROW = "| {} | {} | {:.0f} | {:.2f} | {:.1f} | {:.2f} | {:.2f} |"


def main() -> int:
    """Command-line entry point (also the role runner); returns 1 if the TLS target was not met."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=transfer.parse_size, default=1 << 30, help="file size (default 1G)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("--tls", action="store_true", help=argparse.SUPPRESS)
    for name in ("--mode", "--nick", "--out", "--file"):
        ap.add_argument(name, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role:
        if args.tls:
            use_tls()
        {"receiver": transfer.role_receiver, "sender": transfer.role_sender}[args.role](args)
        return 0
    load0 = " ".join(f"{x:.2f}" for x in os.getloadavg())
    started = time.monotonic()
    rows: dict[str, list[dict[str, Any]]] = {"clear": [], "TLS": []}
    print("| case | run | MB/s end to end | server CPU s | server peak RSS MiB | sender CPU s | receiver CPU s |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |", flush=True)
    with tempfile.TemporaryDirectory(prefix="chatroom-tls-bench-") as tmp_name:
        tmp = Path(tmp_name)
        path = tmp / "bench.bin"
        digest = transfer.make_file(path, args.size)
        for run in range(1, args.runs + 1):  # interleaved, so background load hits both alike
            for case, done in rows.items():
                m = run_case(path, args.size, tmp, digest, tls=case == "TLS")
                done.append(m)
                print(ROW.format(case, run, m["mbps"], m["cpu"], m["rss"], m["s_cpu"], m["r_cpu"]), flush=True)
    med = {case: {k: statistics.median(r[k] for r in v) for k in v[0]} for case, v in rows.items()}
    for case, m in med.items():
        print(ROW.format(case, "med", m["mbps"], m["cpu"], m["rss"], m["s_cpu"], m["r_cpu"]))
    ratio = med["TLS"]["mbps"] / med["clear"]["mbps"]
    print(f"\nTLS target (at least 50 % of clear, same run): {100 * ratio:.0f} % -> "
          f"{'MET' if ratio >= 0.5 else 'NOT MET'}")
    print(f"\n{args.size / (1 << 20):.0f} MiB file, {args.runs} run(s) per case, {time.monotonic() - started:.0f} s; "
          f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"load average {load0} at start, {' '.join(f'{x:.2f}' for x in os.getloadavg())} at end")
    return 0 if ratio >= 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
