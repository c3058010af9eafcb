"""``chatroom-server``'s flags: the argument parser.

Each flag that sets a :class:`~chatroom.server.options.ServerOptions` field
has the field's name as its ``dest``, is range-checked where it is parsed
with the field's own bounds (:func:`~chatroom.server.options.option_type`),
and is absent from the namespace unless given, so the field's default is the
only default (:meth:`ServerOptions.from_args`). The other flags say what the
process does around the server: plugins to load, config and log files,
console. A usage error is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, NoReturn

from chatroom import __version__
from chatroom.server.options import history_keep, option_type, room_name, web_port

__all__ = ["CONFIG_ENV", "DISABLE_ENV", "UNSET", "build_parser"]

DISABLE_ENV = "CHATROOM_DISABLE_PLUGINS"
CONFIG_ENV = "CHATROOM_CONFIG"
#: The default of every flag that sets a ServerOptions field: absent, so the field's own default holds.
UNSET = argparse.SUPPRESS


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, ``PROG: error: MESSAGE``, and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


class _WebPort(argparse.Action):
    """``--web-port PORT`` sets ``web_port``; ``--web-port off`` sets ``web`` to False."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if values is None:
            namespace.web = False
        else:
            namespace.web_port = values


def _number(group: Any, flag: str, **kwargs: Any) -> None:
    """Add the flag of a numeric ServerOptions field (``--idle-timeout`` -> ``idle_timeout``), parsed and
    range-checked with the field's bounds; absent, the field's default holds."""
    group.add_argument(flag, type=option_type(flag[2:].replace("-", "_")), default=UNSET, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The ``chatroom-server`` argument parser. Each flag that sets a
    :class:`~chatroom.server.options.ServerOptions` field has the field's name as its ``dest`` and is absent
    from the namespace unless given (:meth:`ServerOptions.from_args` fills in the defaults).

    A usage error prints one line on stderr and exits with status 2.
    """
    parser = _Parser(
        prog="chatroom-server",
        usage="%(prog)s [OPTION]...",
        description="Run a chat room: one event loop for every client; commands are plugins. The address "
                    "to give clients is printed at start-up; every option below has a working default.",
    )
    parser.add_argument("--host", default=UNSET,
                        help="address to bind (default 127.0.0.1; 0.0.0.0 serves the LAN over IPv4, "
                             ":: over IPv6, ::1 is the IPv6 loopback)")
    _number(parser, "--port", metavar="PORT",
            help="TCP port, 0-65535 (default: the port this data dir had last time if it is free, else one "
                 "the kernel picks; 0: always one the kernel picks)")
    parser.add_argument("--data-dir", type=Path, default=UNSET, metavar="DIR",
                        help="folder for the stores, the log and the lock file (default ./chatroom-data); one "
                             "server at a time")
    parser.add_argument("--log-file", type=Path, metavar="FILE", help="log file (default chatroom.log in the --data-dir)")
    files = parser.add_argument_group("file transfer", "files sent with /sendfile, relayed to those who accept")
    _number(files, "--max-file-size", metavar="SIZE", help="largest file /sendfile relays (default 1GiB)")
    _number(files, "--quota-files-per-hour", metavar="N",
            help="files one sender (account, else address) may offer per hour (default 0: unlimited)")
    _number(files, "--quota-bytes-per-day", metavar="SIZE",
            help="bytes one sender may offer per day, e.g. 2GiB (default 0: unlimited)")
    _number(files, "--file-offer-timeout", metavar="S",
            help="seconds a receiver that asks for consent (/files ask) has to /accept or /decline "
                 "an offer before it counts as declined (default 60)")
    _number(files, "--file-stall-timeout", metavar="S",
            help="seconds a receiver may hold a sender back (its queue never draining below 256 KiB) before "
                 "it is dropped from the transfer (default 30)")
    _number(files, "--resume-keep", metavar="TIME",
            help="how long an interrupted transfer waits for both ends to come back and resume it, after its "
                 "last activity: 3600, 90m, 24h, 7d (default 24h, at most 30d)")
    plugins = parser.add_argument_group("plugins", "commands are pluggy plugins: the built-ins, installed "
                                        "packages (entry-point group 'chatroom') and --plugin-dir files")
    plugins.add_argument("--plugin-dir", type=Path, action="append", default=[], metavar="DIR",
                        help="load every .py file in this folder as a plugin (repeatable)")
    plugins.add_argument("--disable-plugin", action="append", default=[], metavar="NAME",
                        help=f"do not load plugin NAME (repeatable; also ${DISABLE_ENV}=a,b)")
    plugins.add_argument("--reload", action="store_true",
                        help="with --plugin-dir: reload a plugin file when it changes (the old version keeps "
                             "running if the new one fails to load); for developing plugins")
    plugins.add_argument("--no-plugins", action="store_true", help="load the built-in plugins only")
    plugins.add_argument("--list-plugins", action="store_true", help="list the plugins that would load, and exit")
    parser.add_argument("--config", type=Path, default=os.environ.get(CONFIG_ENV) or None, metavar="FILE",
                        help=f"TOML file: admins = [ACCOUNT, ...] (moderate every room, /plugins enable|disable), "
                             f"and [plugins.NAME] tables that configure plugins (ctx.config); "
                             f"default ${CONFIG_ENV}")
    plugins.add_argument("--check-config", type=Path, metavar="FILE",
                        help="check FILE (a --config file) against every loaded plugin's declared settings, "
                             "print each problem, and exit (0: valid, 1: problems, 2: unreadable)")
    _number(plugins, "--ready-grace", metavar="S",
            help="seconds after which a member that never named itself counts as ready for the "
                 "member_ready hook (default 5)")
    _number(plugins, "--plugin-fault-limit", metavar="N", help="disable a plugin after N faults (default 5)")
    _number(plugins, "--slow-hook-ms", metavar="MS",
            help="log a warning when a plugin blocks the loop longer than MS (default 100); twice within "
                 "10 minutes quarantines the plugin until an admin enables it")
    limits = parser.add_argument_group("flood control and connection limits")
    _number(limits, "--max-queue", metavar="SIZE",
            help="drop a client whose unsent output passes this size (default 8MiB, at least 4KiB)")
    _number(limits, "--flood-rate", metavar="R",
            help="token bucket per connection: R tokens per second (a chat line costs 1, an unknown command "
                 "or /who more); a client out of tokens waits until they refill (default 2; 0 disables flood "
                 "control)")
    _number(limits, "--flood-burst", metavar="B",
            help="bucket size: tokens a client may spend at once, so a paste of B lines is never slowed "
                 "(default 20)")
    _number(limits, "--flood-backlog", metavar="N",
            help="a client out of tokens with more than N lines (or 128 KiB) waiting is flooding: "
                 "'ERROR excess flood' and disconnected (default 100; 0: the 128 KiB only)")
    _number(limits, "--flood-kill", metavar="S",
            help="also disconnect with 'ERROR excess flood' a client throttled for S seconds in a row "
                 "(default 0: never)")
    _number(limits, "--idle-timeout", metavar="S",
            help="close a connection that holds an unfinished line or frame for S seconds (default 60)")
    _number(limits, "--max-per-address", metavar="N",
            help="connections allowed from one IP address (default 64, generous for a LAN "
                 "behind one NAT; 0: unlimited)")
    _number(limits, "--announce-limit", metavar="N",
            help="a room with more than N other members does not announce joins, leaves and renames "
                 "(default 200; 0: always announce)")
    rooms = parser.add_argument_group("rooms and history")
    rooms.add_argument("--default-room", type=room_name, default=UNSET, metavar="#ROOM",
                       help="the room everyone starts in (default #lobby)")
    _number(rooms, "--history-on-join", metavar="N",
            help="lines of a room's history sent to a member who joins it (0-500, default 20; 0: none)")
    _number(rooms, "--max-rooms", metavar="N", help="most rooms the server holds (1-1000000, default 1000); "
            "creating one more is refused (docs/protocol.md, Room lifetime)")
    rooms.add_argument("--no-history", dest="record_history", action="store_false", default=UNSET,
                       help="do not record what is said in rooms (rooms and topics still persist)")
    _number(rooms, "--history-max-unsaved", metavar="N", help="lines kept in memory while the history store "
            "fails; past N a speaker is refused (1-10000000, default 10000; docs/protocol.md, Durability)")
    rooms.add_argument("--history-keep", type=history_keep, default=UNSET, metavar="SPEC",
                       help="retention of the room history: LINES per room, DAYS with a d (30d), or both "
                            "(100000,30d); default: keep everything")
    tls = parser.add_argument_group(
        "TLS", "TLS on the main port (--tls, or --tls-cert and --tls-key), or beside the clear one: --port 5000 "
               "--tls-port 5001 (same rooms). The certificate's SHA-256 fingerprint is printed at start-up")
    tls.add_argument("--tls", action="store_true", default=UNSET,
                     help="speak TLS with a self-signed certificate made in the data dir on first run "
                          "(tls-cert.pem, tls-key.pem) and reused after")
    tls.add_argument("--tls-cert", type=Path, default=UNSET, metavar="FILE",
                     help="PEM certificate (chain) to serve; needs --tls-key")
    tls.add_argument("--tls-key", type=Path, default=UNSET, metavar="FILE", help="PEM private key of --tls-cert")
    _number(tls, "--tls-port", metavar="PORT",
            help="serve TLS on PORT beside the clear --port (0: the kernel picks); implies --tls "
                 "unless --tls-cert is given")
    _number(tls, "--tls-handshake-timeout", metavar="S",
            help="close a connection that has not finished its TLS handshake after S seconds (default 10)")
    web = parser.add_argument_group(
        "web client", "the page and its WebSocket on a port of their own, same rooms (docs/protocol.md, "
                      "\"WebSocket and JSON events\"); the URL to open is printed at start-up")
    web.add_argument("--web-port", type=web_port, action=_WebPort, default=UNSET, metavar="PORT",
                     help="serve the browser client on PORT (default: on, on the web port this data dir had last "
                          "time if it is free, else one the kernel picks, so a fresh server always prints a URL "
                          "to open and pages reconnect after a restart; 0: always one the kernel picks; 'off': "
                          "no web listener); HTTPS/WSS with TLS")
    web.add_argument("--web-origin", dest="web_origins", action="append", default=UNSET, metavar="ORIGIN",
                     help="also accept WebSockets from pages of ORIGIN (https://chat.example.org; repeatable; "
                          "'*': any); by default only the server's own page may connect")
    web.add_argument("--web-host", dest="web_hosts", action="append", default=UNSET, metavar="NAME",
                     help="also answer pages asked for as NAME (a DNS name or address of this server; repeatable; "
                          "'*': any); by default only this machine's names and addresses, against DNS rebinding")
    web.add_argument("--web-static", type=Path, default=UNSET, metavar="DIR",
                     help="serve the page's files from DIR instead of the installed ones (to work on the page)")
    _number(web, "--web-request-timeout", metavar="S",
            help="close an HTTP connection whose request is not complete S seconds after it began "
                 "(408; default 10)")
    irc = parser.add_argument_group("IRC", "IRC clients in the same rooms (docs/irc.md); the address is printed")
    _number(irc, "--irc-port", metavar="PORT", help="serve IRC on PORT (0: the kernel picks; default: no IRC)")
    _number(irc, "--irc-tls-port", metavar="PORT", help="with --tls: IRC over TLS on PORT (6697 by convention)")
    irc.add_argument("--irc-server-name", default=UNSET, metavar="NAME", help="IRC server name (default: host name)")
    _number(irc, "--irc-ping-after", metavar="S",
            help="PING an IRC client silent for S seconds; close it after S more without an answer (default 120)")
    accounts = parser.add_argument_group("passwords")
    accounts.add_argument("--password-file", type=Path, metavar="FILE",
                        help="a shared server password (the first line of FILE): every connection, clear or TLS, "
                             "must send /pass PASSWORD before anything else")
    accounts.add_argument("--reset-password", metavar="NICK",
                        help="set the password of the account NICK (asked twice without echo; one line of stdin "
                             "when it is not a terminal), then exit; a server running on the data dir "
                             "(and, with --redis, every node) takes it within a second")
    scale = parser.add_argument_group(
        "scale-out", "several servers as one chat through Redis (docs/scale-out.md; pip install 'chatroom[redis]')")
    scale.add_argument("--redis", default=UNSET, metavar="URL",
                       help="share rooms, nicks, presence, accounts and history with the other servers on this Redis "
                            "(redis://HOST:PORT/DB or unix:///PATH/redis.sock; a password as redis://:PASSWORD@HOST)")
    scale.add_argument("--node", default=UNSET, metavar="NAME",
                       help="this server's name among the nodes (default: host name and PID)")
    _number(scale, "--redis-timeout", metavar="S",
            help="seconds Redis has to answer before the command fails and the connection is made again "
                 "(default 2)")
    scale.add_argument("--reuse-port", action="store_true", default=UNSET,
                       help="bind with SO_REUSEPORT: several servers on this host share the same ports (each with "
                            "its own --data-dir; with --redis they are one chat)")
    console = parser.add_mutually_exclusive_group()
    console.add_argument("--quiet", action="store_true", help="log to the log file only, not stderr")
    console.add_argument("-v", "--verbose", action="store_true",
                         help="also show on stderr what the log file gets at start-up (each plugin loaded)")
    parser.add_argument("--version", action="version", version=f"chatroom {__version__}")
    return parser
