"""``chatroom-client``: the terminal client.

Usage::

    chatroom-client --name alice --port 5000 [--host 127.0.0.1] [--config PATH] [--[no-]reconnect]
                    [--send-dir send] [--received-dir received] [--auto-send [--settle 1.0]]
                    [--quit-wait 30] [--tls [--ca FILE | --fingerprint SHA256:...]]
                    [--accept-files ask|all|none] [--password [PASSWORD]]
                    [--server-password PASSWORD]

A missing ``--name`` or ``--port`` is asked for (prompt on stderr, answer on
stdin). The client connects, sends ``/caps binary`` and ``/nick NAME``,
prints every line the server sends and sends every line typed.

Two UIs, picked at start-up:

* **Terminal** (stdin and stdout are TTYs): :mod:`chatroom.client.tui`, a
  prompt_toolkit prompt; incoming lines appear above it and never clobber the
  line being typed; transfer progress bars live in the bottom toolbar. A
  refused name asks for another one.
* **Line mode** (anything else: pipes, files, scripts, tests;
  :mod:`chatroom.client.linemode`): a stdin reader thread feeds the network loop. At end of input the client waits for running
  transfers, sends ``/quit``, waits for ``OK`` and exits 0. A refused name
  prints the server's ``ERROR`` line on stderr and exits 2.

Quitting waits for transfers, within bounds: the user's own sends are waited
for until they end (the server aborts one that stops moving); files still
*arriving* get ``--quit-wait`` seconds (default 30) from the end of input or
``/quit``, then are discarded (part files removed, one ``discarded ...`` line
each) so that a sender trickling a byte now and then cannot keep the client
from exiting. ``--quit-wait 0`` discards them at once.

Client-side commands: ``/quit``, ``/sendfile NAME`` (any case; quote a name
with spaces), ``/transfers``, ``/cancel ID``, ``/accept [ID]`` and ``/decline
[ID]`` (:mod:`chatroom.client.files`); ``/help`` shows them after the server's
list (:mod:`chatroom.client.commands`). Every other line, ``/command`` or chat,
goes to the server as typed (type ``//text`` to say the literal ``/text``).

``--auto-send`` sends each new file of the send folder once, when it is
complete: closed after writing and then unchanged for ``--settle`` seconds
(default 1), or renamed or moved into the folder (write elsewhere, then
rename: the safe way); a file changed after it was sent is not sent again
(``/sendfile NAME`` does). See :mod:`chatroom.client.watch`.

Files offered by others (``--accept-files``): ``ask`` (the default on a
terminal) shows each offer with its name, size and sender and waits for
``/accept ID`` or ``/decline ID`` (no answer within the server's offer timeout,
60 s by default, counts as declined); ``all`` (the default when stdin is not a
terminal, as before consent existed) takes every file; ``none`` refuses them all.

Accounts: with ``--password PASSWORD``, ``--password`` alone (a prompt without
echo on the terminal) or ``$CHATROOM_PASSWORD``, the client logs in after
``/nick NAME`` with ``/login NAME PASSWORD``; a refused login is handled like a
refused name. The password is never printed.

Server password (``chatroom-server --password-file``): a server whose first
line asks for it gets ``/pass PASSWORD`` from ``--server-password PASSWORD`` or
``$CHATROOM_SERVER_PASSWORD``; without one, a terminal asks for it (typed
without echo), line mode prints the server's line on stderr and exits 2, as it
does when the server refuses it.

TLS (``--tls``): the certificate is checked as :mod:`chatroom.client.trust`
says (system CAs or ``--ca FILE``; a self-signed server trusted on first use
and remembered in ``~/.config/chatroom/known_hosts``, as are CA-verified ones,
which never fall back to a self-signed certificate; a failed CA check is a
refusal; ``--fingerprint`` pins it); a refusal is one line on stderr and exit
status 1.

Config file (:mod:`chatroom.client.config`): ``$XDG_CONFIG_HOME/chatroom/client.toml``
(default ``~/.config/chatroom/client.toml``) or ``--config PATH`` sets any long
option; flags win; a bad file is one line on stderr and exit status 2.

Reconnect (``--reconnect``/``--no-reconnect``; default on for a terminal, off
in line mode so that scripts see the loss): a dropped connection is dialled
again with backoff, the handshake redone, rooms rejoined and missed lines
fetched by history id (:mod:`chatroom.client.reconnect`,
:mod:`chatroom.client.catchup`); ``/quit``, Ctrl-D and Ctrl-C end it at once.

Exit status: 0 after ``/quit``; 1 when the server cannot be reached, its
TLS certificate is refused or the connection is lost (``connection to server lost`` on stderr); 2 for bad
arguments, a refused name, or a missing or refused server password in line mode;
130 on Ctrl-C in line mode.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import importlib.metadata
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TextIO

from chatroom.client.config import ConfigError, default_config_path, load_config
from chatroom.client.connection import Transport
from chatroom.client.display import add_display_options
from chatroom.client.handshake import SERVER_PASSWORD_ENV
from chatroom.client.inputs import QUIT_WAIT
from chatroom.client.linemode import run_line_mode, stdin_reader
from chatroom.client.trust import TrustRefused, normalize_fingerprint, open_tls

__all__ = ["build_parser", "main", "parse_port", "read_line_fd", "resolve_args", "stdin_reader"]

CONNECT_TIMEOUT = 10.0
#: The environment variable a password may come from (``--password`` wins).
PASSWORD_ENV = "CHATROOM_PASSWORD"


class UsageFailure(Exception):
    """A required argument is missing or invalid and cannot be asked for again."""


def parse_port(text: str) -> int:
    """``"5000"`` -> 5000. Raises ValueError unless it is an integer in 1..65535."""
    port = int(text.strip())
    if not 1 <= port <= 65535:
        raise ValueError(f"port out of range: {port}")
    return port


def _port_arg(text: str) -> int:
    try:
        return parse_port(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port: {text!r} (an integer 1-65535)") from None


def _installed_version() -> str:
    """The installed distribution's version (the client imports nothing of the server's, not even
    ``chatroom.__version__``, which is the same number)."""
    try:
        return importlib.metadata.version("chatroom")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "(not installed)"


def _fingerprint_arg(text: str) -> str:
    try:
        return normalize_fingerprint(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):  # also refuses NaN
        raise argparse.ArgumentTypeError(f"invalid seconds: {text!r} (a number, 0 or more)")
    return value


class _OneLineErrors(argparse.ArgumentParser):
    """argparse whose usage error is one line, ``chatroom-client: error: MESSAGE``, exit status 2 (no usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``chatroom-client`` argument parser."""
    p = _OneLineErrors(
        prog="chatroom-client",
        usage="%(prog)s [--name NAME] [--port PORT] [--host HOST] [OPTION]...",
        formatter_class=argparse.RawDescriptionHelpFormatter,  # the config path below is never broken up
        description="Chat in a chatroom-server room. Type a line to send it; /help lists the server's\n"
        "commands; /sendfile NAME sends a file from the send folder; /transfers lists files\n"
        "moving and offers waiting; /cancel ID stops one; /accept [ID] or /decline [ID]\n"
        "answers an offer; /quit leaves.",
        epilog=f"config file: {default_config_path()}\n"
        "  ($XDG_CONFIG_HOME/chatroom/client.toml, or --config PATH) sets any long option\n"
        "  by its name without dashes (port = 5000, send_dir = \"out\", reconnect = true;\n"
        "  tables [tls] and [display] only group keys); flags given here win. See docs/client.md.",
    )
    p.add_argument("--config", type=Path, metavar="PATH",
                   help="read settings from PATH instead of the config file named below")
    p.add_argument("--name", help="your nick in the room (asked for when missing)")
    p.add_argument("--port", type=_port_arg,
                   help="the server's port, as chatroom-server prints it at start-up (asked for when missing)")
    p.add_argument("--host", default="127.0.0.1", help="the server's address (default: %(default)s)")
    files = p.add_argument_group("files", "/sendfile NAME sends send/NAME; what others send lands in received/")
    files.add_argument("--send-dir", type=Path, default=Path("send"), metavar="DIR", help="folder /sendfile reads from (default: %(default)s)")
    files.add_argument(
        "--received-dir", type=Path, default=Path("received"), metavar="DIR", help="folder received files go to (default: %(default)s)"
    )
    files.add_argument("--auto-send", action="store_true",
                   help="send each new file in the send folder once, when it is complete: closed after writing "
                   "and then unchanged for --settle seconds, or renamed or moved into the folder (the safe way: "
                   "write it elsewhere or as NAME.part, then rename it). A file changed after it was sent is not "
                   "sent again: /sendfile NAME sends it. Without --auto-send the client says when a file is ready")
    files.add_argument("--settle", type=_seconds_arg, default=None, metavar="S",
                   help="seconds a file written in the send folder must stay closed and unchanged before it counts "
                   "as complete (default: 1)")
    files.add_argument(
        "--quit-wait", type=_seconds_arg, default=QUIT_WAIT, metavar="S",
        help="at end of input or /quit, wait at most S seconds for files still arriving, then discard them "
        "and quit; your own sends are always finished (default: %(default)g)",
    )
    files.add_argument("--accept-files", choices=("ask", "all", "none"), default=None,
                   help="files others offer you: ask each time (/accept ID or /decline ID; the default on a "
                   "terminal), take all (the default when stdin is not a terminal), or refuse all")
    p.add_argument("--password", nargs="?", const="", default=None, metavar="PASSWORD",
                   help=f"log in to the account NAME after connecting; without a value: ${PASSWORD_ENV} if set "
                   f"(it keeps the password out of the process list), else asked for without echo (a terminal "
                   f"only)")
    p.add_argument("--server-password", metavar="PASSWORD",
                   help=f"the shared password of a server that asks for one (chatroom-server --password-file); "
                   f"${SERVER_PASSWORD_ENV} works too; otherwise a terminal asks for it without echo")
    p.add_argument("--reconnect", action=argparse.BooleanOptionalAction, default=None,
                   help="when the connection drops, connect again (backoff 0.5 s doubling up to 30 s), log in, "
                   "rejoin your rooms and show what you missed; /quit or Ctrl-D gives up at once (default: on "
                   "a terminal, off when stdin or stdout is not one, so scripts see the loss: exit status 1)")
    tls = p.add_argument_group("TLS")
    tls.add_argument("--tls", action="store_true",
                     help="connect with TLS (chatroom-server --tls or --tls-port); a certificate the system CAs "
                     "verify is trusted, a self-signed one on first use, both remembered in "
                     "~/.config/chatroom/known_hosts (XDG_CONFIG_HOME); a host once CA-verified is never trusted "
                     "with a self-signed certificate, and any other failed check is a refusal")
    tls.add_argument("--ca", type=Path, metavar="FILE",
                     help="trust only certificates signed by the CA certificates in FILE (implies --tls)")
    tls.add_argument("--fingerprint", type=_fingerprint_arg, metavar="SHA256:..",
                     help="trust only the certificate with this SHA-256 fingerprint, as chatroom-server prints "
                     "it (implies --tls)")
    add_display_options(p)
    p.add_argument("--version", action="version", version=f"chatroom {_installed_version()}")
    return p


def parse_with_config(argv: list[str] | None) -> argparse.Namespace:
    """The arguments, with the config file's values (:mod:`chatroom.client.config`) as defaults: flags win.

    Raises :class:`~chatroom.client.config.ConfigError`; argparse exits (status 2) on bad flags."""
    parser = build_parser()
    first, _ = parser.parse_known_args(argv)
    path = first.config if first.config is not None else default_config_path()
    parser.set_defaults(**load_config(path, parser, required=first.config is not None))
    return parser.parse_args(argv)


def read_line_fd(fd: int) -> bytes:
    """One line from file descriptor *fd*, unbuffered (byte by byte), ``b""`` at end of input.

    Unbuffered so that nothing typed after the answer is swallowed before
    :func:`stdin_reader` takes over the same descriptor.
    """
    out = bytearray()
    while True:
        b = os.read(fd, 1)
        if not b:
            return bytes(out)
        out += b
        if b == b"\n":
            return bytes(out)


def _ask_line(prompt: str, readline: Callable[[], bytes], err: TextIO) -> str | None:
    err.write(prompt)
    err.flush()
    raw = readline()
    if not raw:
        return None
    return raw.decode("utf-8", "replace").strip()


def resolve_args(
    args: argparse.Namespace, readline: Callable[[], bytes], err: TextIO, interactive: bool
) -> argparse.Namespace:
    """Ask for a missing name or port: prompt on *err*, answer from *readline* (``b""`` at EOF).

    On a terminal (*interactive*) an empty or invalid answer (a ``/command`` for the name) is asked again;
    otherwise it raises :class:`UsageFailure`, as does end of input.
    """
    while not args.name:
        answer = _ask_line("name: ", readline, err)
        if answer is None:
            raise UsageFailure("a name is needed (--name)")
        if answer.startswith("/") and not interactive:
            raise UsageFailure("a name is needed (--name); the first line of input is a command")
        if answer.startswith("/"):
            err.write("a name first (log in once connected: --password, or /login NICK PASSWORD)\n")
        elif answer:
            args.name = answer
        elif not interactive:
            raise UsageFailure("a name is needed (--name)")
    while args.port is None:
        answer = _ask_line("port: ", readline, err)
        if answer is None:
            raise UsageFailure("a port is needed (--port)")
        try:
            args.port = parse_port(answer)
        except ValueError:
            if not interactive:
                raise UsageFailure(f"invalid port: {answer!r}") from None
            err.write("a port is an integer from 1 to 65535\n")
    return args


def resolve_password(
    given: str | None, env: dict[str, str], tty: bool, ask: Callable[[str], str] = getpass.getpass
) -> str | None:
    """The password to log in with: *given* (``--password VALUE``), else ``env[PASSWORD_ENV]``; ``""``
    (``--password`` alone) takes ``env[PASSWORD_ENV]`` when set, else asks with *ask* (no echo) on a
    terminal. None: no login.

    Raises :class:`UsageFailure` when it must be asked for but stdin is no terminal, or the answer is empty
    or holds a space (the server's passwords have none). The password is never printed.
    """
    password = given if given else None
    if password is None:
        password = env.get(PASSWORD_ENV) or None
    if password is None and given == "":
        if not tty:
            raise UsageFailure(f"--password without a value needs a terminal; give ${PASSWORD_ENV} instead")
        password = ask("password: ")
        if not password:
            raise UsageFailure("a password is needed (--password)")
    if password is not None and any(c.isspace() for c in password):
        raise UsageFailure("a password has no spaces")
    return password


def make_folders(args: argparse.Namespace) -> None:
    """Create ``--send-dir`` and ``--received-dir`` if missing; raises :class:`UsageFailure` naming the option
    when one cannot be (a file has its name, a parent is not writable...)."""
    for option, folder in (("--send-dir", args.send_dir), ("--received-dir", args.received_dir)):
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            why = "a file has that name" if isinstance(exc, FileExistsError) else exc.strerror or exc
            raise UsageFailure(f"{option} {folder}: cannot make that folder: {why}") from None


def connect(host: str, port: int) -> socket.socket:
    """A connected TCP socket with ``TCP_NODELAY``; raises OSError."""
    sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def dial(args: argparse.Namespace) -> Transport:
    """A new connection to ``args.host``:``args.port``, over TLS when asked (trust checked as
    :func:`~chatroom.client.trust.open_tls` says). Raises OSError, ``ssl.SSLError``, TrustRefused, ValueError."""
    if args.tls or args.ca or args.fingerprint:
        return open_tls(functools.partial(connect, args.host, args.port), args.host, args.port, ca=args.ca,
                        pin=args.fingerprint, err=sys.stderr)
    return connect(args.host, args.port)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``chatroom-client``; returns the exit status (see the module docstring)."""
    try:
        args = parse_with_config(argv)
    except ConfigError as exc:
        print(f"chatroom-client: {exc}", file=sys.stderr)
        return 2
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    stdin_fd = sys.stdin.fileno()
    try:
        resolve_args(args, functools.partial(read_line_fd, stdin_fd), sys.stderr, interactive=tty)
        args.password = resolve_password(args.password, dict(os.environ), tty)
        args.server_password = args.server_password or os.environ.get(SERVER_PASSWORD_ENV) or None
        if args.accept_files is None:
            args.accept_files = "ask" if tty else "all"
        make_folders(args)
    except UsageFailure as exc:
        print(f"chatroom-client: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, EOFError):
        return 130
    try:
        sock = dial(args)
    except (TrustRefused, ValueError) as exc:
        print(f"chatroom-client: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        reason = getattr(exc, "reason", None) or exc.strerror or exc
        if getattr(exc, "library", None) == "SSL":  # an ssl.SSLError: TCP worked, TLS did not
            reason = f"no TLS handshake ({reason}); is {args.port} the server's TLS port?"
        print(f"chatroom-client: cannot connect to {args.host}:{args.port}: {reason}", file=sys.stderr)
        return 1
    reconnect = tty if args.reconnect is None else args.reconnect
    args.connect = functools.partial(dial, args) if reconnect else None
    if tty:
        from chatroom.client.tui import run_tui

        return run_tui(args, sock)
    return run_line_mode(args, sock, stdin_fd)


if __name__ == "__main__":
    sys.exit(main())
