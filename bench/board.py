"""Board benchmark: posts per second from 50 concurrent posters, and the time of a
``/read`` of 100,000 lines, with a bystander's chat latency measured during both.

Usage::

    python bench/board.py [--runs 3] [--posters 50] [--posts-each 400]
                          [--board-lines 100000] [--reads 25] [--json FILE]

Each run starts a fresh ``chatroom-server --port 0 --data-dir TMP --quiet`` and:

1. **Bystander** (a child process, so the load generator's CPU and GIL do not
   delay it): two clients in the room; ``a`` sends the chat line ``ping N``
   every 5 ms and the latency is the time until ``b`` receives ``a: ping N``
   (``time.monotonic()`` is CLOCK_MONOTONIC, system-wide on Linux, so the
   parent can place each sample in a phase).
2. **Posting**: ``--posters`` clients, driven from one ``selectors`` loop, each
   posts ``--posts-each`` three-line posts (``/post``, 3 lines, ``#``), sending
   the next post as soon as the previous one's ``OK`` arrives (closed loop: one
   post in flight per poster). Posts per second = all posts / wall time from the
   first send to the last ``OK``. Every ``OK`` means the post is committed.
3. **Top-up** (not measured): one more post of as many lines as it takes for the
   board to hold ``--board-lines`` lines, sent in one ``sendall``. Its time and
   the bystander's worst latency meanwhile are printed for information.
4. **Reading**: one client sends ``/read`` ``--reads`` times in turn and reads the
   whole answer (every line, then ``#``) as fast as it can; the time is from
   sending ``/read`` to receiving ``#``. The line count is checked.

The bystander's p50/p99/max chat latency is reported for the posting phase and
the reading phase separately. With ``--runs`` > 1, the medians over runs are
printed last. Everything has a deadline; a stuck server fails the run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

DEADLINE = 120.0  # seconds any phase may take
PING_EVERY = 0.005


# -- bystander (child process) -------------------------------------------------------


def bystander(host: str, port: int) -> None:
    """Ping from ``a`` to ``b`` until stdin says ``stop``; then print ``[[t_sent, latency_s], ...]`` as JSON."""
    a = _connect(host, port, "bystander_a")
    b = _connect(host, port, "bystander_b")
    b.settimeout(10)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    print("ready", flush=True)
    samples: list[tuple[float, float]] = []
    buf = b""
    n = 0
    next_at = time.monotonic()
    while not stop.is_set():
        n += 1
        want = f"bystander_a: ping {n}".encode()
        sent = time.monotonic()
        a.sendall(f"ping {n}\n".encode())
        while True:
            line, _, rest = buf.partition(b"\n")
            if _:
                buf = rest
                if line == want:
                    break
                continue
            data = b.recv(65536)
            if not data:
                raise SystemExit("bystander: server closed the connection")
            buf += data
        samples.append((sent, time.monotonic() - sent))
        next_at += PING_EVERY
        pause = next_at - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            next_at = time.monotonic()
    print(json.dumps(samples), flush=True)


def _connect(host: str, port: int, nick: str | None) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if nick:
        sock.sendall(f"/nick {nick}\n".encode())
        _wait_for(sock, f"OK nick {nick}".encode())
    return sock


def _wait_for(sock: socket.socket, want: bytes) -> None:
    buf = b""
    deadline = time.monotonic() + 30
    while want + b"\n" not in buf:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {want!r} from the server")
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        buf += data


# -- phases ---------------------------------------------------------------------------


def post_phase(host: str, port: int, posters: int, posts_each: int) -> tuple[float, float, float]:
    """Run the posting phase; return ``(start, end, posts_per_second)`` (monotonic seconds)."""
    socks = [_connect(host, port, f"poster{i:02d}") for i in range(posters)]
    sel = selectors.DefaultSelector()
    left = {s: posts_each for s in socks}
    bufs = {s: b"" for s in socks}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)

    def send_post(s: socket.socket) -> None:
        k = posts_each - left[s]
        name = f"poster {s.fileno()}"
        s.sendall(f"/post\n{name} post {k} line 1\n{name} says Text#!\n{name} line 3.\n#\n".encode())

    start = time.monotonic()
    for s in socks:
        send_post(s)
    done = 0
    total = posters * posts_each
    deadline = start + DEADLINE
    while done < total:
        if time.monotonic() > deadline:
            raise TimeoutError(f"posting: {done} of {total} posts acknowledged")
        for key, _ in sel.select(1.0):
            s = key.fileobj
            data = s.recv(65536)  # type: ignore[union-attr]
            if not data:
                raise ConnectionError("a poster was disconnected")
            lines = (bufs[s] + data).split(b"\n")  # type: ignore[index]
            bufs[s] = lines.pop()  # type: ignore[index]
            for line in lines:
                if line == b"OK":
                    done += 1
                    left[s] -= 1  # type: ignore[index]
                    if left[s]:  # type: ignore[index]
                        send_post(s)  # type: ignore[arg-type]
                elif line.startswith(b"ERROR"):
                    raise RuntimeError(f"post refused: {line!r}")
    end = time.monotonic()
    for s in socks:
        sel.unregister(s)
        s.close()
    return start, end, total / (end - start)


def top_up(host: str, port: int, lines: int) -> tuple[float, float]:
    """Post one post of *lines* lines in one ``sendall`` and wait for its ``OK``; return ``(start, end)``."""
    if lines <= 0:
        return 0.0, 0.0
    sock = _connect(host, port, "filler")
    sock.settimeout(DEADLINE)
    data = ("/post\n" + "".join(f"filler line {i:06d} of the big post\n" for i in range(lines)) + "#\n").encode()
    start = time.monotonic()
    sock.sendall(data)
    _wait_for(sock, b"OK")
    end = time.monotonic()
    sock.close()
    return start, end


def read_phase(host: str, port: int, expect_lines: int, reads: int) -> tuple[float, float, list[float]]:
    """Read the whole board *reads* times; return ``(start, end, [seconds per read])``."""
    sock = _connect(host, port, "reader")
    sock.settimeout(DEADLINE)
    times = []
    start = time.monotonic()
    for _ in range(reads):
        t0 = time.monotonic()
        sock.sendall(b"/read\n")
        count, buf = 0, b""
        while True:
            data = sock.recv(1 << 20)
            if not data:
                raise ConnectionError("reader was disconnected")
            lines = (buf + data).split(b"\n")
            buf = lines.pop()
            end_seen = False
            for line in lines:
                if line == b"#":
                    end_seen = True
                    break
                if not line.startswith((b"bystander_a: ", b"* ")):  # chat and notices may arrive in between
                    count += 1
            if end_seen:
                break
        times.append(time.monotonic() - t0)
        if count != expect_lines:
            raise RuntimeError(f"/read gave {count} lines, expected {expect_lines}")
    end = time.monotonic()
    sock.close()
    return start, end, times


# -- one run ---------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def latency_summary(samples: list[tuple[float, float]], start: float, end: float) -> dict[str, float]:
    """p50/p99/max (ms) and count of the samples sent in ``[start, end]``."""
    window = [lat * 1000 for t, lat in samples if start <= t <= end]
    return {
        "n": len(window),
        "p50_ms": percentile(window, 50),
        "p99_ms": percentile(window, 99),
        "max_ms": max(window, default=float("nan")),
    }


def one_run(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="chatroom-bench-board-") as tmp:
        server = subprocess.Popen(
            ["chatroom-server", "--port", "0", "--data-dir", tmp, "--quiet", "--flood-rate", "0", "--max-per-address", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        by = None
        try:
            first = server.stdout.readline()  # type: ignore[union-attr]
            if not first.startswith("chatroom-server listening on "):
                raise RuntimeError(f"server did not start: {first!r}")
            host, _, port_text = first.split()[-1].rpartition(":")
            port = int(port_text)
            by = subprocess.Popen(
                [sys.executable, __file__, "--bystander", host, str(port)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )
            if by.stdout.readline().strip() != "ready":  # type: ignore[union-attr]
                raise RuntimeError("bystander did not start")
            p_start, p_end, rate = post_phase(host, port, args.posters, args.posts_each)
            posted_lines = args.posters * args.posts_each * 3
            t_start, t_end = top_up(host, port, args.board_lines - posted_lines)
            r_start, r_end, read_times = read_phase(host, port, max(args.board_lines, posted_lines), args.reads)
            by.stdin.write("stop\n")  # type: ignore[union-attr]
            by.stdin.flush()  # type: ignore[union-attr]
            samples = json.loads(by.stdout.readline())  # type: ignore[union-attr]
            by.wait(30)
        finally:
            if by is not None and by.poll() is None:
                by.kill()
                by.wait()
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    return {
        "posts_per_s": rate,
        "posts": args.posters * args.posts_each,
        "post_seconds": p_end - p_start,
        "post_chat": latency_summary(samples, p_start, p_end),
        "big_post_lines": args.board_lines - args.posters * args.posts_each * 3,
        "big_post_seconds": t_end - t_start,
        "big_post_chat": latency_summary(samples, t_start, t_end),
        "read_s_median": statistics.median(read_times),
        "read_times": read_times,
        "read_chat": latency_summary(samples, r_start, r_end),
    }


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}, {cpu or platform.processor()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--posters", type=int, default=50)
    parser.add_argument("--posts-each", type=int, default=400)
    parser.add_argument("--board-lines", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=25)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--bystander", nargs=2, metavar=("HOST", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bystander:
        bystander(args.bystander[0], int(args.bystander[1]))
        return 0
    print(f"machine: {machine()}")
    runs = []
    for i in range(args.runs):
        r = one_run(args)
        runs.append(r)
        pc, rc = r["post_chat"], r["read_chat"]
        print(
            f"run {i + 1}: {r['posts_per_s']:.0f} posts/s ({r['posts']} posts in {r['post_seconds']:.2f} s), "
            f"bystander p50/p99/max {pc['p50_ms']:.2f}/{pc['p99_ms']:.2f}/{pc['max_ms']:.2f} ms (n={pc['n']}); "
            f"/read {args.board_lines} lines median {r['read_s_median'] * 1000:.0f} ms of {args.reads}, "
            f"bystander p50/p99/max {rc['p50_ms']:.2f}/{rc['p99_ms']:.2f}/{rc['max_ms']:.2f} ms (n={rc['n']}); "
            f"(not a target) one {r['big_post_lines']}-line post took {r['big_post_seconds'] * 1000:.0f} ms, "
            f"bystander max {r['big_post_chat']['max_ms']:.2f} ms",
            flush=True,
        )

    def med(get) -> float:  # type: ignore[no-untyped-def]
        return statistics.median(get(r) for r in runs)

    summary = {
        "posts_per_s": med(lambda r: r["posts_per_s"]),
        "post_chat_p50_ms": med(lambda r: r["post_chat"]["p50_ms"]),
        "post_chat_p99_ms": med(lambda r: r["post_chat"]["p99_ms"]),
        "read_ms": med(lambda r: r["read_s_median"] * 1000),
        "read_chat_p50_ms": med(lambda r: r["read_chat"]["p50_ms"]),
        "read_chat_p99_ms": med(lambda r: r["read_chat"]["p99_ms"]),
    }
    print(
        f"median of {len(runs)} runs: {summary['posts_per_s']:.0f} posts/s "
        f"(bystander p50 {summary['post_chat_p50_ms']:.2f} ms, p99 {summary['post_chat_p99_ms']:.2f} ms); "
        f"/read of {args.board_lines} lines {summary['read_ms']:.0f} ms "
        f"(bystander p50 {summary['read_chat_p50_ms']:.2f} ms, p99 {summary['read_chat_p99_ms']:.2f} ms)"
    )
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "runs": runs, "median": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
