"""``chatroom-server``: command-line entry point for :class:`chatroom.server.Server`."""

from __future__ import annotations

import argparse
import logging
import os
import re
import socket
import sys
import tomllib
from pathlib import Path
from typing import Any

from chatroom import __version__
from chatroom.logs import setup_logging
from chatroom.plugins import PluginHost
from chatroom.relay import tune_malloc
from chatroom.server import DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_QUEUE, Server

DISABLE_ENV = "CHATROOM_DISABLE_PLUGINS"
CONFIG_ENV = "CHATROOM_CONFIG"
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``"1GiB"``, ``"500M"``, ``"65536"`` -> bytes (``int``); k/M/G/T are powers of 1024.

    Raises argparse.ArgumentTypeError for anything else.
    """
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 65536, 500M, 1GiB)")
    number, unit, _ = match.groups()
    return int(float(number) * 1024 ** " kmgt".index(unit.lower() or " "))


def build_parser() -> argparse.ArgumentParser:
    """The ``chatroom-server`` argument parser (sizes parsed by :func:`parse_size`)."""
    parser = argparse.ArgumentParser(
        prog="chatroom-server",
        description="Run a chat room: one event loop for every client; commands are plugins.",
    )
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1; 0.0.0.0 serves the LAN)")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default 0: the kernel picks a free one)")
    parser.add_argument("--data-dir", type=Path, default=Path("chatroom-data"),
                        help="folder for the log and plugin databases (default ./chatroom-data)")
    parser.add_argument("--log-file", type=Path, help="log file (default DATA_DIR/chatroom.log)")
    parser.add_argument("--max-queue", type=parse_size, default=DEFAULT_MAX_QUEUE,
                        help="drop a client whose unsent output passes this size (default 8MiB)")
    parser.add_argument("--max-file-size", type=parse_size, default=DEFAULT_MAX_FILE_SIZE,
                        help="largest file /sendfile relays (default 1GiB)")
    parser.add_argument("--plugin-dir", type=Path, action="append", default=[],
                        help="load every .py file in this folder as a plugin (repeatable)")
    parser.add_argument("--disable-plugin", action="append", default=[], metavar="NAME",
                        help=f"do not load plugin NAME (repeatable; also ${DISABLE_ENV}=a,b)")
    parser.add_argument("--no-plugins", action="store_true", help="load the built-in plugins only")
    parser.add_argument("--list-plugins", action="store_true", help="list the plugins that would load, and exit")
    parser.add_argument("--config", type=Path, default=os.environ.get(CONFIG_ENV) or None, metavar="FILE",
                        help=f"TOML file whose [plugins.NAME] tables configure plugins (ctx.config); "
                             f"default ${CONFIG_ENV}")
    parser.add_argument("--plugin-fault-limit", type=int, default=5, metavar="N",
                        help="disable a plugin after N faults (default 5)")
    parser.add_argument("--slow-hook-ms", type=float, default=100.0, metavar="MS",
                        help="log a warning when a plugin blocks the loop longer than MS (default 100)")
    parser.add_argument("--quiet", action="store_true", help="log to the log file only, not stderr")
    parser.add_argument("--version", action="version", version=f"chatroom {__version__}")
    return parser


def read_config(path: Path | None) -> dict[str, dict[str, Any]]:
    """Plugin name -> settings from the ``[plugins.NAME]`` tables of the TOML file *path*.

    ``None`` gives ``{}``. Raises ValueError (with the file name and reason)
    if the file cannot be read, is not TOML, or ``plugins`` or one of its
    entries is not a table.
    """
    if path is None:
        return {}
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read config file {path}: {exc}") from None
    plugins = data.get("plugins", {})
    if not isinstance(plugins, dict):
        raise ValueError(f"{path}: 'plugins' must be a table of [plugins.NAME] tables")
    for name, table in plugins.items():
        if not isinstance(table, dict):
            raise ValueError(f"{path}: plugins.{name} must be a table, like [plugins.{name}]")
    return plugins


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


def main(argv: list[str] | None = None) -> int:
    """Run ``chatroom-server`` with *argv* (default ``sys.argv[1:]``); returns the exit status.

    Prints ``chatroom-server listening on HOST:PORT`` first (flushed), serves
    until SIGINT/SIGTERM and returns 0; 1 if the address cannot be bound;
    2 for bad arguments or configuration (from argparse).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = read_config(args.config)
    except ValueError as exc:
        parser.error(str(exc))
    log_file = args.log_file or args.data_dir / "chatroom.log"
    if args.list_plugins:  # only problems on stderr: stdout is the listing
        setup_logging(None, stderr=True, level=logging.WARNING)
    else:
        setup_logging(log_file, stderr=not args.quiet)
    plugins = load_plugins(args, config)
    if args.list_plugins:
        from chatroom.builtin.core import describe_plugins

        for line in describe_plugins(plugins.info.values()):
            print(line[2:])
        return 0
    try:
        server = Server(args.host, args.port, data_dir=args.data_dir, max_queue=args.max_queue,
                        max_file_size=args.max_file_size, plugins=plugins)
    except OSError as exc:
        logging.getLogger("chatroom").error("cannot listen on %s:%d: %s", args.host, args.port, exc)
        print(f"chatroom-server: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    host, port = server.address
    print(f"chatroom-server listening on {host}:{port}", flush=True)
    if args.host in ("0.0.0.0", "", "::"):
        for address in lan_addresses():
            print(f"chatroom-server LAN address {address}:{port}", flush=True)
    tune_malloc()  # reuse chunk buffers instead of faulting them in again (see relay.tune_malloc)
    server.install_signal_handlers()
    server.serve_forever()
    return 0


def lan_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses, as far as its host name resolves."""
    try:
        _, _, addrs = socket.gethostbyname_ex(socket.gethostname())
    except OSError:
        return []
    return sorted(a for a in set(addrs) if not a.startswith("127."))


if __name__ == "__main__":
    sys.exit(main())
