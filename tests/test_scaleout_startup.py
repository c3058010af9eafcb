"""``--redis`` at start-up, over the real console script: the extra missing, Redis unreachable, warnings for
settings that lose chat, bad flags; and a plain server that never imports the scale-out package or hiredis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DEADLINE, LineClient


def run_server(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["chatroom-server", "--port", "0", "--web-port", "off", "--data-dir", str(tmp_path / "d"),
                           *args], capture_output=True, text=True, timeout=DEADLINE, env={**os.environ, **(env or {})})


def test_without_the_redis_extra_redis_exits_2_with_the_install_hint(tmp_path: Path) -> None:
    fake = tmp_path / "fake"
    (fake / "hiredis").mkdir(parents=True)
    (fake / "hiredis" / "__init__.py").write_text("raise ImportError(\"No module named 'hiredis'\")\n")
    done = run_server(tmp_path, "--redis", "unix:///nowhere.sock", env={"PYTHONPATH": str(fake)})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "chatroom-server: error: --redis needs the redis extra: pip install 'chatroom[redis]' "
        "(No module named 'hiredis')"]
    assert done.stdout == ""


def test_an_unreachable_redis_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = run_server(tmp_path, "--redis", f"unix://{tmp_path}/no.sock")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"chatroom-server: error: cannot reach Redis at unix:{tmp_path}/no.sock: No such file or directory"]


@pytest.mark.parametrize("args, message", [
    (["--redis", "rediss://h"], "option redis (--redis) rediss:// (Redis over TLS) is not supported"),
    (["--redis", "redis://h/x"], "option redis (--redis) not a Redis database number: 'x'"),
    (["--node", "a b"], "option node (--node) must be 1-64 of A-Z a-z 0-9 . _ -: 'a b'"),
    (["--redis-timeout", "0"], "argument --redis-timeout: must be a number more than 0 and at most 60: '0'"),
])
def test_bad_scale_out_flags_are_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    done = run_server(tmp_path, *args)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr


def test_a_redis_without_persistence_or_with_eviction_is_warned_about(tmp_path: Path, redis_factory) -> None:  # type: ignore[no-untyped-def]
    redis = redis_factory(appendonly=False, extra=("--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru"))
    proc = subprocess.Popen(["chatroom-server", "--port", "0", "--web-port", "off", "--data-dir", str(tmp_path / "d"),
                             "--redis", redis.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("chatroom-server listening on ")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0
    assert "has no persistence (appendonly no, no save points)" in err
    assert "evicts keys when full (maxmemory-policy allkeys-lru)" in err


def test_a_plain_server_never_imports_the_scale_out_package_or_hiredis(tmp_path: Path) -> None:
    report = tmp_path / "modules.txt"
    wrapper = ("import atexit, sys\n"
               f"atexit.register(lambda: open({str(report)!r}, 'w').write('\\n'.join(sorted(sys.modules))))\n"
               "from chatroom.server.cli import main\n"
               "sys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.Popen([sys.executable, "-c", wrapper, "--port", "0", "--data-dir", str(tmp_path / "d")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("chatroom-server listening on ")
        client = LineClient("127.0.0.1", int(first.rsplit(":", 1)[1]))
        client.expect_prefix("* Welcome")
        client.send("/nick alice")
        client.expect("OK nick alice")
        client.send("hello")
        client.send("/history 5")
        client.expect_where(lambda line: line.endswith("alice: hello"), "the line in /history")
        client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=DEADLINE)
    modules = report.read_text().split()
    assert "chatroom.server.app" in modules and "chatroom.net.loop" in modules  # the report is the server's
    assert [m for m in modules if m.split(".")[0] in ("hiredis", "redis") or m.startswith("chatroom.scaleout")] == []


def test_reuse_port_lets_two_servers_share_a_port_and_without_it_the_second_is_refused(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = server_factory("--reuse-port", "--web-port", "off", data_dir=tmp_path / "a")
    refused = run_server(tmp_path, "--port", str(first.port))  # later --port wins over the helper's --port 0
    assert refused.returncode == 2 and "Address already in use" in refused.stderr
    second = subprocess.Popen(["chatroom-server", "--data-dir", str(tmp_path / "b"), "--port", str(first.port),
                               "--reuse-port", "--web-port", "off"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        assert second.stdout is not None
        assert second.stdout.readline().strip() == f"chatroom-server listening on 127.0.0.1:{first.port}"
        for _ in range(40):  # the kernel spreads new connections over both (by a hash of the peer's address)
            client = LineClient("127.0.0.1", first.port)
            assert client.next_line().startswith("* Welcome")
            client.close()
        served = [(tmp_path / d / "chatroom.log").read_text().count(" connected from ") for d in ("a", "b")]
        assert sum(served) == 40 and min(served) > 0, served
        second.send_signal(signal.SIGTERM)
        assert second.wait(DEADLINE) == 0
        for _ in range(10):
            client = LineClient("127.0.0.1", first.port)
            assert client.next_line().startswith("* Welcome")
            client.close()
    finally:
        if second.poll() is None:
            second.kill()
        second.communicate()
