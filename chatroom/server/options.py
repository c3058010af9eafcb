"""The server's options: one frozen :class:`ServerOptions`, checked in one place.

Everything that configures a server (where it listens, its budgets and
limits, rooms and history, files, TLS, the web door, admins, the server
password, the plugin host's fault limits) is a field of
:class:`ServerOptions`. ``chatroom-server`` builds it from its flags and its
config file (:func:`ServerOptions.from_args`), the test kit
(:mod:`chatroom.testing`) from its keyword arguments, and
:class:`chatroom.server.app.Server` takes it whole. Injected I/O parts
(selector, clocks, listener, waker, plugin host) are not options: they stay
arguments of the server.

Every numeric field declares its range once, as :class:`Bounds` in its
metadata. :class:`ServerOptions` checks every field when it is made (and
raises :class:`OptionError`, one line naming the option and the value), and
the command line parses each flag with the same bounds (:func:`option_type`),
so ``--slow-hook-ms nan`` is refused where it is parsed, in the same words.
Adding an option is a field here, a flag in :mod:`chatroom.server.cli` whose
``dest`` is the field's name, and its use.

Also here: the value types of flags that are not numbers in a range (sizes,
ports, room names, retention), each an argparse ``type=`` that returns the
value or raises ``argparse.ArgumentTypeError`` naming the bad text.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatroom.model.names import room_key
from chatroom.net.loop import DEFAULT_MAX_QUEUE

__all__ = ["DAY", "DEFAULT_MAX_FILE_SIZE", "Bounds", "OptionError", "ServerOptions", "option_type"]

DEFAULT_MAX_FILE_SIZE = 1024**3
#: The longest duration option, in seconds: the loop's ``select`` refuses waits of more than about 24 days.
DAY = 86400.0

_NODE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)", re.IGNORECASE)


class OptionError(ValueError):
    """An option out of its range or of the wrong kind; the message is one line naming it and its value."""


# -- value types (argparse ``type=``) -------------------------------------------------------------------
def parse_size(text: str) -> int:
    """``"1GiB"``, ``"500M"``, ``"65536"`` -> bytes (``int``); k/M/G/T are powers of 1024.

    Raises argparse.ArgumentTypeError for anything else.
    """
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 65536, 500M, 1GiB)")
    number, unit, _ = match.groups()
    return int(float(number) * 1024 ** " kmgt".index(unit.lower() or " "))


def parse_port(text: str) -> int:
    """``"5000"`` -> 5000: a TCP port, 0-65535 (0: the kernel picks one). Raises argparse.ArgumentTypeError."""
    if not re.fullmatch(r"[0-9]{1,5}", text.strip()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: an integer 0-65535 (0 lets the kernel pick)")
    return int(text)


def _number(kind: type, text: str) -> float:
    try:
        value: float = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {'an integer' if kind is int else 'a number'}: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number, 0 or more: {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """``"2.5"`` -> 2.5; refuses negative, NaN and infinite values (argparse.ArgumentTypeError)."""
    return float(_number(float, text))


def positive_float(text: str) -> float:
    """Like :func:`non_negative_float`, but 0 is refused too."""
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """``"64"`` -> 64; refuses negative numbers and non-integers (argparse.ArgumentTypeError)."""
    return int(_number(int, text))


def history_lines(text: str) -> int:
    """``"20"`` -> 20: a number of history lines, 0 to 500; raises argparse.ArgumentTypeError otherwise."""
    return int(option_type("history_on_join")(text))


def room_name(text: str) -> str:
    """``lobby`` or ``#Lobby`` -> ``#lobby``; raises argparse.ArgumentTypeError for a bad room name."""
    key = room_key(text)
    if key is None:
        raise argparse.ArgumentTypeError(f"not a room name: {text!r} (# and 1-32 of a-z 0-9 _ -)")
    return key


def history_keep(text: str) -> tuple[int | None, float | None]:
    """``"100000"`` -> (100000, None); ``"30d"`` -> (None, 30.0); ``"100000,30d"`` -> both.

    Raises argparse.ArgumentTypeError for anything else.
    """
    lines: int | None = None
    days: float | None = None
    for part in text.replace(" ", "").split(","):
        try:
            if part.endswith("d"):
                days = float(part[:-1])
            else:
                lines = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a retention: {text!r} (LINES, DAYSd or LINES,DAYSd)") from None
    if _retention_problem((lines, days)):
        raise argparse.ArgumentTypeError(f"not a retention: {text!r} (LINES, DAYSd or LINES,DAYSd)")
    return lines, days


def _retention_problem(keep: Any) -> str | None:
    if not isinstance(keep, tuple) or len(keep) != 2:
        return "must be (LINES or None, DAYS or None)"
    lines, days = keep
    if lines is not None and (isinstance(lines, bool) or not isinstance(lines, int) or lines < 1):
        return "keeps LINES of at least 1 per room"
    if days is not None and (isinstance(days, bool) or not isinstance(days, (int, float))
                             or not 0 < days < math.inf):
        return "keeps a finite number of DAYS more than 0"
    return None


def parse_duration(text: str) -> float:
    """``"24h"`` -> 86400.0, ``"90m"``, ``"7d"``, ``"3600"`` or ``"30s"`` -> seconds (``float``).

    Raises argparse.ArgumentTypeError for anything else.
    """
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd]?)", text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 3600, 90m, 24h, 7d)")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def web_port(text: str) -> int | None:
    """``--web-port``: ``"8080"`` -> 8080, ``"0"`` -> 0 (the kernel picks), ``"off"`` -> None (no web listener).

    Raises argparse.ArgumentTypeError for anything else.
    """
    if text.strip().lower() in ("off", "no", "none"):
        return None
    return parse_port(text)


# -- ranges ---------------------------------------------------------------------------------------
def _g(number: float) -> str:
    return f"{number:g}" if isinstance(number, float) else str(number)


@dataclass(frozen=True)
class Bounds:
    """The range of one numeric option: a *kind* (``int`` or ``float``; a float option takes ints too) from
    *low* (refused itself when *above*) to *high*, finite; ``None`` allowed when *optional*. *parse* reads
    the flag's text (default ``int`` or ``float``; a size option uses :func:`parse_size`)."""

    kind: type = float
    low: float = 0
    high: float = math.inf
    above: bool = False
    optional: bool = False
    parse: Callable[[str], Any] | None = None

    def describe(self) -> str:
        """The range in words: ``an integer, 0 or more``, ``a number more than 0 and at most 86400``..."""
        what = "an integer" if self.kind is int else "a number" if math.isfinite(self.high) else "a finite number"
        low = f"more than {_g(self.low)}" if self.above else f"{_g(self.low)} or more"
        if not math.isfinite(self.high):
            return f"{what} {low}" if self.above else f"{what}, {low}"
        if self.above:
            return f"{what} {low} and at most {_g(self.high)}"
        return f"{what} from {_g(self.low)} to {_g(self.high)}"

    def allows(self, value: Any) -> bool:
        """Is *value* of this kind and in this range? (``bool`` is never a number here.)"""
        if value is None:
            return self.optional
        kinds = (int,) if self.kind is int else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
            return False
        return (value > self.low if self.above else value >= self.low) and value <= self.high

    def read(self, text: str) -> Any:
        """The flag's *text* as a value in range; raises argparse.ArgumentTypeError naming *text*."""
        if self.parse is not None:
            value = self.parse(text)
        else:
            try:
                value = self.kind(text)
            except ValueError:
                what = "an integer" if self.kind is int else "a number"
                raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        if not self.allows(value):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}: {text!r}")
        return value


def _num(default: Any, kind: type = float, low: float = 0, high: float = math.inf, **how: Any) -> Any:
    """A numeric field whose :class:`Bounds` are in its metadata."""
    return field(default=default, metadata={"bounds": Bounds(kind, low, high, **how)})


def _port(default: int | None = None) -> Any:
    """A TCP port field, 0-65535 (None allowed)."""
    return _num(default, int, 0, 65535, optional=True, parse=parse_port)


# -- the options ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServerOptions:
    """How a :class:`~chatroom.server.app.Server` is configured; immutable and checked when made.

    Units: seconds for durations (at most :data:`DAY`), bytes for sizes. Raises :class:`OptionError` (a
    ``ValueError``) for a value out of range or of the wrong kind, naming the option, its flag and the
    value. Budgets and limits: docs/protocol.md, "Budgets and limits". Any thread may read it.
    """

    #: Address to bind (``0.0.0.0``/``::``/``""``: every interface).
    host: str = "127.0.0.1"
    #: TCP port; ``None``: the port this data dir had last time if it is free, else one the kernel picks;
    #: ``0``: one the kernel picks (see :mod:`chatroom.server.claim`).
    port: int | None = _port()
    #: Folder of the stores, the log and the lock file (one server at a time).
    data_dir: Path = Path("chatroom-data")
    #: Unsent output a connection may have queued before it is dropped (bytes).
    max_queue: int = _num(DEFAULT_MAX_QUEUE, int, 4096, parse=parse_size)
    #: Flood control (token bucket per connection): tokens per second (0: off), bucket size, seconds
    #: throttled in a row before ``ERROR excess flood`` (0: never); lines a throttled client may have
    #: waiting before ``ERROR excess flood`` (0: only chatroom.net.budget.BACKLOG_TEXT bytes).
    flood_rate: float = _num(2.0)
    flood_burst: float = _num(20.0, above=True)
    flood_kill: float = _num(0.0, high=DAY)
    flood_backlog: int = _num(100, int)
    #: Seconds an unfinished line or frame may be held before the connection is closed.
    idle_timeout: float = _num(60.0, above=True, high=DAY)
    #: Connections from one IP address (0: unlimited).
    max_per_address: int = _num(64, int)
    #: Rooms with more members do not announce joins and leaves (0: always announce).
    announce_limit: int = _num(200, int)
    #: The room everyone starts in (normalised: ``Class`` -> ``#class``).
    default_room: str = "#lobby"
    #: History lines replayed to a member joining a room (0: none).
    history_on_join: int = _num(20, int, high=500)
    #: Most rooms the server holds, lingering ones included (docs/protocol.md, "Room lifetime").
    max_rooms: int = _num(1000, int, 1, 1_000_000)
    #: Retention: (lines per room, days); None: no limit.
    history_keep: tuple[int | None, float | None] = (None, None)
    #: False: record nothing said in rooms (rooms and topics still persist).
    record_history: bool = True
    #: Lines kept in memory while the history store fails; past it a speaker is refused (docs/protocol.md,
    #: "Durability").
    history_max_unsaved: int = _num(10_000, int, 1, 10_000_000)
    #: A member that never named itself counts as ready for ``member_ready`` after this many seconds.
    ready_grace: float = _num(5.0, high=DAY)
    #: The plugin host: disable a plugin after this many faults; warn when it blocks the loop this long (ms).
    plugin_fault_limit: int = _num(5, int, 1)
    slow_hook_ms: float = _num(100.0, above=True, high=60_000)
    #: Largest file relayed (bytes); seconds a receiver has to answer an offer; per-sender quotas (0: none).
    max_file_size: int = _num(DEFAULT_MAX_FILE_SIZE, int, parse=parse_size)
    file_offer_timeout: float = _num(60.0, above=True, high=DAY)
    #: Seconds a receiver may hold a transfer's sender back before it is dropped from the transfer.
    file_stall_timeout: float = _num(30.0, above=True, high=DAY)
    quota_files_per_hour: int = _num(0, int)
    quota_bytes_per_day: int = _num(0, int, parse=parse_size)
    #: Seconds a resumable transfer waits for its parties to come back after its last activity (up to 30 days).
    resume_keep: float = _num(DAY, above=True, high=30 * DAY, parse=parse_duration)
    #: TLS on the main port (a self-signed pair made in the data dir), or with *tls_cert* and *tls_key*;
    #: with *tls_port*, beside the clear port instead (implies TLS; 0: the kernel picks).
    tls: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_port: int | None = _port()
    tls_handshake_timeout: float = _num(10.0, above=True, high=DAY)
    #: The web door (page and WebSocket); *web_port* None: last time's if free, else the kernel's pick.
    web: bool = True
    web_port: int | None = _port()
    web_origins: tuple[str, ...] = ()
    #: ``Host`` names answered besides the machine's own names and addresses (against DNS rebinding; "*": any).
    web_hosts: tuple[str, ...] = ()
    web_static: Path | None = None
    web_request_timeout: float = _num(10.0, above=True, high=DAY)
    #: The IRC door (docs/irc.md): *irc_port* (None: no IRC; 0: the kernel picks), *irc_tls_port* IRC over TLS
    #: (needs TLS on), *irc_server_name* the server name IRC clients see (``""``: the host name).
    irc_port: int | None = _port()
    irc_tls_port: int | None = _port()
    irc_server_name: str = ""
    #: Seconds of silence after which an IRC client is PINGed, then as many more before ``ERROR`` and close.
    irc_ping_after: float = _num(120.0, above=True, high=DAY)
    #: Account names that moderate every room and enable or disable plugins (the config file's ``admins``).
    admins: tuple[str, ...] = ()
    #: Every connection must first send ``/pass PASSWORD`` (None: no gate). Never shown in ``repr``.
    server_password: str | None = field(default=None, repr=False)
    #: Scale-out (docs/scale-out.md): the Redis URL several servers share rooms through (None: one process,
    #: Redis never imported); this server's node name among them (None: host name and PID); seconds Redis has
    #: to answer before a command fails and the connection is made again.
    redis: str | None = field(default=None, repr=False)
    node: str | None = None
    redis_timeout: float = _num(2.0, above=True, high=60.0)
    #: Bind the ports with SO_REUSEPORT, so several servers on this host share them (the kernel spreads the
    #: connections); with --redis, they are one chat.
    reuse_port: bool = False

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            bounds = item.metadata.get("bounds")
            if bounds is not None and not bounds.allows(getattr(self, item.name)):
                self._refuse(item.name, f"must be {bounds.describe()}")
        room = room_key(self.default_room) if isinstance(self.default_room, str) else None
        if room is None:
            self._refuse("default_room", "must be a room name (# and 1-32 of a-z 0-9 _ -)")
        problem = _retention_problem(self.history_keep)
        if problem:
            self._refuse("history_keep", problem)
        if (self.tls_cert is None) != (self.tls_key is None):
            raise OptionError("--tls-cert and --tls-key go together")
        if self.irc_tls_port is not None and not self.tls_enabled:
            raise OptionError("--irc-tls-port needs TLS: add --tls (or --tls-cert and --tls-key)")
        if self.server_password is not None and not (isinstance(self.server_password, str) and self.server_password):
            self._refuse("server_password", "must be a non-empty string or None")
        for name in ("admins", "web_origins", "web_hosts"):
            values = getattr(self, name)
            if isinstance(values, str) or not all(isinstance(v, str) for v in values):
                self._refuse(name, "must be a list of strings")
            object.__setattr__(self, name, tuple(values))
        if self.node is not None and (not isinstance(self.node, str) or not _NODE.fullmatch(self.node)):
            self._refuse("node", "must be 1-64 of A-Z a-z 0-9 . _ -")
        if self.redis is not None:
            from chatroom.scaleout.address import parse_redis_url  # pure parsing: no Redis client is imported

            try:
                parse_redis_url(self.redis)
            except ValueError as exc:
                raise OptionError(f"option redis (--redis) {exc}") from None
        object.__setattr__(self, "default_room", room)
        object.__setattr__(self, "data_dir", Path(self.data_dir))

    def _refuse(self, name: str, problem: str) -> None:
        raise OptionError(f"option {name} ({flag(name)}) {problem}: {getattr(self, name)!r}")

    @property
    def tls_enabled(self) -> bool:
        """Does the server speak TLS (on its main port, or on *tls_port* beside it)?"""
        return self.tls or self.tls_cert is not None or self.tls_port is not None

    def replace(self, **changes: Any) -> ServerOptions:
        """A copy with *changes* (checked like a new one)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_args(cls, args: argparse.Namespace, **more: Any) -> ServerOptions:
        """The options from parsed flags (every attribute of *args* named like a field; flags not given are
        absent and keep the defaults here) and *more* (the config file's ``admins``, the password file's
        password...). Raises :class:`OptionError`."""
        values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
        return cls(**{**values, **more})


def flag(name: str) -> str:
    """The command-line flag of the field *name*: ``idle_timeout`` -> ``--idle-timeout``."""
    return "--" + name.replace("_", "-")


def option_type(name: str) -> Callable[[str], Any]:
    """The argparse ``type=`` of the numeric field *name*: its text read and checked with the field's
    :class:`Bounds` (argparse.ArgumentTypeError naming the text otherwise)."""
    bounds: Bounds | None = {f.name: f.metadata.get("bounds") for f in dataclasses.fields(ServerOptions)}[name]
    if bounds is None:
        raise KeyError(f"{name} is not a numeric option")
    return bounds.read
