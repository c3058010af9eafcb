"""IRC registration and the connection's own commands: CAP, PASS, NICK, USER, AUTHENTICATE (SASL PLAIN), PING,
PONG, QUIT, OPER, MOTD, LUSERS, and the welcome (001-005).

Registration ends when the client gave ``NICK`` and ``USER``, closed any
capability negotiation (``CAP END``), gave the server password (``PASS``, when
the server has ``--password-file``) and finished SASL; the nick is then taken
in the hub under chatroom's nick rules (one definition for every door,
:mod:`chatroom.model.names`) and the application greets the member (no
welcome line, no automatic join: IRC clients join their channels). SASL
PLAIN checks a chatroom account's password on a worker thread; three wrong
passwords (SASL or PASS) close the connection. Specified by the "Modern IRC"
document and ircv3.net (capability-negotiation, sasl-3.1). Loop thread only.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from chatroom.model.accounts import verify_password
from chatroom.model.errors import NickRefused, Refused
from chatroom.model.names import MAX_NICK
from chatroom.net.irc import IrcConnection, IrcDoor
from chatroom.net.ircinfo import remember
from chatroom.net.logs import CONN
from chatroom.wire.irc import CASEMAPPING, Message, clean
from chatroom.wire.ircevents import ACCOUNT, AWAY, TAGS, TIME
from chatroom.wire.numbers import parse_uint

__all__ = ["CAPS", "install", "isupport"]

log = logging.getLogger("chatroom.server")

#: The capabilities offered (``CAP LS``) and their values for ``CAP LS 302``.
CAPS = {
    "account-tag": "", "away-notify": "", "batch": "", "cap-notify": "", "draft/chathistory": "", "echo-message": "",
    "labeled-response": "", "message-tags": "", "multi-prefix": "", "sasl": "PLAIN", "server-time": "",
    "userhost-in-names": "",
}
#: Capability -> the bit of ``Member.tagged`` it sets (what changes the bytes of room events).
_BITS = {"server-time": TIME, "message-tags": TAGS, "account-tag": ACCOUNT, "away-notify": AWAY}
#: Wrong passwords (PASS or SASL) before the connection is closed.
TRIES = 3
#: Lengths announced in ISUPPORT and enforced.
TOPICLEN, KICKLEN, AWAYLEN, USERLEN = 400, 200, 200, 16
#: Most lines one CHATHISTORY query returns (ISUPPORT CHATHISTORY).
MAX_HISTORY = 500
#: Most targets of one PRIVMSG or NOTICE, and most nicks of one KICK (ISUPPORT TARGMAX); past them, one ``407``.
MAX_TARGETS = MAX_KICKS = 4


def isupport(max_rooms: int) -> list[str]:
    """The ISUPPORT tokens (``005``), the real limits of chatroom's rooms and nicks; *max_rooms*: the most rooms the
    server holds (``--max-rooms``), so the most a member can be in (``CHANLIMIT``: a number, as bot libraries
    such as pydle parse it: an empty one, valid for "no limit", made pydle drop the rest of that 005 line)."""
    return [
        f"AWAYLEN={AWAYLEN}", f"CASEMAPPING={CASEMAPPING}", f"CHANLIMIT=#:{max_rooms}", "CHANMODES=b,k,l,imnst",
        "CHANNELLEN=33",
        "CHANTYPES=#", f"CHATHISTORY={MAX_HISTORY}", f"KICKLEN={KICKLEN}", "LINELEN=512", "MODES=4", "MSGREFTYPES=msgid",
        "NETWORK=chatroom", f"NICKLEN={MAX_NICK}", "PREFIX=(ov)@+",
        f"TARGMAX=JOIN:,KICK:{MAX_KICKS},NAMES:1,NOTICE:{MAX_TARGETS},PART:,PRIVMSG:{MAX_TARGETS},WHOIS:1",
        f"TOPICLEN={TOPICLEN}",
        f"USERLEN={USERLEN}", "WHOX",
    ]


# -- capability negotiation --------------------------------------------------------------------
def cap(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``CAP LS [302]``, ``CAP LIST``, ``CAP REQ :caps``, ``CAP END`` (ircv3 capability-negotiation)."""
    sub = msg.params[0].upper()
    nick = conn.nick if conn.registered else "*"
    if sub == "LS":
        if not conn.registered:
            conn.cap_open = True
        version = (parse_uint(msg.params[1], max_digits=6) or 0) if len(msg.params) > 1 else 0  # never int('²')
        conn.cap_version = max(conn.cap_version, version)
        if version >= 302:
            items = [f"{k}={v}" if v else k for k, v in CAPS.items()]
        else:
            items = list(CAPS)
        door.message(conn, "CAP", nick, "LS", " ".join(items))
    elif sub == "LIST":
        door.message(conn, "CAP", nick, "LIST", " ".join(sorted(conn.irccaps)))
    elif sub == "REQ":
        if not conn.registered:
            conn.cap_open = True
        asked = msg.params[1].split() if len(msg.params) > 1 else []
        names = [a.lstrip("-") for a in asked]
        if not asked or any(n not in CAPS for n in names):
            door.message(conn, "CAP", nick, "NAK", " ".join(asked))
            return 1.0
        caps = set(conn.irccaps)
        for item in asked:
            (caps.discard if item.startswith("-") else caps.add)(item.lstrip("-"))
        _set_caps(conn, frozenset(caps))
        door.message(conn, "CAP", nick, "ACK", " ".join(asked))
    elif sub == "END":
        if not conn.registered:
            conn.cap_open = False
            try_register(door, conn)
    else:
        door.numeric(conn, "410", sub, "Invalid CAP command")
    return 1.0


def _set_caps(conn: IrcConnection, caps: frozenset[str]) -> None:
    conn.irccaps = caps
    flags = 0
    for name, bit in _BITS.items():
        if name in caps:
            flags |= bit
    conn.tagged = flags


# -- registration ----------------------------------------------------------------------------------
def pass_(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``PASS password``: the server password (``--password-file``), before NICK and USER."""
    if conn.registered:
        door.numeric(conn, "462", "You may not reregister")
    elif door.app.gate.needed:
        conn.password_ok = door.app.gate.check(msg.params[0])
    return 1.0


def nick(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``NICK name``: choose the nick (before registration), or change it (the rename every door sees)."""
    wanted = msg.params[0]
    if not conn.registered:
        reason = door.hub.nick_refusal(wanted, conn)
        if reason is not None:
            _refuse_nick(door, conn, wanted, reason)
            return 1.0
        conn.want_nick = wanted
        try_register(door, conn)
        return 1.0
    if wanted == conn.nick:
        return 1.0
    remember(door, conn)
    try:
        door.app.set_nick(conn, wanted)  # the client hears its NICK from IrcConnection.changed
    except NickRefused as exc:  # a ban silences it in a channel: solanum's and hybrid's ERR_BANNICKCHANGE
        door.numeric(conn, "435", wanted, exc.room, "Cannot change nickname while banned on channel")
    except Refused as exc:
        _refuse_nick(door, conn, wanted, str(exc))
    return 1.0


def _refuse_nick(door: IrcDoor, conn: IrcConnection, wanted: str, reason: str) -> None:
    """``432`` for a nick chatroom's rules never allow, ``433`` for one taken (or too like one taken)."""
    code = "433" if any(w in reason for w in ("taken", "registered", "who is here")) else "432"
    door.numeric(conn, code, wanted or "*", reason)


def user(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``USER username mode unused :realname``."""
    if conn.registered:
        door.numeric(conn, "462", "You may not reregister")
        return 1.0
    if len(msg.params) < 4 or not msg.params[3]:
        door.numeric(conn, "461", "USER", "Not enough parameters")
        return 1.0
    name = "".join(c for c in msg.params[0] if c.isascii() and (c.isalnum() or c in "-_.")) or "user"
    conn.user = "~" + name[: USERLEN - 1]
    conn.mask_nick = ""  # its mask (source) is made again, with the user name
    conn.realname = clean(msg.params[3])[:100]
    try_register(door, conn)
    return 1.0


def try_register(door: IrcDoor, conn: IrcConnection) -> None:
    """Complete registration if NICK, USER, CAP END, PASS and SASL are done: take the nick, greet, welcome."""
    if conn.registered or conn.closed or conn.closing or not conn.want_nick or not conn.user or conn.cap_open:
        return
    if conn.sasl == "checking":
        return
    if not conn.password_ok:
        door.numeric(conn, "464", "Password incorrect")
        door.close(conn, "wrong server password")
        return
    hub = door.hub
    hub.add(conn)
    try:
        hub.rename(conn, conn.want_nick)
    except Refused as exc:  # taken meanwhile, or a registered nick without its account
        hub.remove(conn, "")
        _refuse_nick(door, conn, conn.want_nick, str(exc))
        conn.want_nick = ""
        return
    conn.registered = True
    conn.shown_nick = conn.nick
    conn.transport.welcome(conn)  # the application's on_connect: the member is in, in no room
    log.info("%s registered on IRC (%s)", conn.nick, conn.source, extra=CONN)
    welcome(door, conn)


def welcome(door: IrcDoor, conn: IrcConnection) -> None:
    """001-005, LUSERS, the MOTD (``422``)."""
    version = f"chatroom-{door.version}"
    door.numeric(conn, "001", f"Welcome to the chatroom IRC door {conn.source}")
    door.numeric(conn, "002", f"Your host is {door.server_name}, running version {version}")
    door.numeric(conn, "003", "This server was created when it started")
    door.numeric(conn, "004", door.server_name, version, "iow", "biklmnostv", "bklov")
    tokens = isupport(door.hub.rooms.max_rooms)
    for start in range(0, len(tokens), 12):
        door.numeric(conn, "005", *tokens[start:start + 12], "are supported by this server")
    lusers(door, conn, Message("LUSERS"))
    door.numeric(conn, "422", "MOTD File is missing")
    if conn.umodes:
        door.message(conn, "MODE", conn.nick, "+" + conn.umodes, source=conn.source)


def lusers(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``LUSERS``: 251, 252, 253, 254, 255, 265, 266."""
    hub = door.hub
    users = len(hub.members)
    door.max_users = most = max(door.max_users, users)
    admins = sum(1 for m in hub.members.values() if door.is_admin(m))
    unknown = sum(len(getattr(t, "pending", ())) for t in door.app.transports)
    door.numeric(conn, "251", f"There are {users} users and 0 invisible on 1 servers")
    door.numeric(conn, "252", str(admins), "operator(s) online")
    door.numeric(conn, "253", str(unknown), "unknown connection(s)")
    door.numeric(conn, "254", str(len(hub.rooms)), "channels formed")
    door.numeric(conn, "255", f"I have {users} clients and 0 servers")
    door.numeric(conn, "265", str(users), str(most), f"Current local users {users}, max {most}")
    door.numeric(conn, "266", str(users), str(most), f"Current global users {users}, max {most}")
    return 2.0


def motd(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``MOTD``: there is none (``422``)."""
    door.numeric(conn, "422", "MOTD File is missing")
    return 1.0


# -- SASL PLAIN --------------------------------------------------------------------------------------
def authenticate(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``AUTHENTICATE PLAIN``, then ``AUTHENTICATE base64(authzid NUL authcid NUL password)`` (ircv3 sasl-3.1)."""
    arg = msg.params[0]
    if "sasl" not in conn.irccaps:
        door.numeric(conn, "904", "SASL authentication failed: request the sasl capability first")
        return 1.0
    if conn.account is not None and conn.registered:
        door.numeric(conn, "907", "You have already authenticated using SASL")
        return 1.0
    if arg == "*":
        conn.sasl = None
        door.numeric(conn, "906", "SASL authentication aborted")
        return 1.0
    if conn.sasl is None:
        if arg.upper() != "PLAIN":
            door.numeric(conn, "908", "PLAIN", "are available SASL mechanisms")
            door.numeric(conn, "904", "SASL authentication failed")
            return 1.0
        conn.sasl = ""
        door.message(conn, "AUTHENTICATE", "+", source="")
        return 1.0
    if conn.sasl == "checking":
        return 1.0
    conn.sasl += "" if arg == "+" else arg
    if len(conn.sasl) > 1200:
        conn.sasl = None
        door.numeric(conn, "904", "SASL authentication failed: the message is too long")
        return 2.0
    if len(arg) == 400:  # a full chunk: more follows
        return 1.0
    try:
        fields = base64.b64decode(conn.sasl, validate=True).decode("utf-8").split("\0")
    except ValueError:  # binascii.Error, UnicodeDecodeError, and a str with non-ASCII characters (b64decode)
        fields = []
    conn.sasl = None
    if len(fields) != 3 or not fields[1]:
        door.numeric(conn, "904", "SASL authentication failed")
        return 2.0
    _check_sasl(door, conn, fields[1], fields[2])
    return 5.0


def _check_sasl(door: IrcDoor, conn: IrcConnection, name: str, password: str) -> None:
    """Check *name*'s password on a worker thread; then 900 + 903, or 904."""
    record = door.app.accounts.get(name)
    conn.sasl = "checking"

    def check() -> bool:
        return record is not None and verify_password(password, record.password_hash)

    def done(ok: Any, error: BaseException | None) -> None:
        conn.sasl = None
        if conn.closed:
            return
        if ok and not error and record is not None:  # ok: check() found the record
            conn.account = record.name
            door.numeric(conn, "900", conn.source, record.name, f"You are now logged in as {record.name}")
            door.numeric(conn, "903", "SASL authentication successful")
            log.info("%s logged in to %s with SASL", conn.source, record.name, extra=CONN)
            try_register(door, conn)
            return
        conn.failures += 1
        log.warning("IRC SASL login to %s from %s failed (%d of %d)", name, conn.host, conn.failures, TRIES, extra=CONN)
        door.numeric(conn, "904", "SASL authentication failed")
        if conn.failures >= TRIES:
            door.close(conn, "too many failed logins")
        else:
            try_register(door, conn)

    _off_loop(door, conn, check, done)


def _off_loop(door: IrcDoor, conn: IrcConnection, check: Any, done: Any) -> None:
    """Run the password check *check* on a worker thread, then ``done(ok, error)``; the client's next commands
    wait meanwhile (its reading is paused), so replies keep the order of its commands (a PING sent after
    AUTHENTICATE is answered after 903 or 904)."""
    door.loop.pause_reading(conn)

    def finished(ok: Any, error: BaseException | None) -> None:
        door.loop.resume_reading(conn)
        done(ok, error)

    door.app.run_in_thread(check, finished)


def oper(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``OPER name password``: log in to a server admin's account (an account in the config's ``admins``):
    381, the connection now acts as that admin everywhere (its nick stays); else 464 or 491."""
    name, password = msg.params[0], msg.params[1] if len(msg.params) > 1 else ""
    record = door.app.accounts.get(name)
    if record is None or name.casefold() not in door.app.admins:
        door.numeric(conn, "491", "No O-lines for your host")
        return 5.0

    def check() -> bool:
        return verify_password(password, record.password_hash)

    def done(ok: Any, error: BaseException | None) -> None:
        if conn.closed:
            return
        if ok and not error:
            door.hub.set_account(conn, record.name)  # (registered: every node hears it)
            door.numeric(conn, "381", "You are now an IRC operator")
            if "o" not in conn.umodes:
                conn.umodes += "o"
                door.message(conn, "MODE", conn.nick, "+o", source=conn.source)
            log.info("%s is the admin %s (OPER)", conn.source, record.name, extra=CONN)
        else:
            door.numeric(conn, "464", "Password incorrect")

    _off_loop(door, conn, check, done)
    return 5.0


# -- keep-alive and leaving ---------------------------------------------------------------------------
def ping(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``PING token`` -> ``PONG server :token``."""
    door.message(conn, "PONG", door.server_name, msg.params[0])
    return 1.0


def pong(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``PONG``: the client is alive (:meth:`IrcDoor.handle` noted it)."""
    return 0.5


def quit_(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``QUIT [:reason]``: ``ERROR``, then the connection closes; everyone sharing a channel sees QUIT."""
    reason = clean(msg.params[0])[:KICKLEN] if msg.params else ""
    door.close(conn, f"Quit: {reason or conn.nick}", reason or "quit")
    return 1.0


def install(door: IrcDoor) -> None:
    """Register this module's commands with *door*."""
    door.command("CAP", cap, registered=False, params=1)
    door.command("PASS", pass_, registered=False, params=1)
    door.command("NICK", nick, registered=False, params=1)
    door.command("USER", user, registered=False, params=1)
    door.command("AUTHENTICATE", authenticate, registered=False, params=1)
    door.command("PING", ping, registered=False, params=1)
    door.command("PONG", pong, registered=False)
    door.command("QUIT", quit_, registered=False)
    door.command("LUSERS", lusers)
    door.command("MOTD", motd)
    door.command("OPER", oper, params=2)
