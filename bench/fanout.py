"""Fan-out benchmark: N clients in one room, 20 of them talking.

Usage::

    python bench/fanout.py [--targets ngircd,baseline-line,baseline-pass,chatroom]
                           [--clients 50,200,1000] [--runs 3] [--seconds 5]
                           [--chatroom-args "--flag value"]

Targets (each started as a child process on a free 127.0.0.1 port; how, in
``fanout_servers.py``):

* ``chatroom``: ``chatroom-server --port 0 --data-dir TMP`` (chatroom protocol)
  with ``--max-per-address 0`` (all clients share 127.0.0.1) and flood control
  on with a generous budget (``--flood-rate 100000 --flood-burst 100000``),
  each only if ``chatroom-server --help`` lists the flag; then
  ``--chatroom-args`` if given (later flags win).
* ``chatroom-noflood``: the same with ``--flood-rate 0`` (flood control off),
  placed last; without that flag in ``--help`` it runs the same command as
  ``chatroom`` (the header says so).
* ``chatroom-nohistory``: ``chatroom`` plus ``--no-history`` (issue 9: rooms
  kept, nothing said is recorded); beside ``chatroom`` it shows what
  recording the history (one SQLite transaction per loop pass) costs.
* ``ngircd``: Debian's ``ngircd -n -f CONF`` with a generated config, set up as
  its sample config documents for this load: no connection limit
  (``MaxConnections = 0``), no per-IP or join limits, penalties off
  (``MaxPenaltyTime = 0``), user mode ``F`` for everyone, DNS/ident/PAM off.
  Clients speak IRC: ``NICK``/``USER``, ``JOIN #bench``, ``PRIVMSG #bench :text``.
* ``baseline-line``: a bare ``selectors`` loop (``fanout_baselines.py line``,
  chatroom's wire subset) that appends each line to every recipient as it is
  read, and sends once per connection per loop pass: what chatroom does.
* ``chatroom-tls`` and ``ngircd-tls``: ``chatroom`` with ``--tls`` and ngIRCd
  with an ``[SSL]`` section, the clients speaking TLS (``fanout_tls.py``; the
  negotiated version and cipher are printed with each row). Issue 10's target:
  chatroom-tls's deliv/s at least ngircd-tls's at N=200.
* ``chatroom-irc``: ``chatroom`` with its IRC door (``--irc-port PORT``, the web
  listener off) and the clients speaking IRC to it exactly as to ``ngircd``
  (issue 19's target: at least 1.5x ngircd's deliv/s at no more than 0.5x its
  server CPU per delivery, nothing lost, at every N).
* ``baseline-pass``: the same, but each loop pass's lines from all clients are
  joined into one batch appended once per member (a sender gets the batch
  without its own lines), then one send per dirty connection: the fastest
  reference.

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

Then a Markdown table of medians per (target, N) and the checks of issue 8's
targets at N=200 for those whose targets ran: chatroom's server CPU per
delivery at most 1.25x baseline-pass's, its deliveries/s at least 1.5x
ngircd's, flood control (chatroom vs chatroom-noflood) costing at most 5 % of
deliveries/s, and no line lost; and issue 9's: history recording (chatroom vs
chatroom-nohistory) costing at most 5 % of deliveries/s (and of server CPU per
delivery).

``bench/rooms.py`` reuses :func:`run_once` with ``args.rooms`` set (clients
spread over that many rooms; see ``fanout_load.py``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from multiprocessing import get_context
from typing import Any

from fanout_load import CLK_TCK, SENDERS, WINDOW, cpu_ticks, mono, worker_main
from fanout_servers import TARGETS, chatroom_args, chatroom_has_flag, start_server, stop_server


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
        server = start_server(target, tmp, args.chatroom_args)
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
                                  stopped, pipes[w][0], [wr for _, wr in pipes], args.lat_every,
                                  getattr(args, "rooms", 0), getattr(args, "window", WINDOW),
                                  server.tls))
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
            cipher=next((r["cipher"] for r in results if r.get("cipher")), ""),
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
    """Issue 8's fan-out targets at *n* clients, for the targets that ran; None if chatroom did not.

    chatroom srv us/deliv <= 1.25x baseline-pass; deliv/s >= 1.5x ngircd;
    deliv/s >= 0.95x chatroom-noflood (flood control costs <= 5 %), and, steadier on a
    busy machine, srv us/deliv <= 1.05x chatroom-noflood; the same two against
    chatroom-nohistory (issue 9: history recording costs <= 5 %); no line lost.
    """
    c = summary.get(("chatroom", n))
    if not c or "error" in c:
        return None
    checks = [f"no line lost: {'yes' if c['lost'] == 0 else 'no'}"]
    for other, key, factor, better in (("baseline-pass", "us_deliv", 1.25, "le"),
                                       ("ngircd", "deliv_s", 1.5, "ge"),
                                       ("chatroom-noflood", "deliv_s", 0.95, "ge"),
                                       ("chatroom-noflood", "us_deliv", 1.05, "le"),
                                       ("chatroom-nohistory", "deliv_s", 0.95, "ge"),
                                       ("chatroom-nohistory", "us_deliv", 1.05, "le")):
        o = summary.get((other, n))
        if not o or "error" in o:
            continue
        ratio = c[key] / o[key] if o[key] else float("nan")
        ok = ratio <= factor if better == "le" else ratio >= factor
        name = "srv us/deliv" if key == "us_deliv" else "deliv/s"
        sign = "<=" if better == "le" else ">="
        checks.append(f"{name} {sign} {factor:g}x {other}: {ratio:.2f}x {'yes' if ok else 'no'}")
    met = all(x.endswith("yes") for x in checks)
    return f"Targets at N={n}: {'MET' if met else 'NOT MET'} (" + "; ".join(checks) + ")"


def tls_verdict(summary: dict[tuple[str, int], dict[str, Any]], n: int = 200) -> str | None:
    """Issue 10's target at *n*: chatroom-tls deliv/s >= ngircd-tls's, no line lost; None if either did not run."""
    c, o = summary.get(("chatroom-tls", n)), summary.get(("ngircd-tls", n))
    if not c or not o or "error" in c or "error" in o:
        return None
    ratio = c["deliv_s"] / o["deliv_s"] if o["deliv_s"] else float("nan")
    ok = ratio >= 1.0 and c["lost"] == 0
    return (f"TLS target at N={n}: {'MET' if ok else 'NOT MET'} (deliv/s >= 1x ngircd-tls: {ratio:.2f}x; "
            f"srv us/deliv {c['us_deliv'] / o['us_deliv']:.2f}x ngircd-tls's; "
            f"no line lost: {'yes' if c['lost'] == 0 else 'no'})")


def irc_verdicts(summary: dict[tuple[str, int], dict[str, Any]], sizes: list[int]) -> list[str]:
    """Issue 19's target at each N where both ran: chatroom-irc deliv/s >= 1.5x ngircd's and srv us/deliv
    <= 0.5x ngircd's, no line lost."""
    out = []
    for n in sizes:
        c, o = summary.get(("chatroom-irc", n)), summary.get(("ngircd", n))
        if not c or not o or "error" in c or "error" in o:
            continue
        speed = c["deliv_s"] / o["deliv_s"] if o["deliv_s"] else float("nan")
        cost = c["us_deliv"] / o["us_deliv"] if o["us_deliv"] else float("nan")
        ok = speed >= 1.5 and cost <= 0.5 and c["lost"] == 0
        out.append(f"IRC target at N={n}: {'MET' if ok else 'NOT MET'} (deliv/s >= 1.5x ngircd: {speed:.2f}x; "
                   f"srv us/deliv <= 0.5x ngircd: {cost:.2f}x; no line lost: {'yes' if c['lost'] == 0 else 'no'})")
    return out


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
    ap.add_argument("--targets", default="ngircd,baseline-line,baseline-pass,chatroom",
                    help="comma-separated, from: " + ", ".join(TARGETS))
    ap.add_argument("--clients", default="50,200,1000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds after go")
    ap.add_argument("--drain", type=float, default=3.0, help="max seconds to drain after the load")
    ap.add_argument("--workers", type=int, default=2, help="load-generator processes")
    ap.add_argument("--lat-every", type=int, default=4,
                    help="keep the latency of 1 in this many deliveries (random offset per recv)")
    ap.add_argument("--chatroom-args", default="",
                    help="extra chatroom-server arguments for the chatroom targets (shell-quoted)")
    args = ap.parse_args(argv)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        ap.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    sizes = [int(x) for x in args.clients.split(",")]
    if min(sizes) < max(SENDERS, 2 * args.workers):
        ap.error(f"need at least {SENDERS} clients")
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    print(f"<!-- before: {environment()} -->")
    if "chatroom-noflood" in targets and not chatroom_has_flag("--flood-rate"):
        print("<!-- chatroom-server --help lists no --flood-rate: chatroom-noflood runs the same "
              "command as chatroom -->")
    for t in targets:
        if t.startswith("chatroom"):
            print(f"<!-- {t}: chatroom-server --port 0 --data-dir TMP "
                  f"{' '.join(chatroom_args(t))} {args.chatroom_args} -->")
    print()
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
                    + ("" if row["drained"] else ", NOT drained")
                    + (f", {row['cipher']}" if row.get("cipher") else "") + ")")
                print("| " + " | ".join(format_row(row, run)) + " |" + note, flush=True)
    summary = {key: medians(rows) for key, rows in runs.items()}
    print(f"\nMedians over {args.runs} run(s), {args.seconds:g} s measured each "
          "(lost: sum over runs):\n")
    print(markdown([format_row(summary[(t, n)], "med") for n in sizes for t in targets]))
    for line in (verdict(summary), tls_verdict(summary), *irc_verdicts(summary, sizes)):
        if line:
            print("\n" + line)
    print(f"\n<!-- after: {environment()} -->")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

