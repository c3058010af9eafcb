"""The browser client's first load: bytes transferred and time to first message, on loopback.

Usage::

    python bench/web_load.py [--runs 7] [--history 20]

Starts a fresh ``chatroom-server --port 0 --web-port 0`` in a temporary data
dir, puts ``--history`` lines into ``#lobby`` from a raw TCP client (what a
newcomer sees replayed on joining), then, per run:

- **cold**: launches a new headless Chromium (Debian's, ``executable_path``)
  with an empty profile, opens the page's URL and waits until the first
  message (``ol.log li.msg``) is on the page. Measured: *time to first
  message* from navigation start (``performance.now()`` at the
  MutationObserver callback that saw it; navigation start is the page's
  time origin), the same from ``launch()`` (browser start included), DOM
  content loaded, HTTP requests, the bytes of every HTTP response (headers +
  body, Playwright's ``request.sizes()``) and of WebSocket messages received
  until the first message, and the bytes the browser sent.
- **warm** (the same-run baseline): a second page in the same browser
  context reloads the page, its files now in the HTTP cache (revalidated:
  ``Cache-Control: no-cache`` + ``ETag`` -> ``304``).

Prints each run and the medians, the command, Chromium and Python versions,
CPU count and load average. Never run it beside another benchmark.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

FIRST_MESSAGE_PROBE = """
(() => {
  window.__firstMessage = null;
  new MutationObserver((changes, observer) => {
    if (document.querySelector('ol.log li.msg')) {
      window.__firstMessage = performance.now();
      observer.disconnect();
    }
  }).observe(document, { childList: true, subtree: true });
})();
"""


def start_server(data_dir: Path) -> tuple[subprocess.Popen[str], int, str]:
    proc = subprocess.Popen(
        ["chatroom-server", "--port", "0", "--web-port", "0", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    port, url = 0, ""
    for _ in range(20):  # bounded: the URL is among its first lines
        line = proc.stdout.readline().strip()
        if line.startswith("chatroom-server listening on "):
            port = int(line.rsplit(":", 1)[1])
        if match := re.match(r"^chatroom-server web (\S+)$", line):
            url = match.group(1)
            break
    if not port or not url:
        proc.kill()
        raise SystemExit("chatroom-server printed no web URL")
    return proc, port, url


def seed(port: int, lines: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        body = "".join(f"seed line {n}: the quick brown fox jumps over the lazy dog\n" for n in range(lines))
        sock.sendall(("/nick seeder\n" + body + "/upper done\n").encode())
        got = b""
        deadline = time.monotonic() + 10
        while b"DONE\n" not in got and time.monotonic() < deadline:
            got += sock.recv(65536)


def measure(page: Page, url: str) -> dict[str, float]:
    """Open *url* in *page*; the figures of one load (ms, bytes)."""
    http = {"requests": 0, "down": 0, "up": 0}
    ws = {"down": 0, "up": 0}

    def finished(request) -> None:  # type: ignore[no-untyped-def]
        sizes = request.sizes()
        http["requests"] += 1
        http["down"] += sizes["responseHeadersSize"] + sizes["responseBodySize"]
        http["up"] += sizes["requestHeadersSize"] + sizes["requestBodySize"]

    def websocket(socket_) -> None:  # type: ignore[no-untyped-def]
        def size(payload) -> int:  # type: ignore[no-untyped-def]
            return len(payload.encode() if isinstance(payload, str) else payload)

        socket_.on("framereceived", lambda payload: ws.__setitem__("down", ws["down"] + size(payload)))
        socket_.on("framesent", lambda payload: ws.__setitem__("up", ws["up"] + size(payload)))

    page.on("requestfinished", finished)
    page.on("websocket", websocket)
    page.add_init_script(FIRST_MESSAGE_PROBE)
    page.goto(url)
    page.wait_for_function("window.__firstMessage !== null", timeout=20_000)
    first = page.evaluate("window.__firstMessage")
    dcl = page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
    return {"first_ms": first, "dcl_ms": dcl, "requests": http["requests"], "http_down": http["down"],
            "http_up": http["up"], "ws_down": ws["down"], "ws_up": ws["up"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--history", type=int, default=20)
    args = parser.parse_args()
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    print(f"$ python bench/web_load.py {shlex.join(sys.argv[1:])}")
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()}")
    cold: list[dict[str, float]] = []
    warm: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        proc, port, url = start_server(Path(tmp) / "data")
        try:
            seed(port, args.history)
            for run in range(args.runs):
                started = time.perf_counter()
                browser = playwright.chromium.launch(executable_path=chromium)
                if run == 0:
                    print(f"chromium {browser.version}, page {url}")
                context = browser.new_context()
                page = context.new_page()
                figures = measure(page, url)
                figures["launch_to_first_ms"] = (time.perf_counter() - started) * 1000
                cold.append(figures)
                page.close()  # the next page reuses the context's HTTP cache
                again = context.new_page()
                warm.append(measure(again, url))
                browser.close()
                print(f"run {run + 1}: cold {fmt(cold[-1])}")
                print(f"       warm {fmt(warm[-1])}")
        finally:
            proc.terminate()
            proc.wait(10)
    print("median of", args.runs, "runs:")
    print(f"  cold {fmt(median(cold))}")
    print(f"  warm {fmt(median(warm))}")


def median(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(row[key] for row in rows) for key in rows[0]}


def fmt(row: dict[str, float]) -> str:
    parts = [
        f"first message {row['first_ms']:.0f} ms", f"DOMContentLoaded {row['dcl_ms']:.0f} ms",
        f"{row['requests']:.0f} requests", f"HTTP {row['http_down'] / 1024:.1f} KiB down / {row['http_up'] / 1024:.1f} KiB up",
        f"WebSocket {row['ws_down'] / 1024:.1f} KiB down / {row['ws_up']:.0f} B up",
    ]
    if "launch_to_first_ms" in row:
        parts.append(f"from launch() {row['launch_to_first_ms']:.0f} ms")
    return ", ".join(parts)


if __name__ == "__main__":
    main()
