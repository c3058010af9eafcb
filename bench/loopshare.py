"""The loop thread's share of the server's CPU under ``bench/fanout.py``'s load: per line in and per delivery.

Usage::

    python bench/loopshare.py TARGET N [RUNS]     # e.g. chatroom-irc 200 3

Runs ``bench/fanout.py --targets TARGET --clients N --runs 1 --seconds 8`` RUNS times (default 1); in each,
4 s after the server started (past setup and warm-up, inside the measured window), it reads the CPU
ticks of the server's main thread (the loop: ``/proc/PID/task/PID/stat``) and of the whole process
(every thread: the history writer's too) over 4 s. Divided by the run's lines/s and deliveries/s as
fanout.py printed them, one line per run. ``bench/fanout.py``'s own figure is the whole process; this
splits off the loop, which the history writer's work (another thread) does not touch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

TCK = os.sysconf("SC_CLK_TCK")


def ticks(path: str) -> int:
    """utime + stime of a /proc stat file, in clock ticks."""
    fields = open(path).read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def one(target: str, n: str) -> str:
    """One run; its line of figures."""
    here = os.path.dirname(os.path.abspath(__file__))
    bench = subprocess.Popen([sys.executable, os.path.join(here, "fanout.py"), "--targets", target, "--clients", n,
                              "--runs", "1", "--seconds", "8"], stdout=subprocess.PIPE, text=True)
    server = None
    for _ in range(600):  # the server is the child started with --data-dir (not the --help probes)
        found = subprocess.run(["pgrep", "-P", str(bench.pid), "-f", "--", "--data-dir"], capture_output=True,
                               text=True).stdout.split()
        if found:
            server = int(found[0])
            break
        time.sleep(0.05)
    if server is None:
        bench.kill()
        return f"{target} N={n}: no server found"
    time.sleep(4.0 if int(n) < 500 else 8.0)
    main0, proc0, t0 = ticks(f"/proc/{server}/task/{server}/stat"), ticks(f"/proc/{server}/stat"), time.monotonic()
    time.sleep(4.0)
    main1, proc1, t1 = ticks(f"/proc/{server}/task/{server}/stat"), ticks(f"/proc/{server}/stat"), time.monotonic()
    out = bench.communicate()[0]
    row = [line for line in out.splitlines() if " med " in line][0].split("|")
    deliv, lines = float(row[4].replace(",", "")), float(row[5].replace(",", ""))
    loop, proc = (main1 - main0) / TCK / (t1 - t0), (proc1 - proc0) / TCK / (t1 - t0)
    return (f"{target} N={n}: {deliv:,.0f} deliv/s, {lines:,.0f} lines/s | loop thread {100 * loop:.0f} % of a core, "
            f"{1e6 * loop / lines:.2f} us/line, {1e6 * loop / deliv:.3f} us/deliv | process {100 * proc:.0f} %, "
            f"{1e6 * proc / deliv:.3f} us/deliv | fanout.py srv us/deliv {row[9].strip()} | load {os.getloadavg()[0]:.2f}")


def main() -> None:
    """Print one line per run (see the module docstring)."""
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    for _ in range(int(sys.argv[3]) if len(sys.argv) > 3 else 1):
        print(one(sys.argv[1], sys.argv[2]), flush=True)


if __name__ == "__main__":
    main()
