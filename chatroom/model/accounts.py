"""Accounts: registered nicks and their password hashes, in one SQLite file.

The server opens one :class:`AccountStore` on ``DATA_DIR/accounts.sqlite3``
(the ``accounts`` built-in plugin uses it through ``ctx.accounts``; the
console's ``chatroom-server --reset-password NICK`` opens the same file).

Passwords are never stored: :func:`hash_password` derives a key with the
memory-hard KDF ``hashlib.scrypt`` from the password and 16 random bytes of
salt, and the store keeps ``scrypt$N$r$p$SALT$KEY`` (base64 without padding).
:func:`verify_password` recomputes the key with the parameters stored in the
hash and compares in constant time (``hmac.compare_digest``).

Cost: N = 2**14, r = 8, p = 1 takes 128 * r * N = 16 MiB of memory and, on
the 2-core machine this was written on, about 50 ms of CPU per call (46 ms
median of 10 single calls; ``python -m timeit -n 10 -r 5 -s "import hashlib,os"
"hashlib.scrypt(b'correct-horse', salt=os.urandom(16), n=2**14, r=8, p=1,
dklen=32)"``: best of 5, 50.8 ms); N = 2**15 took about 100 ms. So a hash is
always computed off the loop thread (``ctx.run_in_thread``). The parameters
live in each hash, so raising them later keeps old hashes valid.

Nicks and accounts: an account is named after the nick it registered and
is keyed like nicks (case-insensitive, :func:`~chatroom.model.names.nick_key`);
:meth:`AccountStore.registered` also matches look-alikes (the nick's
confusable skeleton), so ``aIice`` cannot pass for the registered ``alice``.

Threading: reads use the store's connection, one thread at a time (the loop
thread in the server); writes go to its writer thread
(:class:`chatroom.model.writer.Writer`), so a ``/register`` never makes the
loop wait for the disk, and its ``OK`` comes once the account is committed
(docs/protocol.md, "Durability"). :func:`hash_password` and
:func:`verify_password` touch no database and are the functions to run on a
worker thread.

Changes made by another process: ``chatroom-server --reset-password`` writes
the file while the server runs. A login reads the file, so the running
server takes the new password at once; but :attr:`AccountStore.on_change`
(scale-out: the other nodes) hears only of what this store wrote, until
:meth:`AccountStore.look_outside` looks (scale-out calls it every second): a
``PRAGMA data_version`` on the loop's connection says whether anyone
committed; if so, the writer thread's own ``data_version`` (which its own
commits never move) says whether another process did, and then every
account changed since the previous look (less :data:`OUTSIDE_MARGIN`, for the
other process's commit delay) is told to ``on_change``. Telling an account
twice is harmless there (the newer change wins everywhere).
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, TextIO, TypeVar

from chatroom.model.errors import Refused
from chatroom.model.names import nick_key, nick_skeleton_key
from chatroom.model.store import close_store, migrate, open_store
from chatroom.model.writer import Done, Post, Writer

R = TypeVar("R")

__all__ = [
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "SCRYPT_N",
    "Account",
    "AccountStore",
    "author_label",
    "check_password",
    "console_password",
    "console_reset",
    "hash_password",
    "reset_password",
    "verify_password",
]

#: scrypt cost parameters for new hashes: 16 MiB and about 50 ms per hash here.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SALT_BYTES = 16
KEY_BYTES = 32
#: Memory scrypt may use (bytes); hashes whose parameters need more are refused.
MAX_MEMORY = 64 << 20
#: How far before its previous look :meth:`AccountStore.look_outside` still counts a change another process
#: committed since (seconds): that process takes ``changed`` before its commit, which may wait for the lock.
OUTSIDE_MARGIN = 60.0
#: Password length bounds, in characters.
MIN_PASSWORD, MAX_PASSWORD = 8, 256

MIGRATIONS = [
    # 1: first schema. ``key`` is nick_key(name), ``skeleton`` nick_skeleton_key(name).
    """
    CREATE TABLE accounts (
        key      TEXT NOT NULL PRIMARY KEY,
        skeleton TEXT NOT NULL,
        name     TEXT NOT NULL,
        password TEXT NOT NULL,           -- scrypt$N$r$p$salt$key, never the password
        created  REAL NOT NULL,           -- Unix seconds
        changed  REAL NOT NULL            -- Unix seconds of the last password change
    ) WITHOUT ROWID;
    CREATE INDEX accounts_skeleton ON accounts (skeleton);
    """,
]


class Account(NamedTuple):
    """A registered account: ``name`` (the nick as registered), ``password_hash``
    (``scrypt$...``), ``created`` and ``changed`` (Unix seconds)."""

    name: str
    password_hash: str
    created: float
    changed: float


def check_password(password: str) -> str | None:
    """Why *password* cannot be a password (``str``), or None when it can.

    A password is :data:`MIN_PASSWORD` to :data:`MAX_PASSWORD` characters
    with no whitespace (commands take it as one word).
    """
    if len(password) < MIN_PASSWORD:
        return f"a password needs at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"a password has at most {MAX_PASSWORD} characters"
    if any(c.isspace() for c in password):
        return "a password cannot contain spaces"
    return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """A salted scrypt hash of *password*: ``"scrypt$N$r$p$SALT$KEY"`` (``str``, base64 parts).

    Slow on purpose (about 50 ms and 16 MiB with the defaults): call it on a
    worker thread. Raises ValueError for parameters scrypt refuses.
    """
    salt = os.urandom(SALT_BYTES)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=MAX_MEMORY, dklen=KEY_BYTES)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """True if *password* matches the hash *stored* (from :func:`hash_password`).

    The key is recomputed with the stored parameters and compared with
    ``hmac.compare_digest``. A malformed hash, or one whose parameters
    would need more than :data:`MAX_MEMORY`, is False (never raises).
    Slow: call it on a worker thread.
    """
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(key)
        computed = hashlib.scrypt(password.encode("utf-8"), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                                  maxmem=MAX_MEMORY, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, expected)


def author_label(nick: str, account: str | None) -> str:
    """How a listing names an author: ``bob`` (a guest nick: unchanged), ``alice (verified)`` (logged in
    to the account of that nick), ``al (verified as alice)`` (logged in, under another nick)."""
    if account is None:
        return nick
    return f"{nick} (verified)" if nick_key(account) == nick_key(nick) else f"{nick} (verified as {account})"


def _create(conn: sqlite3.Connection, name: str, password_hash: str, now: float) -> Account:
    """Writer-thread job of :meth:`AccountStore.create` (inside the writer's transaction)."""
    row = conn.execute("SELECT name FROM accounts WHERE key = ? OR skeleton = ? LIMIT 1",
                       (nick_key(name), nick_skeleton_key(name))).fetchone()
    if row is not None:
        raise Refused(f"{name} is registered already" if nick_key(row[0]) == nick_key(name)
                      else f"{name} is too much like the registered nick {row[0]}")
    conn.execute("INSERT INTO accounts (key, skeleton, name, password, created, changed) VALUES (?, ?, ?, ?, ?, ?)",
                 (nick_key(name), nick_skeleton_key(name), name, password_hash, now, now))
    return Account(name, password_hash, now, now)


def _set_password(conn: sqlite3.Connection, name: str, password_hash: str, now: float) -> bool:
    """Writer-thread job of :meth:`AccountStore.set_password`."""
    cur = conn.execute("UPDATE accounts SET password = ?, changed = ? WHERE key = ?",
                       (password_hash, now, nick_key(name)))
    return cur.rowcount == 1


def _put(conn: sqlite3.Connection, account: Account) -> None:
    """Writer-thread job of :meth:`AccountStore.put`."""
    conn.execute("INSERT INTO accounts (key, skeleton, name, password, created, changed) VALUES (?, ?, ?, ?, ?, ?) "
                 "ON CONFLICT (key) DO UPDATE SET password = excluded.password, changed = excluded.changed "
                 "WHERE excluded.changed > accounts.changed",
                 (nick_key(account.name), nick_skeleton_key(account.name), account.name, account.password_hash,
                  account.created, account.changed))


class _Looks:
    """What the writer thread saw at :meth:`AccountStore.look_outside`'s last look: its connection, that
    connection's ``data_version``, and when (Unix seconds). Writer thread only."""

    def __init__(self, since: float) -> None:
        self.conn: sqlite3.Connection | None = None
        self.version = -1
        self.since = self.before = since

    def outside(self, conn: sqlite3.Connection) -> list[Account]:
        """Writer-thread job of :meth:`AccountStore.look_outside`: the accounts another process may have
        changed since the last look (none if no other process committed; every one changed since then,
        less :data:`OUTSIDE_MARGIN`, if one did or the writer's connection is new)."""
        now = time.time()
        version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        changed: list[Account] = []
        if conn is not self.conn or version != self.version:
            changed = [Account(*row) for row in conn.execute(
                "SELECT name, password, created, changed FROM accounts WHERE changed >= ?",
                (self.since - OUTSIDE_MARGIN,))]
        self.conn, self.version, self.since, self.before = conn, version, now, self.since
        return changed

    def undo(self) -> None:
        """The last look's transaction failed (its result was lost): the next look looks as far back again.
        Loop thread, once that look is over (:meth:`AccountStore.look_outside` queues one at a time)."""
        self.conn, self.since = None, self.before


class AccountStore:
    """The accounts of one server, in the SQLite file *path* (created and migrated on open).

    Writes run on its writer thread; *post* ``(fn, args, owner)`` delivers their ``on_done`` (the server:
    its scheduler's ``call_soon_threadsafe``, so they run on the loop thread; default: on the writer
    thread); ``inline=True`` writes on the calling thread (the plugin test kit). Raises ``sqlite3.Error``
    if the file is not a database, :class:`~chatroom.model.store.MigrationError` if its schema is newer
    than this code's. Reads: one thread at a time (see the module docstring).
    """

    def __init__(self, path: Path, *, post: Post | None = None, inline: bool = False) -> None:
        self.path = Path(path)
        self._conn = open_store(self.path, check_same_thread=False)  # opened on one thread, used on the loop's
        try:
            migrate(self._conn, MIGRATIONS)
        except BaseException:
            self._conn.close()
            raise
        self._writer = Writer(self.path, post=post or (lambda fn, args, owner: fn(*args)), name="chatroom-accounts",
                              inline=inline)
        #: Scale-out: ``on_change(account)`` hears every account created or changed here once committed, on the
        #: thread that gets ``on_done`` (None: nobody); one changed by another process at :meth:`look_outside`.
        self.on_change: Callable[[Account], None] | None = None
        self._looks = _Looks(time.time())
        self._version = self._data_version()  # the loop's connection: anyone's commit moves it
        self._looking = False  # a look is queued on the writer (one at a time)

    def _data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def look_outside(self) -> None:
        """Tell :attr:`on_change` of the accounts another process changed in the file since the last look
        (``chatroom-server --reset-password`` while this server runs). Returns at once: when nothing was
        committed since (one ``PRAGMA``), else after a look on the writer thread, whose result comes through
        *post*. Does nothing while nobody listens (``on_change`` None). Reads' thread (the loop) only."""
        if self.on_change is None or self._looking:
            return
        version = self._data_version()
        if version == self._version:
            return
        self._version, self._looking = version, True
        self._writer.submit(self._looks.outside, self._tell_outside)

    def _tell_outside(self, changed: list[Account] | None, error: BaseException | None) -> None:
        self._looking = False
        if error is not None:  # (the writer failed: look again, as far back, at the next call)
            self._looks.undo()
            self._version = -1
            return
        for account in changed or ():
            if self.on_change is not None:
                self.on_change(account)

    def get(self, name: str) -> Account | None:
        """The account called *name* (case-insensitive), or None."""
        row = self._conn.execute("SELECT name, password, created, changed FROM accounts WHERE key = ?",
                                 (nick_key(name),)).fetchone()
        return Account(*row) if row else None

    def registered(self, nick: str) -> str | None:
        """The name of the account *nick* belongs to: the same nick in any case, else a look-alike
        (same confusable skeleton); None if no account claims it."""
        row = self._conn.execute(
            "SELECT name FROM accounts WHERE key = ? OR skeleton = ? ORDER BY key = ? DESC LIMIT 1",
            (nick_key(nick), nick_skeleton_key(nick), nick_key(nick)),
        ).fetchone()
        return row[0] if row else None

    def create(self, name: str, password_hash: str, *, now: float | None = None, on_done: Done | None = None,
               owner: str = "core") -> Account | None:
        """Register the account *name* with *password_hash* (from :func:`hash_password`).

        Without *on_done*: blocks until it is committed and returns the :class:`Account` (tools, tests);
        raises :class:`~chatroom.model.errors.Refused` if *name* (or a look-alike of it) is registered
        already, ``sqlite3.Error`` if the store fails (nothing kept). With *on_done*: returns None at once,
        and ``on_done(account, error)`` comes through *post* for *owner* once committed (*error*: that
        Refused or ``sqlite3.Error``, nothing kept): reply ``OK`` there.
        """
        job = partial(_create, name=name, password_hash=password_hash, now=time.time() if now is None else now)
        if on_done is None:
            return self._told(name, self._writer.run(job))
        self._writer.submit(job, self._telling(name, on_done), owner=owner)
        return None

    def set_password(self, name: str, password_hash: str, *, now: float | None = None,
                     on_done: Done | None = None, owner: str = "core") -> bool | None:
        """Replace the password hash of the account *name*: whether there was such an account, as
        :meth:`create` returns or reports its result (blocking without *on_done*)."""
        job = partial(_set_password, name=name, password_hash=password_hash, now=time.time() if now is None else now)
        if on_done is None:
            return self._told(name, self._writer.run(job))
        self._writer.submit(job, self._telling(name, on_done), owner=owner)
        return None

    def _told(self, name: str, result: R) -> R:
        """Tell :attr:`on_change` of the account *name* if the committed job changed it (*result* truthy)."""
        if result and self.on_change is not None and (account := self.get(name)) is not None:
            self.on_change(account)
        return result

    def _telling(self, name: str, on_done: Done) -> Done:
        """*on_done*, after :meth:`_told` when the job committed."""
        def done(result: Any, error: BaseException | None) -> None:
            on_done(self._told(name, result) if error is None else result, error)
        return done

    def put(self, account: Account) -> None:
        """Store *account* as another node made or changed it (scale-out), unless this store has a newer change
        of it; written by the writer thread, not told to :attr:`on_change`."""
        self._writer.submit(partial(_put, account=account))

    def all(self) -> list[Account]:
        """Every account (scale-out shares them when a node joins)."""
        return [Account(*row) for row in self._conn.execute("SELECT name, password, created, changed FROM accounts")]

    def count(self) -> int:
        """How many accounts there are."""
        return int(self._conn.execute("SELECT count(*) FROM accounts").fetchone()[0])

    def close(self) -> None:
        """Commit what the writer has (5 s at most), then close the file (idempotent)."""
        self._writer.close()
        close_store(self._conn)

    def __enter__(self) -> AccountStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def console_password(name: str, stdin: TextIO | None = None) -> str:
    """A new password for the account *name*, from the console: asked twice without echo
    (``getpass``) when *stdin* (default ``sys.stdin``) is a terminal, else its first line
    (without the newline). Raises ValueError when the two typed passwords differ."""
    stdin = stdin if stdin is not None else sys.stdin
    if not stdin.isatty():
        return stdin.readline().rstrip("\r\n")
    password = getpass.getpass(f"new password for {name}: ")
    if getpass.getpass("the same again: ") != password:
        raise ValueError("the two passwords differ; nothing was changed")
    return password


def reset_password(path: Path, nick: str, read_password: Callable[[str], str] = console_password) -> str:
    """Set a new password for the account *nick* in the store file *path* (``chatroom-server
    --reset-password NICK``); returns the account's name. ``read_password(name)`` gives the password
    (:func:`console_password`), asked only once the account is found. Raises LookupError when there is
    no such account (or no store file: none is created), ValueError for a refused password."""
    if not Path(path).is_file():
        raise LookupError(f"no account {nick} ({path} does not exist)")
    with AccountStore(path) as store:
        account = store.get(nick)
        if account is None:
            raise LookupError(f"no account {nick}")
        password = read_password(account.name)
        reason = check_password(password)
        if reason is not None:
            raise ValueError(f"{reason}; nothing was changed")
        store.set_password(account.name, hash_password(password))
    return account.name


def console_reset(path: Path, nick: str) -> tuple[int, str]:
    """``chatroom-server --reset-password NICK``: :func:`reset_password` with :func:`console_password`;
    returns ``(exit status, line)``: ``(0, "OK password of NICK reset")``, or ``(2, reason)`` for a usage
    mistake (no such account, a refused password: docs/protocol.md, "Accounts")."""
    try:
        return 0, f"OK password of {reset_password(path, nick)} reset"
    except (LookupError, ValueError) as exc:
        return 2, str(exc)
