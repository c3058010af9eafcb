"""chatroom's controller for irctest (github.com/progval/irctest), the IRC conformance suite.

Not a test module of ours (pytest does not collect it): irctest loads it from its own checkout with
``--controller irctest_controller`` and this folder on ``PYTHONPATH``. docs/irc.md gives the exact command,
the selection of tests and the figures. irctest starts one server per test: here a real ``chatroom-server``
(the one on ``PATH``) with only its IRC door listening where irctest asks, a fresh data dir, the server
name irctest expects (``My.Little.Server``), and, when a test asks for them, the server password
(``--password-file``), TLS (``--irc-tls-port`` with irctest's certificate) and accounts: an account is
registered by logging in over IRC and sending chatroom's ``/register`` as the ``REGISTER`` command.
``OPER operuser operpassword`` works for the account ``operuser``, an admin of the config file.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Optional, Set, Type

from irctest.basecontrollers import (  # type: ignore[import-not-found]
    BaseServerController,
    BaseServicesController,
    DirectoryBasedController,
)
from irctest.runner import NotImplementedByController  # type: ignore[import-not-found]

SERVER_NAME = "My.Little.Server"


def _store_account(self: Any, name: str, password: str) -> None:
    """Create the account *name* with *password* straight in the server's account store (the server reads it
    on the next login), with chatroom's own code run by the Python that runs ``chatroom-server``: for the
    passwords irctest uses that ``/register`` refuses for being short. SASL still checks them the normal way."""
    python = Path(shutil.which("chatroom-server") or "chatroom-server").parent / "python"
    code = ("import sys; from chatroom.model.accounts import AccountStore, hash_password; "
            "AccountStore(__import__('pathlib').Path(sys.argv[1])).create(sys.argv[2], hash_password(sys.argv[3]))")
    store = Path(self.directory) / "data" / "accounts.sqlite3"
    subprocess.run([str(python), "-c", code, str(store), name, password], check=True, timeout=30)


class ChatroomController(BaseServerController, DirectoryBasedController):  # type: ignore[misc]
    software_name = "chatroom"
    _store_account = _store_account
    supported_sasl_mechanisms: Set[str] = {"PLAIN"}
    supports_sts = False

    def run(self, hostname: str, port: int, *, password: Optional[str], ssl: bool, run_services: bool,
            faketime: Optional[str], websocket_hostname: Optional[str], websocket_port: Optional[int]) -> None:
        if websocket_hostname is not None or websocket_port is not None:
            raise NotImplementedByController("Websocket")
        assert self.proc is None
        self.create_config()
        assert self.directory is not None
        self.hostname, self.port = hostname, port
        data = Path(self.directory) / "data"
        config = Path(self.directory) / "chatroom.toml"
        config.write_text('admins = ["operuser"]\n')
        command = [shutil.which("chatroom-server") or "chatroom-server", "--host", hostname, "--port", "0",
                   "--web-port", "off", "--data-dir", str(data), "--config", str(config), "--quiet",
                   "--irc-server-name", SERVER_NAME, "--history-on-join", "0"]
        if ssl:
            self.gen_ssl()
            command += ["--irc-tls-port", str(port), "--tls-cert", str(self.pem_path), "--tls-key", str(self.key_path)]
        else:
            command += ["--irc-port", str(port)]
        if password is not None:
            secret = Path(self.directory) / "password.txt"
            secret.write_text(password + "\n")
            command += ["--password-file", str(secret)]
        self.password = password
        self.proc = self.execute(command)
        if run_services:  # chatroom's accounts are its own: no services process, the server registers them
            self.services_controller = ChatroomServices(self.test_config, self)
        try:
            self.wait_for_port()
            self._register("operuser", "operpassword")
        except Exception:
            self.kill()  # never leave a server behind a failed start
            raise

    def registerUser(self, case: Any, username: str, password: Optional[str] = None) -> None:
        """An account: connect as *username* and send chatroom's ``/register PASSWORD`` as ``REGISTER``."""
        self._register(username, password or "")

    def wait_for_services(self) -> None:
        """Nothing to wait for (see :class:`ChatroomServices`)."""

    def _register(self, username: str, password: str) -> None:
        if not password:
            raise NotImplementedByController("accounts without a password")
        conn = socket.create_connection((self.hostname, self.port), timeout=10)
        try:
            if getattr(self, "password", None):
                conn.sendall(f"PASS {self.password}\r\n".encode())
            conn.sendall(f"NICK {username}\r\nUSER {username} 0 * :{username}\r\n".encode())
            _wait(conn, b" 001 ")
            conn.sendall(f"REGISTER {password}\r\n".encode())
            answer = _wait(conn, b":OK registered", refusal=b":ERROR ", too_long=b" 417 ")
            if b":OK registered" not in answer:  # chatroom's password rules (8 to 256 characters, no spaces)
                self._store_account(username, password)  # refuse irctest's "sesame": store it as an admin would
            conn.sendall(b"QUIT\r\n")
            _wait(conn, b"ERROR")
        finally:
            conn.close()
        time.sleep(0.05)  # the nick is free again once the server has seen the QUIT


def _wait(conn: socket.socket, token: bytes, refusal: bytes | None = None, too_long: bytes | None = None) -> bytes:
    """Read until *token* (or *refusal*, or *too_long*) arrives; returns what was read."""
    data = b""
    deadline = time.monotonic() + 10
    while token not in data and not any(t is not None and t in data for t in (refusal, too_long)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"chatroom did not answer {token!r}: {data[-300:]!r}")
        chunk = conn.recv(4096)
        if not chunk:
            raise RuntimeError(f"chatroom closed before {token!r}: {data[-300:]!r}")
        data += chunk
    return data


class ChatroomServices(BaseServicesController):  # type: ignore[misc]
    """irctest's "services" for chatroom: accounts live in chatroom itself (``/register``, SASL PLAIN), so
    there is no process to start or wait for; registering a user is the server controller's ``REGISTER``."""

    software_name = "chatroom"

    def run(self, protocol: str, server_hostname: str, server_port: int) -> None:
        pass

    def wait_for_services(self) -> None:
        pass

    def registerUser(self, case: Any, username: str, password: Optional[str] = None) -> None:
        self.server_controller._register(username, password or "")

    def kill(self) -> None:
        pass

    def terminate(self) -> None:
        pass


def get_irctest_controller_class() -> Type[ChatroomController]:
    return ChatroomController
