"""``chatroom-client``'s config file (``$XDG_CONFIG_HOME/chatroom/client.toml``, ``--config PATH``):
values checked as the flags check them, flags win, bad files are one line on stderr and exit status 2.

The end-to-end tests run the real console scripts with ``XDG_CONFIG_HOME`` in a temporary folder.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from chatroom.client.cli import build_parser, parse_with_config
from chatroom.client.config import ConfigError, config_values, default_config_path
from conftest import DEADLINE


def values(text: str) -> dict:
    import tomllib

    return config_values(tomllib.loads(text), build_parser(), "client.toml")


def test_the_default_path_follows_xdg_config_home(tmp_path: Path) -> None:
    assert default_config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "chatroom" / "client.toml"
    assert default_config_path({}) == Path(os.path.expanduser("~")) / ".config" / "chatroom" / "client.toml"


def test_values_are_checked_and_converted_like_flags() -> None:
    got = values('host = "10.0.0.2"\nport = 4000\nname = "alice"\nsend-dir = "~/out"\nquit_wait = 2\n'
                 'auto_send = true\nreconnect = false\n[tls]\ntls = true\nfingerprint = "sha256:' + "ab" * 32 + '"\n')
    assert got == {"host": "10.0.0.2", "port": 4000, "name": "alice", "send_dir": Path("~/out").expanduser(),
                   "quit_wait": 2.0, "auto_send": True, "reconnect": False, "tls": True,
                   "fingerprint": "SHA256:" + ":".join(["AB"] * 32)}  # normalised, as the flag is
    assert values('accept_files = "none"') == {"accept_files": "none"}


@pytest.mark.parametrize(("text", "message"), [
    ('hots = "x"', "client.toml: unknown key 'hots' (did you mean 'host'?)"),
    ('[display]\nnmae = "x"', "client.toml: unknown key 'display.nmae' (did you mean 'name'?)"),
    ("port = 70000", "client.toml: port: invalid port: '70000' (an integer 1-65535)"),
    ('port = "http"', "client.toml: port: invalid port: 'http' (an integer 1-65535)"),
    ("port = true", "client.toml: port: a value, not true"),
    ('tls = "yes"', "client.toml: tls: true or false, not 'yes'"),
    ('accept_files = "some"', "client.toml: accept_files: 'some' is not one of ask, all, none"),
    ("name = 5", "client.toml: name: text in quotes, not 5"),
    ('password = "hunter22"', "client.toml: password: passwords are not read from the config file: use "
                              "$CHATROOM_PASSWORD"),
    ("quit_wait = [1]", "client.toml: quit_wait: a single value, not a list"),
])
def test_bad_values_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        values(text)
    assert str(exc.value) == message


def test_flags_win_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('name = "fromfile"\nport = 4000\nhost = "10.1.1.1"\n')
    args = parse_with_config(["--config", str(path), "--name", "fromflag"])
    assert (args.name, args.port, args.host) == ("fromflag", 4000, "10.1.1.1")
    args = parse_with_config(["--config", str(path)])
    assert args.name == "fromfile"


def _run(args: list[str], stdin: str, xdg: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(xdg)}
    return subprocess.run(["chatroom-client", *args], input=stdin, capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=DEADLINE)


def test_the_client_connects_with_what_the_config_file_says(server, tmp_path: Path) -> None:
    carol = server.connect("carol")
    (tmp_path / "chatroom").mkdir()
    (tmp_path / "chatroom" / "client.toml").write_text(
        f'host = "127.0.0.1"\nport = {server.port}\nname = "fromfile"\n[display]\n')
    done = _run([], "hello from the file\n", tmp_path, tmp_path)
    assert done.returncode == 0, done.stderr
    carol.expect("fromfile: hello from the file")
    done = _run(["--name", "fromflag"], "hello from the flag\n", tmp_path, tmp_path)
    assert done.returncode == 0, done.stderr
    carol.expect("fromflag: hello from the flag")


def test_a_bad_config_file_is_one_line_and_status_2(tmp_path: Path) -> None:
    (tmp_path / "chatroom").mkdir()
    path = tmp_path / "chatroom" / "client.toml"
    path.write_text("port = 5000\nnmae = 'alice'\n")
    done = _run([], "", tmp_path, tmp_path)
    assert done.returncode == 2
    assert done.stderr == f"chatroom-client: {path}: unknown key 'nmae' (did you mean 'name'?)\n"
    path.write_text("port = \n")
    done = _run([], "", tmp_path, tmp_path)
    assert (done.returncode, done.stderr.count("\n")) == (2, 1)
    assert "not valid TOML" in done.stderr and "line 1" in done.stderr
    done = _run(["--config", str(tmp_path / "missing.toml")], "", tmp_path, tmp_path)
    assert (done.returncode, done.stderr) == (2, f"chatroom-client: {tmp_path / 'missing.toml'}: no such file\n")


def test_a_malformed_fingerprint_is_a_usage_mistake_from_the_flag_or_the_file(tmp_path: Path) -> None:
    """A mistyped ``--fingerprint`` is one line and status 2, like every other bad value (it was status 1, the
    status of a lost server, found only when connecting), and so is the same value in the config file."""
    with socket.create_server(("127.0.0.1", 0)) as unused:  # never reached: the mistake comes first
        port = str(unused.getsockname()[1])
        done = _run(["--name", "a", "--port", port, "--fingerprint", "SHA256:00:11"], "", tmp_path, tmp_path)
        assert (done.returncode, done.stderr.count("\n")) == (2, 1), done.stderr
        assert "not a SHA-256 fingerprint: 'SHA256:00:11'" in done.stderr
        (tmp_path / "chatroom").mkdir()
        (tmp_path / "chatroom" / "client.toml").write_text('[tls]\nfingerprint = "SHA256:AA"\n')
        done = _run(["--name", "a", "--port", port], "", tmp_path, tmp_path)
        assert (done.returncode, done.stderr.count("\n")) == (2, 1), done.stderr
        assert "fingerprint: not a SHA-256 fingerprint: 'SHA256:AA'" in done.stderr


def test_help_says_where_the_config_file_is_read_from(tmp_path: Path) -> None:
    done = _run(["--help"], "", tmp_path, tmp_path)
    assert done.returncode == 0
    assert str(tmp_path / "chatroom" / "client.toml") in " ".join(done.stdout.split())
