"""``chatroom-server``: command-line entry point for :class:`chatroom.server.app.Server`.

Start-up order, so that every mistake a new user can make ends in one line
on stderr (``chatroom-server: error: ...``) and exit status 2 before
anything listens: the arguments are parsed and range-checked (a port is
0-65535, rates and timeouts are finite and not negative); the data folder is
created if needed and a file is written and removed in it; every existing
plugin store ``DATA_DIR/plugins/*.sqlite3`` is opened read-write and checked
with ``PRAGMA quick_check`` (about 0.1 s per 50 MB); the log file is opened.
Only then are the plugins loaded and the socket bound. A socket that cannot be
bound (address in use, unknown host) is one line and exit status 1.

Output on stdout, flushed: first ``chatroom-server listening on HOST:PORT``
(an IPv6 host in brackets: ``[::1]:PORT``), then, for a wildcard host
(``0.0.0.0``, ``::`` or empty), one ``chatroom-server LAN address ADDR:PORT``
line per address of this machine that other machines can use (see
:func:`lan_addresses`).
"""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import socket
import sys
import tomllib
from pathlib import Path
from typing import Any, NoReturn

from chatroom import __version__
from chatroom.server.addresses import lan_addresses, parse_if_inet6  # noqa: F401 - parse_if_inet6 re-exported
from chatroom.net.logs import setup_logging
from chatroom.model.accounts import console_reset
from chatroom.plugins.manager import PluginHost
from chatroom.net.relay import tune_malloc
from chatroom.server.reload import PluginReloader
from chatroom.model.history import MAX_UNSAVED
from chatroom.server.app import DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_QUEUE, Server
from chatroom.server.checks import StartupError, check_data_dir, check_store, check_stores  # noqa: F401
from chatroom.server.options import (  # noqa: F401 - re-exported for callers and tests
    history_keep,
    history_lines,
    non_negative_float,
    non_negative_int,
    parse_port,
    parse_size,
    positive_float,
    room_name,
    web_port,
)
from chatroom.net.tls import load_tls

DISABLE_ENV = "CHATROOM_DISABLE_PLUGINS"
CONFIG_ENV = "CHATROOM_CONFIG"
def positive_int(text: str) -> int:
    """``"3"`` -> 3: an int of at least 1; raises argparse.ArgumentTypeError otherwise."""
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, ``PROG: error: MESSAGE``, and exit status 2."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


#: Flood-control and connection-limit options -> Server keyword argument.
SERVER_LIMITS = {
    "flood_rate": "flood_rate",
    "flood_burst": "flood_burst",
    "flood_kill": "flood_kill",
    "idle_timeout": "partial_timeout",
    "max_per_address": "max_per_address",
    "announce_limit": "announce_limit",
}


def build_parser() -> argparse.ArgumentParser:
    """The ``chatroom-server`` argument parser (sizes parsed by :func:`parse_size`).

    A usage error prints one line on stderr and exits with status 2.
    """
    parser = _Parser(
        prog="chatroom-server",
        description="Run a chat room: one event loop for every client; commands are plugins.",
    )
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1; 0.0.0.0 serves the LAN over IPv4, "
                             ":: over IPv6, ::1 is the IPv6 loopback)")
    parser.add_argument("--port", type=parse_port, default=0,
                        help="TCP port, 0-65535 (default 0: the kernel picks a free one)")
    parser.add_argument("--data-dir", type=Path, default=Path("chatroom-data"),
                        help="folder for the log and plugin databases (default ./chatroom-data)")
    parser.add_argument("--log-file", type=Path, help="log file (default DATA_DIR/chatroom.log)")
    parser.add_argument("--max-queue", type=parse_size, default=DEFAULT_MAX_QUEUE,
                        help="drop a client whose unsent output passes this size (default 8MiB)")
    parser.add_argument("--max-file-size", type=parse_size, default=DEFAULT_MAX_FILE_SIZE,
                        help="largest file /sendfile relays (default 1GiB)")
    parser.add_argument("--quota-files-per-hour", type=non_negative_int, default=0, metavar="N",
                        help="files one sender (account, else address) may offer per hour (default 0: unlimited)")
    parser.add_argument("--quota-bytes-per-day", type=parse_size, default=0, metavar="SIZE",
                        help="bytes one sender may offer per day, e.g. 2GiB (default 0: unlimited)")
    parser.add_argument("--file-offer-timeout", type=positive_float, default=60.0, metavar="S",
                        help="seconds a receiver that asks for consent (/files ask) has to /accept or /decline "
                             "an offer before it counts as declined (default 60)")
    parser.add_argument("--plugin-dir", type=Path, action="append", default=[],
                        help="load every .py file in this folder as a plugin (repeatable)")
    parser.add_argument("--disable-plugin", action="append", default=[], metavar="NAME",
                        help=f"do not load plugin NAME (repeatable; also ${DISABLE_ENV}=a,b)")
    parser.add_argument("--reload", action="store_true",
                        help="with --plugin-dir: reload a plugin file when it changes (the old version keeps "
                             "running if the new one fails to load); for developing plugins")
    parser.add_argument("--no-plugins", action="store_true", help="load the built-in plugins only")
    parser.add_argument("--list-plugins", action="store_true", help="list the plugins that would load, and exit")
    parser.add_argument("--config", type=Path, default=os.environ.get(CONFIG_ENV) or None, metavar="FILE",
                        help=f"TOML file: admins = [ACCOUNT, ...] (moderate every room, /plugins enable|disable), "
                             f"and [plugins.NAME] tables that configure plugins (ctx.config); "
                             f"default ${CONFIG_ENV}")
    parser.add_argument("--check-config", type=Path, metavar="FILE",
                        help="check FILE (a --config file) against every loaded plugin's declared settings, "
                             "print each problem, and exit (0: valid, 1: problems, 2: unreadable)")
    parser.add_argument("--ready-grace", type=float, default=5.0, metavar="S",
                        help="seconds after which a member that never named itself counts as ready for the "
                             "member_ready hook (default 5)")
    parser.add_argument("--plugin-fault-limit", type=int, default=5, metavar="N",
                        help="disable a plugin after N faults (default 5)")
    parser.add_argument("--slow-hook-ms", type=float, default=100.0, metavar="MS",
                        help="log a warning when a plugin blocks the loop longer than MS (default 100)")
    limits = parser.add_argument_group("flood control and connection limits")
    limits.add_argument("--flood-rate", type=non_negative_float, default=25.0, metavar="R",
                        help="token bucket per connection: R tokens per second (a chat line costs 1, "
                             "an unknown command or /who in a big room more); a client out of tokens is "
                             "read no further until they refill (default 25; 0 disables flood control)")
    limits.add_argument("--flood-burst", type=positive_float, default=250.0, metavar="B",
                        help="bucket size: tokens a client may spend at once (default 250)")
    limits.add_argument("--flood-kill", type=non_negative_float, default=30.0, metavar="S",
                        help="disconnect with 'ERROR excess flood' a client throttled for S seconds "
                             "in a row (default 30; 0: never)")
    limits.add_argument("--idle-timeout", type=positive_float, default=60.0, metavar="S",
                        help="close a connection that holds an unfinished line or frame for S seconds "
                             "(default 60)")
    limits.add_argument("--max-per-address", type=non_negative_int, default=64, metavar="N",
                        help="connections allowed from one IP address (default 64, generous for a LAN "
                             "behind one NAT; 0: unlimited)")
    limits.add_argument("--announce-limit", type=non_negative_int, default=200, metavar="N",
                        help="a room with more than N members does not announce joins and leaves "
                             "(default 200; 0: always announce)")
    rooms = parser.add_argument_group("rooms and history")
    rooms.add_argument("--default-room", type=room_name, default="#lobby", metavar="#ROOM",
                       help="the room everyone starts in (default #lobby)")
    rooms.add_argument("--history-on-join", type=history_lines, default=20, metavar="N",
                       help="lines of a room's history sent to a member who joins it (0-500, default 20; 0: none)")
    rooms.add_argument("--no-history", action="store_true",
                       help="do not record what is said in rooms (rooms and topics still persist)")
    rooms.add_argument("--history-max-unsaved", type=positive_int, default=MAX_UNSAVED, metavar="N",
                       help=f"lines kept in memory while the history store fails; past N a speaker is refused "
                            f"(default {MAX_UNSAVED})")
    rooms.add_argument("--history-keep", type=history_keep, default=(None, None), metavar="SPEC",
                       help="retention of the room history: LINES per room, DAYS with a d (30d), or both "
                            "(100000,30d); default: keep everything")
    tls = parser.add_argument_group(
        "TLS", "TLS on the main port (--tls, or --tls-cert and --tls-key), or beside the clear one: --port 5000 "
               "--tls-port 5001 (same rooms). The certificate's SHA-256 fingerprint is printed at start-up")
    tls.add_argument("--tls", action="store_true",
                     help="speak TLS with a self-signed certificate made in the data dir on first run "
                          "(tls-cert.pem, tls-key.pem) and reused after")
    tls.add_argument("--tls-cert", type=Path, metavar="FILE", help="PEM certificate (chain) to serve; needs --tls-key")
    tls.add_argument("--tls-key", type=Path, metavar="FILE", help="PEM private key of --tls-cert")
    tls.add_argument("--tls-port", type=parse_port, metavar="PORT",
                     help="serve TLS on PORT beside the clear --port (0: the kernel picks); implies --tls "
                          "unless --tls-cert is given")
    tls.add_argument("--tls-handshake-timeout", type=positive_float, default=10.0, metavar="S",
                     help="close a connection that has not finished its TLS handshake after S seconds (default 10)")
    web = parser.add_argument_group(
        "web client", "the page and its WebSocket on a port of their own, same rooms (docs/protocol.md, "
                      "\"WebSocket and JSON events\"); the URL to open is printed at start-up")
    web.add_argument("--web-port", type=web_port, default=0, metavar="PORT",
                     help="serve the browser client on PORT (default 0: on, on a port the kernel picks, like "
                          "--port, so a fresh server always prints a URL to open; give a fixed PORT for pages to "
                          "reconnect to after a restart; 'off': no web listener); HTTPS/WSS with TLS")
    web.add_argument("--web-origin", action="append", default=[], metavar="ORIGIN",
                     help="also accept WebSockets from pages of ORIGIN (https://chat.example.org; repeatable; "
                          "'*': any); by default only the server's own page may connect")
    web.add_argument("--web-static", type=Path, metavar="DIR",
                     help="serve the page's files from DIR instead of the installed ones (to work on the page)")
    web.add_argument("--web-request-timeout", type=positive_float, default=10.0, metavar="S",
                     help="close an HTTP connection whose request is not complete S seconds after it began "
                          "(408; default 10)")
    parser.add_argument("--password-file", type=Path, metavar="FILE",
                        help="a shared server password (the first line of FILE): every connection, clear or TLS, "
                             "must send /pass PASSWORD before anything else")
    parser.add_argument("--reset-password", metavar="NICK",
                        help="set the password of the account NICK (asked twice without echo; one line of stdin "
                             "when it is not a terminal), then exit")
    parser.add_argument("--quiet", action="store_true", help="log to the log file only, not stderr")
    parser.add_argument("--version", action="version", version=f"chatroom {__version__}")
    return parser


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read config file {path}: {exc}") from None


#: The top-level keys of a ``--config`` file.
CONFIG_KEYS = ["admins", "plugins"]


def read_config(path: Path | None) -> dict[str, dict[str, Any]]:
    """Plugin name -> settings from the ``[plugins.NAME]`` tables of the TOML file *path*.

    ``None`` gives ``{}``. Raises ValueError (with the file name and reason)
    if the file cannot be read, is not TOML, or ``plugins`` or one of its
    entries is not a table, or ``admins`` is not a list of names.
    """
    if path is None:
        return {}
    data = _load_toml(path)
    read_admins(path, data)
    for key in data:
        if key not in CONFIG_KEYS:
            close = difflib.get_close_matches(key, CONFIG_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(CONFIG_KEYS)})"
            raise ValueError(f"{path}: unknown top-level key {key!r}{hint}")
    plugins = data.get("plugins", {})
    if not isinstance(plugins, dict):
        raise ValueError(f"{path}: 'plugins' must be a table of [plugins.NAME] tables")
    for name, table in plugins.items():
        if not isinstance(table, dict):
            raise ValueError(f"{path}: plugins.{name} must be a table, like [plugins.{name}]")
    return plugins


def read_admins(path: Path | None, data: dict[str, Any] | None = None) -> list[str]:
    """The account names in the top-level ``admins = [...]`` of the TOML file *path* (``[]`` without one).

    Raises ValueError if the file cannot be read or ``admins`` is not a list of strings.
    """
    if path is None:
        return []
    admins = (data if data is not None else _load_toml(path)).get("admins", [])
    if not isinstance(admins, list) or not all(isinstance(a, str) for a in admins):
        raise ValueError(f"{path}: 'admins' must be a list of account names, like admins = [\"alice\"]")
    return admins


def load_plugins(args: argparse.Namespace, config: dict[str, dict[str, Any]] | None = None) -> PluginHost:
    """Build the plugin manager the options ask for: built-ins, entry points, plugin folders."""
    disabled = set(args.disable_plugin)
    disabled.update(n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip())
    host = PluginHost(disabled=disabled, config=config, fault_limit=args.plugin_fault_limit,
                      slow_seconds=args.slow_hook_ms / 1000)
    host.load_builtins()
    if not args.no_plugins:
        host.load_entry_points()
        for folder in args.plugin_dir:
            host.load_dir(folder)
    host.finish_loading()
    return host


def check_config(args: argparse.Namespace) -> int:
    """``--check-config FILE``: load the plugins as the server would, check FILE's tables, print, exit status."""
    path = args.check_config
    try:
        config = read_config(path)
        setup_logging(None, stderr=False, level=logging.CRITICAL)  # problems are printed below, once
    except ValueError as exc:
        return _fail(2, str(exc))
    plugins = load_plugins(args, config)
    problems = plugins.load_errors  # the settings' problems, and plugins that failed to load
    for problem in problems:
        print(f"{path}: {problem}")
    for name, schema in sorted(plugins.schemas.items()):
        if not problems:
            for key, setting in schema.items():
                value = plugins.config_for(name).get(key)
                print(f"[plugins.{name}] {key} = {value!r}" + (f"  # {setting.help}" if setting.help else ""))
    if problems:
        return 1
    print(f"{path}: valid ({len(config)} plugin table{'s' if len(config) != 1 else ''})")
    return 0


def limit_options(args: argparse.Namespace) -> dict[str, Any]:
    """The flood-control, limit and room options as Server keyword arguments (see :data:`SERVER_LIMITS`)."""
    options = {kw: getattr(args, opt) for opt, kw in SERVER_LIMITS.items()}
    options.update(default_room=args.default_room, history_on_join=args.history_on_join,
                   history_keep_lines=args.history_keep[0], history_keep_days=args.history_keep[1],
                   record_history=not args.no_history, history_max_unsaved=args.history_max_unsaved)
    return options


def web_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The web listener's options as Server's ``web`` argument (None for ``--web-port off``)."""
    if args.web_port is None:
        return None
    return dict(port=args.web_port, origins=args.web_origin, static=args.web_static,
                request_timeout=args.web_request_timeout)


def web_urls(server: Server, host: str, tls: bool) -> list[str]:
    """The URLs of the web client to print: the bound address (the loopback one for a wildcard host), then each
    LAN address for a wildcard host; none without a web listener."""
    if server.web_address is None:
        return []
    port, scheme = server.web_address[1], "https" if tls else "http"
    wildcard = host in ("0.0.0.0", "", "::")
    first = ("::1" if host == "::" else "127.0.0.1") if wildcard else server.web_address[0]
    lan = lan_addresses(socket.AF_INET6 if host == "::" else socket.AF_INET) if wildcard else []
    return [f"{scheme}://{format_address(a, port)}/" for a in [first, *lan]]


def read_password_file(path: Path) -> str:
    """The server password: the first line of the file *path*, stripped.

    Raises ValueError (naming the file, never the password) if it cannot be read or that line is empty.
    """
    try:
        with open(path, encoding="utf-8") as f:
            password = f.readline().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read --password-file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not password:
        raise ValueError(f"--password-file {path} is empty: its first line is the server password")
    return password


def _fail(status: int, message: str) -> int:
    """Print ``chatroom-server: error: MESSAGE`` once on stderr, log it to the log file only; return *status*."""
    print(f"chatroom-server: error: {message}", file=sys.stderr, flush=True)
    logger = logging.getLogger("chatroom")
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, message, None, None)
    record.category = "ERROR"
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
    return status


def format_address(host: str, port: int) -> str:
    """``HOST:PORT``, with an IPv6 host in brackets: ``[::1]:5000``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def main(argv: list[str] | None = None) -> int:
    """Run ``chatroom-server`` with *argv* (default ``sys.argv[1:]``); returns the exit status.

    Prints ``chatroom-server listening on HOST:PORT`` first (flushed), serves
    until SIGINT/SIGTERM and returns 0; 1 if the address cannot be bound;
    2 for bad arguments, configuration, data dir, password file, log file or plugin store
    (one line on stderr each; see the module docstring).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.reload and not args.plugin_dir:
        parser.error("--reload needs --plugin-dir DIR (the folder of plugin files to watch)")
    if args.no_plugins and args.plugin_dir:
        print(f"chatroom-server: warning: --no-plugins: not loading the --plugin-dir folder "
              f"{', '.join(map(str, args.plugin_dir))}", file=sys.stderr, flush=True)
        args.reload = False
    if args.check_config is not None:
        return check_config(args)
    try:
        config = read_config(args.config)
    except ValueError as exc:
        parser.error(str(exc))
    log_file = args.log_file or args.data_dir / "chatroom.log"
    if args.reset_password is not None:  # exit 0 (OK printed), 1 (no such account), 2 (refused password)
        status, line = console_reset(args.data_dir / "accounts.sqlite3", args.reset_password)
        if status:
            return _fail(status, line)
        print(line, flush=True)
        return 0
    tls, tls_fingerprint, server_password = None, "", None
    if not args.list_plugins:  # --list-plugins starts no server and creates nothing
        try:
            check_data_dir(args.data_dir)
            check_stores(args.data_dir)
            if args.password_file is not None:
                server_password = read_password_file(args.password_file)
            if args.tls or args.tls_cert or args.tls_key or args.tls_port is not None:
                tls, tls_fingerprint = load_tls(args.data_dir, args.host, args.tls_cert, args.tls_key)
        except (StartupError, ValueError) as exc:
            return _fail(2, str(exc))
    try:
        if args.list_plugins:  # only problems on stderr: stdout is the listing
            setup_logging(None, stderr=True, level=logging.WARNING)
        else:
            setup_logging(log_file, stderr=not args.quiet)
    except OSError as exc:
        return _fail(2, f"cannot open log file {log_file}: {exc.strerror or exc}")
    plugins = load_plugins(args, config)
    if plugins.config_errors:
        return _fail(2, "; ".join(plugins.config_errors) + f" (check it with --check-config {args.config})")
    if args.list_plugins:
        from chatroom.builtin.core import describe_plugins

        for line in describe_plugins(plugins.info.values()):
            print(line[2:])
        return 0
    try:
        server = Server(args.host, args.port, data_dir=args.data_dir, max_queue=args.max_queue,
                        max_file_size=args.max_file_size, plugins=plugins, tls=tls, tls_port=args.tls_port,
                        tls_handshake_timeout=args.tls_handshake_timeout,
                        file_offer_timeout=args.file_offer_timeout, quota_files_per_hour=args.quota_files_per_hour,
                        quota_bytes_per_day=args.quota_bytes_per_day,
                        admins=read_admins(args.config), server_password=server_password,
                        ready_grace=args.ready_grace, web=web_options(args), **limit_options(args))
    except OSError as exc:
        reason = str(exc.strerror or exc).split(" (while attempting")[0]  # socket.create_server repeats the address
        return _fail(1, f"cannot listen on {format_address(args.host, args.port)}: {reason}")
    host, port = server.address[:2]
    server.install_signal_handlers()  # before the first line: a SIGTERM right after it stops cleanly
    print(f"chatroom-server listening on {format_address(host, port)}", flush=True)
    if server.tls_address is not None:
        print(f"chatroom-server TLS on {format_address(*server.tls_address)} fingerprint {tls_fingerprint}", flush=True)
    if args.host in ("0.0.0.0", "", "::"):
        family = socket.AF_INET6 if args.host == "::" else socket.AF_INET
        for address in lan_addresses(family):
            print(f"chatroom-server LAN address {format_address(address, port)}", flush=True)
    for url in web_urls(server, args.host, tls is not None):
        print(f"chatroom-server web {url}", flush=True)
    tune_malloc()  # reuse chunk buffers instead of faulting them in again (see relay.tune_malloc)
    reloader = PluginReloader(server, args.plugin_dir) if args.reload else None
    if reloader is not None:
        reloader.start()
    try:
        server.serve_forever()
    finally:
        if reloader is not None:
            reloader.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
