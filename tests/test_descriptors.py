"""The server raises its descriptor limit to the hard limit at start-up, and says when the limit is low."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import LineClient


def _soft_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open-files line in /proc/PID/limits")


def _start(tmp_path: Path, nofile: str) -> tuple[subprocess.Popen[str], int, Path]:
    data = tmp_path / "data"
    proc = subprocess.Popen(["prlimit", f"--nofile={nofile}", "chatroom-server", "--port", "0", "--quiet",
                             "--data-dir", str(data)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline().strip().rsplit(":", 1)[1])
    return proc, port, data / "chatroom.log"


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()


def test_the_soft_descriptor_limit_is_raised_to_the_hard_one(tmp_path: Path) -> None:
    proc, port, log = _start(tmp_path, "64:4096")
    try:
        assert _soft_limit(proc.pid) == 4096
        client = LineClient("127.0.0.1", port)  # serving, once the line above was printed
        try:
            assert client.next_line().startswith("* Welcome to chatroom")
        finally:
            client.close()
        text = log.read_text()
        assert "file descriptors: soft limit raised from 64 to 4096 (the hard limit is 4096)" in text
        assert "only 4096 file descriptors" not in text
    finally:
        _stop(proc)


def test_a_low_hard_limit_is_named_in_the_log(tmp_path: Path) -> None:
    proc, _, log = _start(tmp_path, "128:128")
    try:
        assert _soft_limit(proc.pid) == 128
        text = log.read_text()
        assert "soft limit raised" not in text
        assert "only 128 file descriptors (ulimit -n, hard limit 128): about 88 connections at once" in text
    finally:
        _stop(proc)
