"""``chatroom-server``: command-line entry point for :class:`chatroom.server.app.Server`.

Start-up order, so that every mistake a new user can make ends in one line
on stderr (``chatroom-server: error: ...``) and exit status 2 before any
plugin is loaded: the arguments are parsed and range-checked where they are
parsed (each flag of :class:`~chatroom.server.options.ServerOptions` with its
field's bounds); the config file is read; the data folder is created if
needed and a file is written and removed in it; the log file is opened; then
:func:`chatroom.server.claim.take` locks the data dir (a second server on it
is refused, naming the holder's PID and port), loads the TLS certificate and
binds every port (in use, not an address of this machine, a host that does
not resolve); every existing store ``DATA_DIR/*.sqlite3`` and
``DATA_DIR/plugins/*.sqlite3`` is opened read-write and checked with
``PRAGMA quick_check`` (about 0.1 s per 50 MB). Only then are the plugins
loaded (their ``loaded plugin`` lines go to the log file, and to the console
only with ``-v``) and the server built on what was bound.

Output on stdout, flushed: first ``chatroom-server listening on HOST:PORT``
(an IPv6 host in brackets: ``[::1]:PORT``), then, for a wildcard host
(``0.0.0.0``, ``::`` or empty), one ``chatroom-server LAN address ADDR:PORT``
line per address of this machine that other machines can use (see
:func:`lan_addresses`; with ``--tls-port`` the same for that port, marked ``(TLS)``), the web URLs, the
IRC addresses (``chatroom-server IRC on HOST:PORT``, ``IRC TLS on``: the bound one, then each LAN address
for a wildcard host), and last one line for each port taken
from the data dir's memory (``reusing port 5000, ...`` or ``... is taken:
using 41234 instead ...``; see :mod:`chatroom.server.claim`).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import logging
import os
import socket
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chatroom.server.addresses import lan_addresses, parse_if_inet6  # noqa: F401 - parse_if_inet6 re-exported
from chatroom.net.logs import setup_logging
from chatroom.model.accounts import console_reset
from chatroom.plugins.manager import PluginHost
from chatroom.net.relay import tune_malloc
from chatroom.server.reload import PluginReloader
from chatroom.server.scale import preflight
from chatroom.server.app import Server, plugin_host
from chatroom.server.checks import (  # noqa: F401
    FEW_SOCKETS, OWN_DESCRIPTORS, StartupError, check_data_dir, check_store, check_stores, raise_descriptor_limit,
)
from chatroom.server.claim import format_address, take
from chatroom.server.flags import CONFIG_ENV, DISABLE_ENV, build_parser  # noqa: F401 - re-exported
from chatroom.server.options import (  # noqa: F401 - re-exported for callers and tests
    ServerOptions,
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


def load_plugins(args: argparse.Namespace, config: dict[str, dict[str, Any]] | None = None,
                 options: ServerOptions | None = None) -> PluginHost:
    """Build the plugin manager the flags ask for: built-ins, entry points, plugin folders; its fault
    limits from *options* (default: from *args*)."""
    disabled = set(args.disable_plugin)
    disabled.update(n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip())
    host = plugin_host(options or ServerOptions.from_args(args), disabled=disabled, config=config)
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
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, message, (), None)
    record.category = "ERROR"
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
    return status


@contextlib.contextmanager
def _console_at(level: int) -> Iterator[None]:
    """Within the block, the ``chatroom`` logger's console handlers (not its log file) show only *level* and up."""
    handlers = [h for h in logging.getLogger("chatroom").handlers
                if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
    levels = [h.level for h in handlers]
    for handler in handlers:
        handler.setLevel(max(level, handler.level))
    try:
        yield
    finally:
        for handler, old in zip(handlers, levels):
            handler.setLevel(old)


def main(argv: list[str] | None = None) -> int:
    """Run ``chatroom-server`` with *argv* (default ``sys.argv[1:]``); returns the exit status.

    Prints ``chatroom-server listening on HOST:PORT`` first (flushed), serves
    until SIGINT/SIGTERM and returns 0; 2 for bad arguments, configuration, data dir (another server's too),
    password file, log file, plugin store, a --plugin-dir that is no folder, TLS certificate, or an address
    that cannot be bound (one line on
    stderr each, before any plugin is loaded; see the module docstring); 130 for Ctrl-C during start-up.
    """
    try:
        return _main(argv)
    except KeyboardInterrupt:  # before the loop's signal handlers are installed: no traceback
        print("chatroom-server: interrupted", file=sys.stderr, flush=True)
        return 130


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.reload and not args.plugin_dir:
        parser.error("--reload needs --plugin-dir DIR (the folder of plugin files to watch)")
    if args.no_plugins and args.plugin_dir:
        print(f"chatroom-server: warning: --no-plugins: not loading the --plugin-dir folder "
              f"{', '.join(map(str, args.plugin_dir))}", file=sys.stderr, flush=True)
        args.reload = False
    elif missing := [str(folder) for folder in args.plugin_dir if not os.path.isdir(folder)]:
        parser.error(f"--plugin-dir {missing[0]}: not a folder")
    if args.check_config is not None:
        return check_config(args)
    try:
        config = read_config(args.config)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        options = ServerOptions.from_args(args, admins=read_admins(args.config))
    except ValueError as exc:  # what the flags cannot check alone (--tls-cert without --tls-key...)
        return _fail(2, str(exc))
    log_file = args.log_file or options.data_dir / "chatroom.log"
    if args.reset_password is not None:  # exit 0 (OK printed), 2 (no such account, refused password)
        status, line = console_reset(options.data_dir / "accounts.sqlite3", args.reset_password)
        if status:
            return _fail(status, line)
        print(line, flush=True)
        return 0
    if args.list_plugins:  # starts no server and creates nothing; only problems on stderr: stdout is the listing
        from chatroom.builtin.core import describe_plugins

        setup_logging(None, stderr=True, level=logging.WARNING)
        for line in describe_plugins(load_plugins(args, config, options).info.values()):
            print(line[2:])
        return 0
    try:
        check_data_dir(options.data_dir)
        if args.password_file is not None:
            options = options.replace(server_password=read_password_file(args.password_file))
    except (StartupError, ValueError) as exc:
        return _fail(2, str(exc))
    try:
        setup_logging(log_file, stderr=not args.quiet)
    except OSError as exc:
        return _fail(2, f"cannot open log file {log_file}: {exc.strerror or exc}")
    try:
        claim = take(options)  # the data dir's lock, TLS, every port: before any plugin is loaded
    except StartupError as exc:
        return _fail(2, str(exc))
    _descriptors()
    try:
        check_stores(options.data_dir)
        for warning in preflight(options):  # --redis: reachable, and set up not to lose chat
            logging.getLogger("chatroom.server").warning("%s", warning)
        with _console_at(logging.INFO if args.verbose else logging.WARNING):
            plugins = load_plugins(args, config, options)
        if plugins.config_errors:
            raise StartupError("; ".join(plugins.config_errors) + f" (check it with --check-config {args.config})")
        server = Server(options, plugins=plugins, claim=claim)
    except StartupError as exc:
        claim.abandon()
        return _fail(2, str(exc))
    except BaseException:
        claim.abandon()
        raise
    return serve(server, options, args)


def _descriptors() -> None:
    """Raise the descriptor limit (see :func:`raise_descriptor_limit`) and log what it allows."""
    before, now, hard = raise_descriptor_limit()
    log = logging.getLogger("chatroom.server")
    if now != before:
        log.info("file descriptors: soft limit raised from %d to %d (the hard limit is %d)", before, now, hard)
    if now - OWN_DESCRIPTORS < FEW_SOCKETS:
        log.warning("only %d file descriptors (ulimit -n, hard limit %d): about %d connections at once; "
                    "raise the hard limit for more", now, hard, max(0, now - OWN_DESCRIPTORS))


def serve(server: Server, options: ServerOptions, args: argparse.Namespace) -> int:
    """Print the start-up lines (see the module docstring), serve until a signal, return 0."""
    host, port = server.address[:2]
    server.install_signal_handlers()  # before the first line: a SIGTERM right after it stops cleanly
    print(f"chatroom-server listening on {format_address(host, port)}", flush=True)
    if server.tls_address is not None:
        print(f"chatroom-server TLS on {format_address(*server.tls_address)} fingerprint "
              f"{server.claim.tls_fingerprint}", flush=True)
    lan: list[str] = []
    if options.host in ("0.0.0.0", "", "::"):
        lan = lan_addresses(socket.AF_INET6 if options.host == "::" else socket.AF_INET)
        for address in lan:
            print(f"chatroom-server LAN address {format_address(address, port)}", flush=True)
        if server.tls_address is not None and server.tls_address[1] != port:  # --tls-port beside the clear one
            for address in lan:
                print(f"chatroom-server LAN address {format_address(address, server.tls_address[1])} (TLS)",
                      flush=True)
    for url in web_urls(server, options.host, server.claim.tls is not None):
        print(f"chatroom-server web {url}", flush=True)
    for i, irc in enumerate(server.irc_addresses):  # the clear IRC port first, then IRC over TLS
        tls_irc = options.irc_tls_port is not None and (options.irc_port is None or i == 1)
        for address in [irc[0], *lan]:  # the bound address, then the ones LAN machines use
            print(f"chatroom-server IRC{' TLS' if tls_irc else ''} on {format_address(address, irc[1])}", flush=True)
    for note in server.claim.notes:
        print(f"chatroom-server {note}", flush=True)
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
