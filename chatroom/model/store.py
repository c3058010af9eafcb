"""Per-plugin SQLite storage: opening a store, schema migrations, transactions.

The server gives every plugin its own database file,
``DATA_DIR/plugins/<plugin>.sqlite3`` (see :func:`plugin_store_path`), opened
with :func:`open_store` on first use of ``ctx.store`` and closed with
:func:`close_store` at shutdown. A plugin declares its schema as a list of
migrations and applies them once, typically in its ``startup`` hook::

    MIGRATIONS = [
        # 1: first schema
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);",
        # 2: later additions are appended, never edited
        "ALTER TABLE notes ADD COLUMN author TEXT NOT NULL DEFAULT '';",
    ]

    @hookimpl
    def startup(ctx):
        migrate(ctx.store, MIGRATIONS)

Durability: connections use WAL mode with ``synchronous=NORMAL``. A
transaction is durable against a crash or kill of the process (SIGTERM,
SIGKILL) as soon as its ``COMMIT`` returns; only a power loss or OS crash can
lose the last commits. So a plugin commits *before* it replies ``OK``.

Connections are in autocommit mode (``isolation_level=None``): every
statement outside an explicit transaction commits on its own, and
``with conn:`` gives no atomicity (a block that raises keeps its writes).
Group writes with :func:`transaction` (``with ctx.transaction():`` in a plugin). A connection may only be used by the thread that
opened it (the event-loop thread, for ``ctx.store``).
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "BUSY_TIMEOUT_MS",
    "MigrationError",
    "close_store",
    "migrate",
    "open_store",
    "plugin_store_path",
    "schema_version",
    "split_statements",
    "transaction",
]

#: How long a statement waits for another connection's lock, in milliseconds.
BUSY_TIMEOUT_MS = 5000

_PLUGIN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


class MigrationError(RuntimeError):
    """The database's schema cannot be brought to the plugin's version."""


def plugin_store_path(data_dir: Path, plugin: str) -> Path:
    """``data_dir/plugins/<plugin>.sqlite3``.

    Raises ValueError if *plugin* is not a safe file name (1-100 of
    ``A-Z a-z 0-9 _ . -``, not starting with ``.``), so a plugin name can
    never point outside the plugins folder.
    """
    if not _PLUGIN_NAME.fullmatch(plugin) or plugin.startswith("."):
        raise ValueError(f"plugin name {plugin!r} cannot name a store file")
    return Path(data_dir) / "plugins" / f"{plugin}.sqlite3"


def _set_wal(conn: sqlite3.Connection) -> str:
    """``PRAGMA journal_mode=WAL``, retried while another connection converting the same new file holds
    the lock (SQLite answers that at once, without the busy handler), for at most BUSY_TIMEOUT_MS."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def open_store(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """Open (creating it and its folder if needed) the SQLite database at *path*.

    The connection is in autocommit mode (``isolation_level=None``), uses
    WAL journaling with ``synchronous=NORMAL``, waits up to
    :data:`BUSY_TIMEOUT_MS` for locks held by other connections, and enforces
    foreign keys. Raises ``sqlite3.Error`` if the file is not a database or
    cannot be opened, ``OSError`` if the folder cannot be created. With
    ``check_same_thread=False`` the connection may be made on one thread and
    used (never concurrently) on another: the server opens the room history
    before its loop thread starts.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=check_same_thread)
    try:
        mode = _set_wal(conn)
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot switch {path} to WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        conn.close()
        raise
    return conn


def close_store(conn: sqlite3.Connection) -> None:
    """Close *conn* cleanly: roll back an unfinished transaction, run
    ``PRAGMA optimize``, checkpoint the WAL into the main file, close.

    Never raises for an already closed connection.
    """
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.execute("PRAGMA optimize")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.ProgrammingError:  # closed already
        return
    except sqlite3.Error:
        pass  # best effort: closing below still releases the file
    conn.close()


def schema_version(conn: sqlite3.Connection) -> int:
    """The database's schema version (``PRAGMA user_version``; 0 for a new file)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def split_statements(script: str) -> list[str]:
    """Split an SQL *script* into complete statements (``str`` each, with its ``;``).

    Uses :func:`sqlite3.complete_statement`, so semicolons inside strings,
    comments and ``CREATE TRIGGER ... BEGIN ... END;`` bodies are handled.
    Raises :class:`MigrationError` if the script ends with an incomplete
    statement.
    """
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if not _only_comments(pending.strip(" \t\r\n;")):
                statements.append(pending.strip())
            pending = ""
    # The split added one ";" too many after the last piece.
    rest = pending[:-1].strip()
    if rest and not _only_comments(rest):
        raise MigrationError(f"incomplete SQL statement: {rest[:80]!r}")
    return statements


def _only_comments(text: str) -> bool:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())


def migrate(conn: sqlite3.Connection, migrations: list[str]) -> int:
    """Bring *conn*'s schema up to ``len(migrations)``; return the new version.

    ``migrations[i]`` is an SQL script (one or more statements) that takes
    the schema from version ``i`` to ``i + 1``. The version lives in
    ``PRAGMA user_version``. Each pending migration runs in its own
    ``BEGIN IMMEDIATE`` transaction together with the version bump, so a
    failed or interrupted migration leaves the previous version intact, and
    the version is re-read inside the write lock, so two processes migrating
    the same file apply each step once. Calling it again is a no-op
    (idempotent). Migrations are append-only: never edit a released one.

    Raises :class:`MigrationError` when the database is newer than the
    plugin (``user_version > len(migrations)``) or a script is incomplete,
    and re-raises ``sqlite3.Error`` from a failing statement (after
    rolling that migration back).
    """
    target = len(migrations)
    if conn.in_transaction:
        raise MigrationError("migrate() must not run inside an open transaction")
    version = schema_version(conn)
    while version < target:
        with transaction(conn):
            version = schema_version(conn)  # re-read under the write lock
            if version >= target:
                break
            for statement in split_statements(migrations[version]):
                conn.execute(statement)
            version += 1
            conn.execute(f"PRAGMA user_version={version}")
    if version > target:
        raise MigrationError(
            f"database schema version {version} is newer than this plugin's ({target}); "
            "upgrade the plugin or use another data dir"
        )
    return version


@contextmanager
def transaction(conn: sqlite3.Connection, *, immediate: bool = True) -> Iterator[sqlite3.Connection]:
    """``with transaction(conn): ...`` runs the block in one transaction.

    Starts ``BEGIN IMMEDIATE`` (takes the write lock at once; pass
    ``immediate=False`` for a deferred ``BEGIN``), commits when the block
    ends, rolls back and re-raises if it (or the ``COMMIT``) raises, so a
    failed commit never leaves the connection inside a transaction. When ``COMMIT`` returns the
    writes are durable against a process crash. Not re-entrant: raises
    ``sqlite3.OperationalError`` if a transaction is already open.
    """
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # also after a COMMIT that failed (SQLITE_FULL, I/O error)
            conn.execute("ROLLBACK")
        raise
