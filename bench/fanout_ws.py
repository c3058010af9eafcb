"""WebSocket fan-out benchmark: N WebSocket clients in one room, 20 of them talking (issue 13, "Speed").

Usage::

    python bench/fanout_ws.py [--targets websockets,websockets-uvloop,chatroom-ws-noflood,chatroom-ws]
                              [--clients 50,200,1000] [--runs 3] [--seconds 5]
                              [--chatroom-args "--flag value"]

The load, its accounting and every column are bench/fanout.py's (its
docstring): the same 20 senders with at most 256 lines in flight (a closed
loop, as fast as the server takes them), the same 60-byte stamped lines, the
same completion levels, loss count after the drain, latency sampling, server
CPU from ``/proc/PID/stat`` over the measured window, generator CPU, medians
of ``--runs`` runs interleaved target by target. This script runs
``fanout.run_once`` itself, with two of its names swapped for WebSocket
targets: the server is started here (:func:`start_ws_server`) and the
generator's workers are ``fanout_ws_load.WSWorker`` (the WebSocket client:
upgrade, one masked text message per line up, one JSON event per frame down;
its docstring). Any bench/fanout.py target (``chatroom-noflood``,
``baseline-pass``, ...) can be listed too: it runs unchanged over TCP with
the line protocol, as a reference at the same N in the same run.

WebSocket targets (each a child process on kernel-picked 127.0.0.1 ports):

* ``websockets``: ``fanout_ws_server.py``, the ``websockets`` library's
  asyncio server relaying each line as a chatroom-like ``msg`` event with
  ``websockets.broadcast()``, ``compression=None``, other options default,
  plain asyncio (its docstring says why).
* ``websockets-uvloop``: the same on uvloop.
* ``chatroom-ws-noflood``: ``chatroom-server --port 0 --web-port 0
  --data-dir TMP --max-per-address 0 --flood-rate 0``: the WebSocket
  transport with flood control off (the benchmark's main chatroom target,
  like fanout.py's ``chatroom-noflood``); history is recorded, as by default.
* ``chatroom-ws``: flood control on with fanout.py's generous budget
  (``--flood-rate 100000 --flood-burst 100000``): what flood control costs.
* ``chatroom-ws-defaults``: only ``--max-per-address 0`` (every client is
  on 127.0.0.1): flood control at its defaults (25 lines/s per connection,
  bursts of 250), so this row measures the budget, not the server.

Each chatroom flag is passed only if ``chatroom-server --help`` lists it;
``--chatroom-args`` comes after the bench's own (the ``-noflood`` target's
``--flood-rate 0`` is kept last). The clients connect to the URL the server
prints (``chatroom-server web http://HOST:PORT/``) at ``/ws``.

Printed: fanout.py's rows and medians, then issue 13's check per N for the
targets that ran: ``chatroom-ws-noflood`` at least 1.5x ``websockets``'s
deliveries/s, at most its server CPU per delivery, no line lost (and the same
ratios against ``websockets-uvloop``, for information).
``RLIMIT_NOFILE`` is raised to its hard limit first (1,000 clients and the
server share it).
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import fanout
from fanout_load import SENDERS
from fanout_servers import TARGETS as TCP_TARGETS, GENEROUS_FLOOD, Server, chatroom_has_flag, stop_server
from fanout_ws_load import ws_worker_main

HERE = os.path.dirname(os.path.abspath(__file__))
WS_TARGETS = ("websockets", "websockets-uvloop", "chatroom-ws-noflood", "chatroom-ws", "chatroom-ws-defaults")
DEFAULT_TARGETS = "websockets,websockets-uvloop,chatroom-ws-noflood,chatroom-ws"
#: The line a target prints when its WebSocket port is open: chatroom's URL line, the baseline's listen line.
ANNOUNCE = (b"chatroom-server web ", b"websockets listening on ")
#: ``--profile DIR``: run the chatroom WebSocket targets under cProfile, one ``.prof`` file per run there.
PROFILE_DIR = ""


def ws_chatroom_args(target: str) -> list[str]:
    """The flags the bench gives ``chatroom-server`` for WebSocket *target* (each only if ``--help`` has it)."""
    out = ["--port", "0"]
    if chatroom_has_flag("--web-port"):
        out += ["--web-port", "0"]
    if chatroom_has_flag("--max-per-address"):
        out += ["--max-per-address", "0"]
    if target == "chatroom-ws" and chatroom_has_flag("--flood-rate"):
        out += list(GENEROUS_FLOOD)
    return out


def ws_command(target: str, tmp: str, extra: str = "") -> list[str]:
    """The argv starting WebSocket *target*; RuntimeError if its program is missing."""
    if target.startswith("websockets"):
        return [sys.executable, os.path.join(HERE, "fanout_ws_server.py")] + (
            ["--uvloop"] if target == "websockets-uvloop" else [])
    exe = shutil.which("chatroom-server")
    if exe is None:
        raise RuntimeError("chatroom-server is not installed (pip install -e .)")
    data = os.path.join(tmp, "chatroom-data")
    os.makedirs(data, exist_ok=True)
    cmd = [exe, "--data-dir", data] + ws_chatroom_args(target) + shlex.split(extra)
    if target == "chatroom-ws-noflood" and chatroom_has_flag("--flood-rate"):
        cmd += ["--flood-rate", "0"]
    if PROFILE_DIR:  # cProfile writes its file when the server exits on the bench's SIGTERM
        out = os.path.join(PROFILE_DIR, f"{target}-{time.time_ns()}.prof")
        cmd = [sys.executable, "-P", "-m", "cProfile", "-o", out] + cmd  # -P: not the cwd's chatroom
    return cmd


def _read_announce(proc: subprocess.Popen, deadline: float) -> int:
    """The WebSocket port from the child's stdout line starting with one of :data:`ANNOUNCE`."""
    assert proc.stdout is not None
    lines: list[bytes] = []
    found = threading.Event()

    def read() -> None:
        for line in proc.stdout:  # keeps draining after the announce, so the pipe never fills
            if not found.is_set():
                lines.append(line)
                if line.startswith(ANNOUNCE):
                    found.set()

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(max(0.0, deadline - time.monotonic())):
        raise RuntimeError(f"no WebSocket URL printed: {b''.join(lines)[-300:]!r}")
    url = lines[-1].split()[-1].rstrip(b"/")  # http://127.0.0.1:PORT or 127.0.0.1:PORT
    return int(url.rsplit(b":", 1)[1])


def start_ws_server(target: str, tmp: str, extra: str = "") -> Server:
    """Start WebSocket *target*; RuntimeError (with its log's tail) if it does not come up in 15 s.

    Any other target goes to ``fanout_servers.start_server`` (TCP).
    """
    if target not in WS_TARGETS:
        return _TCP_START(target, tmp, extra)
    deadline = time.monotonic() + 15
    log_path = os.path.join(tmp, f"{target}.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(ws_command(target, tmp, extra), stdout=subprocess.PIPE, stderr=log)
    try:
        port = _read_announce(proc, deadline)
    except RuntimeError as exc:
        proc.kill()
        proc.wait()
        with open(log_path, "rb") as log:
            tail = log.read()[-300:].decode(errors="replace")
        raise RuntimeError(f"{target} did not start ({exc}); log ends: {tail}") from None
    return Server(target, proc, port, irc=False, tls=False)


_TCP_START, _TCP_WORKER = fanout.start_server, fanout.worker_main


@contextmanager
def websocket_run(target: str) -> Iterator[None]:
    """Within it, ``fanout.run_once(target, ...)`` starts *target* here and, for a WebSocket target,
    forks WebSocket workers (the fork inherits the swapped name)."""
    fanout.start_server = start_ws_server
    fanout.worker_main = ws_worker_main if target in WS_TARGETS else _TCP_WORKER
    try:
        yield
    finally:
        fanout.start_server, fanout.worker_main = _TCP_START, _TCP_WORKER


def run_once(target: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """``fanout.run_once`` for any target, WebSocket or TCP."""
    with websocket_run(target):
        return fanout.run_once(target, n, args)


def ws_verdict(summary: dict[tuple[str, int], dict[str, Any]], n: int, chatroom: str = "chatroom-ws-noflood") -> str | None:
    """Issue 13's target at *n*: *chatroom* >= 1.5x websockets' deliv/s, <= its srv us/deliv, nothing lost."""
    c = summary.get((chatroom, n))
    if not c or "error" in c:
        return None
    lines = []
    for other in ("websockets", "websockets-uvloop"):
        o = summary.get((other, n))
        if not o or "error" in o:
            continue
        speed, cost = c["deliv_s"] / o["deliv_s"], c["us_deliv"] / o["us_deliv"]
        ok = speed >= 1.5 and cost <= 1.0 and c["lost"] == 0
        lines.append(f"{other}: deliv/s {speed:.2f}x (>= 1.5x), srv us/deliv {cost:.2f}x (<= 1x), "
                     f"lost {c['lost']} -> {'MET' if ok else 'NOT MET'}")
    return f"N={n} {chatroom} vs " + "; vs ".join(lines) if lines else None


def gen_us(row: dict[str, Any]) -> float:
    """Load-generator CPU microseconds per delivery (all its workers) of a result or median *row*."""
    return row["gen_cpu"] * 1e4 / row["deliv_s"] if row["deliv_s"] else float("nan")


def versions() -> str:
    """Versions of the libraries the WebSocket targets use."""
    out = []
    for name in ("websockets", "uvloop", "h11", "wsproto"):
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            out.append(f"{name} missing")
    return ", ".join(out)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (1 if a run failed)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", default=DEFAULT_TARGETS,
                    help="comma-separated, from: " + ", ".join(WS_TARGETS + TCP_TARGETS))
    ap.add_argument("--clients", default="50,200,1000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds after go")
    ap.add_argument("--drain", type=float, default=15.0,
                    help="max seconds to drain after the load (ends as soon as all is delivered)")
    ap.add_argument("--workers", type=int, default=2, help="load-generator processes")
    ap.add_argument("--lat-every", type=int, default=4, help="keep the latency of 1 in this many deliveries")
    ap.add_argument("--chatroom-args", default="", help="extra chatroom-server arguments (shell-quoted)")
    ap.add_argument("--profile", default="", metavar="DIR",
                    help="run the chatroom-ws targets under cProfile, writing DIR/TARGET-NS.prof per run "
                         "(cProfile's overhead inflates their CPU figures: profile, do not measure)")
    args = ap.parse_args(argv)
    global PROFILE_DIR
    PROFILE_DIR = args.profile
    if PROFILE_DIR:
        os.makedirs(PROFILE_DIR, exist_ok=True)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [t for t in targets if t not in WS_TARGETS + TCP_TARGETS]
    if unknown:
        ap.error(f"unknown target(s) {', '.join(unknown)}")
    sizes = [int(x) for x in args.clients.split(",")]
    if min(sizes) < max(SENDERS, 2 * args.workers):
        ap.error(f"need at least {SENDERS} clients")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"<!-- before: {fanout.environment()}; {versions()}; RLIMIT_NOFILE {hard} -->")
    for t in targets:
        if t in WS_TARGETS:
            print(f"<!-- {t}: {shlex.join(ws_command(t, 'TMP', args.chatroom_args)).replace(sys.executable, 'python')} -->")
    print("\n" + fanout.markdown([]), flush=True)
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
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
                    + ("" if row["drained"] else ", NOT drained") + f", gen {gen_us(row):.2f} us/deliv)")
                print("| " + " | ".join(fanout.format_row(row, run)) + " |" + note, flush=True)
    summary = {key: fanout.medians(rows) for key, rows in runs.items()}
    print(f"\nMedians over {args.runs} run(s), {args.seconds:g} s measured each (lost: sum over runs):\n")
    print(fanout.markdown([fanout.format_row(summary[(t, n)], "med") for n in sizes for t in targets]))
    print("\nGenerator CPU per delivery (us, medians): " + ", ".join(
        f"{t} N={n} {gen_us(summary[(t, n)]):.2f}" for n in sizes for t in targets if "error" not in summary[(t, n)]))
    print()
    for n in sizes:
        line = ws_verdict(summary, n)
        if line:
            print(line)
    print(f"\n<!-- after: {fanout.environment()} -->")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
