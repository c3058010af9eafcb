"""The scale-out bus alone: what Redis adds between a line said on one node and its delivery on every node.

Usage::

    python bench/bus.py [--rate 10000] [--seconds 5] [--subscribers 3] [--rooms 1] [--runs 3] [--pass-ms 1]

Starts one ``redis-server`` (Debian's; unix socket in a temporary folder, ``--appendonly yes
--appendfsync everysec``: the persistence docs/scale-out.md recommends), then *subscribers* processes
(each a loop with a subscriber :class:`~chatroom.scaleout.link.RedisLink` on every room's channel, as a
node is) and one publisher process (a loop with a command link: every loop pass of *pass-ms* it sends
the lines due at *rate* lines/s, one ``publish.lua`` call per room per pass, as a node does). A line's
payload carries ``time.monotonic_ns()`` at the moment its pass queued it; a subscriber subtracts it
from its own clock when the batch arrives (CLOCK_MONOTONIC is system-wide on Linux). So the latency
is everything the bus adds: the pass's batching wait excluded, the script, Redis, the publish and both
event loops included.

Reports, per run: lines sent, each subscriber's lines received (ids must be dense: lost or duplicated
lines are counted), latency p50/p99/max over every (line, subscriber), the publisher's, subscribers' and
redis-server's CPU seconds. Medians over runs at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chatroom.net.loop import Loop  # noqa: E402
from chatroom.scaleout.address import parse_redis_url  # noqa: E402
from chatroom.scaleout.bus import Keys, Publisher, parse_batch  # noqa: E402
from chatroom.scaleout.link import RedisLink  # noqa: E402

KEYS = Keys("bench")
PAD = b"x" * 40  # a 60-byte chat line with its header


def rooms(count: int) -> list[str]:
    return [f"#bench{i}" for i in range(count)]


def subscriber(url: str, count: int, seconds: float, expected: int) -> None:
    """Receive every room's batches until *expected* lines came or *seconds* passed; print a JSON report."""
    loop = Loop()
    latencies: list[int] = []
    next_id = {room: 1 for room in rooms(count)}
    report = {"received": 0, "lost": 0, "duplicated": 0}

    def push(reply: list[bytes]) -> None:
        if reply[0] == b"message":
            now = time.monotonic_ns()
            room = KEYS.room_of(reply[1])
            batch = parse_batch(reply[2])
            for line_id, payload in batch.events:
                expect = next_id[room]
                if line_id < expect:
                    report["duplicated"] += 1
                    continue
                report["lost"] += line_id - expect
                next_id[room] = line_id + 1
                report["received"] += 1
                latencies.append(now - int(payload[:19]))
        elif reply[0] == b"subscribe" and reply[2] == count:
            print("subscribed", flush=True)

    link = RedisLink(loop, parse_redis_url(url), name="bench-sub", subscriber=True, on_push=push)
    link.on_ready = lambda: link.send("SUBSCRIBE", *[KEYS.channel(r) for r in rooms(count)])
    link.start()
    deadline = time.monotonic() + seconds + 10
    while report["received"] + report["lost"] < expected and time.monotonic() < deadline:
        loop.run_once(0.05)
    latencies.sort()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report.update(latencies_us=[latencies[int(q * (len(latencies) - 1))] / 1000 for q in (0.5, 0.99, 1.0)]
                  if latencies else [], cpu=usage.ru_utime + usage.ru_stime)
    print(json.dumps(report), flush=True)


def publisher(url: str, count: int, seconds: float, rate: float, pass_ms: float) -> None:
    """Send *rate* lines/s for *seconds*, one script call per room per pass; print a JSON report."""
    loop = Loop()
    link = RedisLink(loop, parse_redis_url(url), name="bench-pub")
    bus = Publisher(link, KEYS)
    link.on_ready = bus.load
    link.start()
    while not link.ready:
        loop.run_once(0.05)
    names = rooms(count)
    errors: list[str] = []
    sent = 0
    total = int(rate * seconds)
    start = time.monotonic()

    def answered(reply: object) -> None:
        if not isinstance(reply, tuple):
            errors.append(str(reply))

    while sent < total or link.in_flight:
        loop.run_once(pass_ms / 1000)
        due = min(total, int((time.monotonic() - start) * rate))
        if due > sent:
            stamp = b"%019d" % time.monotonic_ns()
            per_room: dict[str, list[tuple[bool, bytes]]] = {name: [] for name in names}
            for n in range(sent, due):
                per_room[names[n % count]].append((True, stamp + PAD))
            for name, events in per_room.items():
                if events:
                    bus.publish(name, events, keep=100_000, on_reply=answered)
            sent = due
            link.flush()  # the end of the pass: as the loop's before_write step does
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"sent": sent, "errors": errors[:3], "seconds": time.monotonic() - start,
                      "cpu": usage.ru_utime + usage.ru_stime}), flush=True)


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(args: argparse.Namespace) -> dict[str, object]:
    folder = tempfile.mkdtemp(prefix="cr-bench-")
    sock = f"{folder}/redis.sock"
    redis = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", "0", "--unixsocket", sock,
                              "--dir", folder, "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
                              "--logfile", f"{folder}/redis.log"], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            assert time.monotonic() < deadline and redis.poll() is None, "redis-server did not start"
            time.sleep(0.01)
        url = f"unix://{sock}"
        total = int(args.rate * args.seconds)
        me = [sys.executable, __file__]
        subs = [subprocess.Popen([*me, "--role", "sub", "--url", url, "--rooms", str(args.rooms), "--seconds",
                                  str(args.seconds), "--expected", str(total)], stdout=subprocess.PIPE, text=True)
                for _ in range(args.subscribers)]
        for sub in subs:
            assert sub.stdout is not None and sub.stdout.readline().strip() == "subscribed"
        redis_cpu = cpu_of(redis.pid)
        pub = subprocess.run([*me, "--role", "pub", "--url", url, "--rooms", str(args.rooms), "--seconds",
                              str(args.seconds), "--rate", str(args.rate), "--pass-ms", str(args.pass_ms)],
                             capture_output=True, text=True, check=True)
        reports = [json.loads(sub.communicate(timeout=60)[0].strip().splitlines()[-1]) for sub in subs]
        redis_cpu = cpu_of(redis.pid) - redis_cpu
        sent = json.loads(pub.stdout.strip().splitlines()[-1])
    finally:
        redis.terminate()
        redis.wait()
        shutil.rmtree(folder, ignore_errors=True)
    return {"pub": sent, "subs": reports, "redis_cpu": redis_cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=10_000.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--subscribers", type=int, default=3)
    parser.add_argument("--rooms", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pass-ms", type=float, default=1.0)
    parser.add_argument("--role", choices=["pub", "sub"])
    parser.add_argument("--url")
    parser.add_argument("--expected", type=int, default=0)
    args = parser.parse_args()
    if args.role == "sub":
        return subscriber(args.url, args.rooms, args.seconds, args.expected)
    if args.role == "pub":
        return publisher(args.url, args.rooms, args.seconds, args.rate, args.pass_ms)
    print(f"bus: {args.rate:g} lines/s for {args.seconds:g} s, {args.rooms} room(s), {args.subscribers} "
          f"subscriber process(es), a pass every {args.pass_ms:g} ms; redis-server {redis_version()}")
    print("run   sent  received/sub  lost dup   p50 us   p99 us   max us  pub cpu  sub cpu  redis cpu")
    rows = []
    for run in range(args.runs):
        result = one_run(args)
        subs = result["subs"]
        assert isinstance(subs, list)
        lat = [s["latencies_us"] for s in subs]
        row = (statistics.median(x[0] for x in lat), statistics.median(x[1] for x in lat), max(x[2] for x in lat))
        rows.append(row)
        pub = result["pub"]
        assert isinstance(pub, dict)
        print(f"{run + 1:>3} {pub['sent']:>6} {min(s['received'] for s in subs):>13} "
              f"{sum(s['lost'] for s in subs):>5} {sum(s['duplicated'] for s in subs):>3} {row[0]:>8.0f} "
              f"{row[1]:>8.0f} {row[2]:>8.0f} {pub['cpu']:>8.2f} {statistics.mean(s['cpu'] for s in subs):>8.2f} "
              f"{result['redis_cpu']:>10.2f}" + (f"  errors: {pub['errors']}" if pub["errors"] else ""))
    print(f"median of {args.runs}: p50 {statistics.median(r[0] for r in rows):.0f} us, "
          f"p99 {statistics.median(r[1] for r in rows):.0f} us")


def redis_version() -> str:
    out = subprocess.run([shutil.which("redis-server") or "redis-server", "--version"], capture_output=True, text=True)
    return out.stdout.split()[2] if out.returncode == 0 else "?"


if __name__ == "__main__":
    main()
