"""Start-up and restart of the real ``chatroom-server``: one server per data dir, ports kept across restarts,
start-up mistakes in one line before any plugin is loaded (issue 17 rows 3, 6 and 13).

Servers are real subprocesses; tests synchronise on the lines they print (read by a thread, with deadlines)
and talk real TCP. A plugin file that leaves a marker when imported shows whether plugins were loaded.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import textwrap
import threading
from pathlib import Path

import pytest
from conftest import DEADLINE, LineClient

MARKER_PLUGIN = """
    import os
    from pathlib import Path

    Path(os.environ["CHATROOM_TEST_MARKER"]).write_text("imported")
"""


class Running:
    """A ``chatroom-server`` subprocess started with exactly *args*; stdout lines are read by a thread,
    stderr goes to a file."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.stderr_path = tmp_path / f"stderr-{os.urandom(4).hex()}.txt"
        with open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen(["chatroom-server", *args], stdout=subprocess.PIPE, stderr=err, text=True,
                                         env={**os.environ, **(env or {})})
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        first = self.next_line()
        assert first.startswith("chatroom-server listening on "), (first, self.stderr)
        self.port = int(first.rpartition(":")[2])
        web = self.next_line()
        assert web.startswith("chatroom-server web http://127.0.0.1:"), (web, self.stderr)
        self.web_port = int(web.rstrip("/").rpartition(":")[2])

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self) -> str:
        line = self.lines.get(timeout=DEADLINE)
        assert line is not None, f"the server ended: {self.stderr}"
        return line

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def client(self, nick: str) -> LineClient:
        client = LineClient("127.0.0.1", self.port)
        client.expect_prefix("* Welcome")
        client.send(f"/nick {nick}")
        client.expect(f"OK nick {nick}")
        return client

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


@pytest.fixture
def running(tmp_path: Path):
    """``running(*args)`` starts a server with exactly *args*; every one is stopped at the end."""
    servers: list[Running] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Running:
        servers.append(Running(tmp_path, *args, env=env))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()
        if server.proc.stdout is not None:
            server.proc.stdout.close()


def refused(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a ``chatroom-server`` that must stop by itself."""
    return subprocess.run(["chatroom-server", *args], capture_output=True, text=True, timeout=2 * DEADLINE,
                          env={**os.environ, **(env or {})})


def one_line_error(result: subprocess.CompletedProcess[str], *parts: str) -> str:
    """*result* exited 2 with nothing on stdout and one ``chatroom-server: error:`` line naming *parts*."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("chatroom-server: error: "), lines
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


@pytest.fixture
def marker(tmp_path: Path) -> tuple[list[str], dict[str, str], Path]:
    """(flags loading a plugin folder, the environment, the file the plugin writes when it is imported)."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "marker.py").write_text(textwrap.dedent(MARKER_PLUGIN))
    mark = tmp_path / "imported"
    return ["--plugin-dir", str(folder)], {"CHATROOM_TEST_MARKER": str(mark)}, mark


# ---- row 3: one server per data dir --------------------------------------------------------------


def test_a_second_server_on_the_same_data_dir_is_refused_and_nothing_is_lost(tmp_path: Path, running, marker) -> None:
    data = str(tmp_path / "data")
    first = running("--port", "0", "--data-dir", data)
    alice = first.client("alice")
    alice.send("said before the second server")
    alice.send("/upper sync")
    alice.expect("SYNC")
    plugins, env, mark = marker
    for extra in ([], ["--tls"], ["--port", "0", "--web-port", "off"]):  # the README invites --tls from the same folder
        second = refused("--data-dir", data, *extra, *plugins, env=env)
        one_line_error(second, f"data dir {data} is in use", f"PID {first.proc.pid}", f"127.0.0.1:{first.port}")
    assert not mark.exists(), "the second server loaded no plugin"
    assert not (tmp_path / "data" / "tls-cert.pem").exists(), "nor made a certificate in the first one's folder"
    alice.send("said after the second server")
    alice.send("/history #lobby 5")
    alice.expect("OK history #lobby 2 lines")
    alice.close()
    assert first.stop(signal.SIGINT) == 0, first.stderr  # Ctrl-C
    assert "Traceback" not in first.stderr and "cannot save" not in first.stderr, first.stderr
    again = running("--port", "0", "--data-dir", data)
    bob = again.client("bob")
    bob.send("/history #lobby 5")
    lines = bob.expect("OK history #lobby 2 lines")
    assert [line.split("] ", 1)[1] for line in lines] == ["alice: said before the second server",
                                                        "alice: said after the second server"]
    bob.close()


# ---- row 6: restarts keep people connected ------------------------------------------------------


def test_a_restart_without_port_reuses_the_ports_and_says_so(tmp_path: Path, running) -> None:
    data = str(tmp_path / "data")
    first = running("--data-dir", data, "--quiet")
    assert first.stop() == 0
    second = running("--data-dir", data, "--quiet")
    assert (second.port, second.web_port) == (first.port, first.web_port)
    assert second.next_line() == f"chatroom-server reusing port {first.port}, the one this data dir had last time"
    assert second.next_line() == (f"chatroom-server reusing web port {first.web_port}, "
                                  f"the one this data dir had last time")
    second.client("alice").close()
    assert "reusing port" in (tmp_path / "data" / "chatroom.log").read_text()


def test_port_0_still_means_the_kernel_picks(tmp_path: Path, running) -> None:
    data = str(tmp_path / "data")
    with socket.create_server(("127.0.0.1", 0)) as first_port:  # a port to give explicitly, then free it
        fixed = first_port.getsockname()[1]
    first = running("--port", str(fixed), "--data-dir", data, "--quiet")
    assert first.port == fixed and first.stop() == 0
    with socket.create_server(("127.0.0.1", fixed)):  # the last port is taken, but 0 does not look at it
        second = running("--port", "0", "--web-port", "0", "--data-dir", data, "--quiet")
        assert second.port not in (0, fixed)
        second.client("alice").close()  # start-up is over: every start-up line has been printed
    log = (tmp_path / "data" / "chatroom.log").read_text()
    assert "reusing" not in log and "is taken" not in log


def test_a_taken_port_gives_a_new_one_with_a_clear_line(tmp_path: Path, running) -> None:
    data = str(tmp_path / "data")
    first = running("--data-dir", data, "--quiet")
    assert first.stop() == 0
    with socket.create_server(("127.0.0.1", first.port)):
        second = running("--data-dir", data, "--quiet")
        assert second.port != first.port
        assert second.next_line() == (f"chatroom-server port {first.port}, the one this data dir had last time, "
                                      f"is taken: using {second.port} instead (clients must use the new one)")
        assert second.next_line().startswith(f"chatroom-server reusing web port {first.web_port}")
        second.client("alice").close()
    assert second.stop() == 0
    third = running("--data-dir", data, "--quiet")  # the new port is the one remembered now
    assert third.port == second.port


# ---- row 13: start-up mistakes ------------------------------------------------------------------


@pytest.mark.parametrize("mistake", ["port in use", "unknown host", "not this machine", "web port in use"])
def test_start_up_mistakes_are_one_line_before_any_plugin_is_loaded(tmp_path: Path, marker, mistake: str) -> None:
    plugins, env, mark = marker
    data = ["--data-dir", str(tmp_path / "data")]
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = str(busy.getsockname()[1])
        args, parts = {
            "port in use": (["--port", port], [f"cannot listen on 127.0.0.1:{port}", "Address already in use"]),
            "unknown host": (["--host", "nosuch.invalid"], ["cannot listen on nosuch.invalid", "unknown host"]),
            "not this machine": (["--host", "10.99.99.99"], ["10.99.99.99 is not an address of this machine"]),
            "web port in use": (["--port", "0", "--web-port", port], [f"cannot listen on 127.0.0.1:{port}"]),
        }[mistake]
        result = refused(*args, *data, *plugins, env=env)
    one_line_error(result, *parts)
    assert not mark.exists(), "no plugin is imported before the ports are bound"
    again = refused("--port", "0", *data, "--web-port", "off", "--list-plugins", *plugins, env=env)
    assert again.returncode == 0 and mark.exists(), "the marker plugin works when it is loaded"


def test_a_plugin_dir_that_is_no_folder_is_one_line(tmp_path: Path, marker) -> None:
    """A typo in ``--plugin-dir`` stops the server (it used to run without the plugins, saying so only in
    a log line among the others); ``--no-plugins`` still only warns, since nothing is loaded."""
    plugins, env, mark = marker
    (tmp_path / "file.py").write_text("")
    for missing in (tmp_path / "no-such-folder", tmp_path / "file.py"):
        result = refused(*plugins, "--plugin-dir", str(missing), "--data-dir", str(tmp_path / "data"), env=env)
        one_line_error(result, "--plugin-dir", str(missing), "not a folder")
    assert not mark.exists() and not (tmp_path / "data").exists()


@pytest.mark.parametrize("option, value", [("--slow-hook-ms", "nan"), ("--ready-grace", "-1"),
                                           ("--plugin-fault-limit", "0"), ("--slow-hook-ms", "inf"),
                                           ("--max-queue", "0"), ("--file-offer-timeout", "1e9"),
                                           ("--history-on-join", "501"), ("--tls-port", "65536"),
                                           ("--file-stall-timeout", "0")])
def test_numeric_options_out_of_range_are_one_line(tmp_path: Path, option: str, value: str) -> None:
    result = refused(f"{option}={value}", "--data-dir", str(tmp_path / "data"))
    one_line_error(result, f"argument {option}", repr(value))
    assert not (tmp_path / "data").exists()


def test_plugin_lines_go_to_the_log_file_and_to_the_console_only_with_v(tmp_path: Path, running) -> None:
    quiet = running("--port", "0", "--data-dir", str(tmp_path / "a"))
    loud = running("--port", "0", "--data-dir", str(tmp_path / "b"), "-v")
    for server in (quiet, loud):
        server.client("alice").close()  # past start-up: its log lines are written
    assert "loaded plugin core" not in quiet.stderr and "listening on" in quiet.stderr
    assert "loaded plugin core" in loud.stderr
    for name in ("a", "b"):
        assert "loaded plugin core" in (tmp_path / name / "chatroom.log").read_text()


def test_the_client_refuses_a_bad_port_in_one_line_without_the_usage() -> None:
    result = subprocess.run(["chatroom-client", "--port", "70000", "--name", "alice"], capture_output=True,
                            text=True, timeout=DEADLINE, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("chatroom-client: error: argument --port"), lines
    assert "70000" in lines[0] and "usage" not in result.stderr


# ---- the same rules in-process: Server(options) takes the claim itself ------------------------


def test_an_in_process_server_holds_its_data_dir_until_it_closes(tmp_path: Path) -> None:
    from chatroom.server.app import Server, ServerOptions
    from chatroom.server.claim import LOCK_NAME, DataDirBusy

    options = ServerOptions(port=0, data_dir=tmp_path / "data", web=False)
    first = Server(options)
    with pytest.raises(DataDirBusy, match=rf"PID {os.getpid()}, listening on 127.0.0.1:{first.address[1]}"):
        Server(options)
    with pytest.raises(DataDirBusy):
        Server(options.replace(port=None, tls=True))
    assert not (tmp_path / "data" / "tls-cert.pem").exists()
    first.close()
    second = Server(options.replace(port=None))  # no port: the one the first had
    try:
        assert second.address == first.address
        assert second.claim.notes == [f"reusing port {first.address[1]}, the one this data dir had last time"]
        assert f'"pid": {os.getpid()}' in (tmp_path / "data" / LOCK_NAME).read_text()
    finally:
        second.close()
