"""chatroom.model.store: opening a plugin store, migrations, transactions, durability."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from chatroom.model.store import (
    MigrationError,
    close_store,
    migrate,
    open_store,
    plugin_store_path,
    schema_version,
    split_statements,
    transaction,
)

V1 = "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);"
V2 = """
ALTER TABLE notes ADD COLUMN author TEXT NOT NULL DEFAULT '';
CREATE INDEX notes_author ON notes(author);
"""


def test_open_store_settings(tmp_path: Path) -> None:
    path = tmp_path / "plugins" / "x.sqlite3"
    conn = open_store(path)
    assert path.exists()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.isolation_level is None
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    assert not conn.in_transaction  # autocommit: each statement commits
    close_store(conn)
    close_store(conn)  # a second close is harmless


def test_open_store_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(sqlite3.DatabaseError):
        open_store(path)


def test_plugin_store_path(tmp_path: Path) -> None:
    assert plugin_store_path(tmp_path, "board") == tmp_path / "plugins" / "board.sqlite3"
    assert plugin_store_path(tmp_path, "my-plugin.v2") == tmp_path / "plugins" / "my-plugin.v2.sqlite3"
    for bad in ("../evil", "a/b", "", ".hidden", "x" * 101):
        with pytest.raises(ValueError):
            plugin_store_path(tmp_path, bad)


def test_migrate_in_order_and_idempotent(tmp_path: Path) -> None:
    conn = open_store(tmp_path / "m.sqlite3")
    assert schema_version(conn) == 0
    assert migrate(conn, [V1]) == 1
    conn.execute("INSERT INTO notes(text) VALUES ('kept')")
    assert migrate(conn, [V1]) == 1  # again: nothing to do
    assert migrate(conn, [V1, V2]) == 2  # a later release appends a step
    assert migrate(conn, [V1, V2]) == 2
    assert conn.execute("SELECT text, author FROM notes").fetchall() == [("kept", "")]
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert {"notes", "notes_author"} <= names
    close_store(conn)
    conn = open_store(tmp_path / "m.sqlite3")
    assert schema_version(conn) == 2
    close_store(conn)


def test_failed_migration_rolls_back_that_step(tmp_path: Path) -> None:
    conn = open_store(tmp_path / "m.sqlite3")
    bad = "CREATE TABLE half (x); INSERT INTO no_such_table VALUES (1);"
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, [V1, bad])
    assert schema_version(conn) == 1  # step 1 kept, step 2 undone as a whole
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "notes" in names and "half" not in names
    assert not conn.in_transaction
    close_store(conn)


def test_database_newer_than_plugin(tmp_path: Path) -> None:
    conn = open_store(tmp_path / "m.sqlite3")
    migrate(conn, [V1, V2])
    with pytest.raises(MigrationError, match="newer"):
        migrate(conn, [V1])
    close_store(conn)


def test_migrate_refuses_open_transaction(tmp_path: Path) -> None:
    conn = open_store(tmp_path / "m.sqlite3")
    conn.execute("BEGIN")
    with pytest.raises(MigrationError):
        migrate(conn, [V1])
    conn.execute("ROLLBACK")
    close_store(conn)


def test_two_connections_migrate_once(tmp_path: Path) -> None:
    """Two openers racing on one file apply each step once (the version is re-read under the lock)."""
    path = tmp_path / "race.sqlite3"
    steps = [V1, "INSERT INTO notes(text) VALUES ('once');"]
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        conn = open_store(path)
        try:
            barrier.wait(timeout=30)  # generous: a loaded CI machine may be slow to open four WAL connections
            migrate(conn, steps)
        except (sqlite3.Error, MigrationError, threading.BrokenBarrierError) as exc:  # reported below
            errors.append(exc)
        finally:
            close_store(conn)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=40)
    assert errors == []
    conn = open_store(path)
    assert conn.execute("SELECT count(*) FROM notes").fetchone()[0] == 1
    close_store(conn)


def test_split_statements() -> None:
    script = """
    CREATE TABLE a (x TEXT DEFAULT ';');  -- a comment; with a semicolon
    CREATE TRIGGER t AFTER INSERT ON a BEGIN
        INSERT INTO a VALUES ('x;y');
    END;
    /* trailing comment */
    """
    parts = split_statements(script)
    assert len(parts) == 2
    assert parts[0].startswith("CREATE TABLE a")
    assert "END;" in parts[1]
    assert split_statements("CREATE TABLE b (x)") == ["CREATE TABLE b (x);"]
    with pytest.raises(MigrationError):
        split_statements("CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1;")


def test_transaction_commits_or_rolls_back(tmp_path: Path) -> None:
    conn = open_store(tmp_path / "t.sqlite3")
    conn.execute("CREATE TABLE t (x)")
    with transaction(conn):
        conn.execute("INSERT INTO t VALUES (1)")
        assert conn.in_transaction
    with pytest.raises(KeyError), transaction(conn):
        conn.execute("INSERT INTO t VALUES (2)")
        raise KeyError("the block failed")
    assert not conn.in_transaction
    assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]
    close_store(conn)


KILLED_WRITER = """
import os, signal, sys
from chatroom.model.store import open_store, migrate, transaction
conn = open_store(sys.argv[1])
migrate(conn, ["CREATE TABLE t (x INTEGER);"])
for i in range(200):
    with transaction(conn):
        conn.execute("INSERT INTO t VALUES (?)", (i,))
print("committed", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_commits_survive_sigkill(tmp_path: Path) -> None:
    """WAL + synchronous=NORMAL: whatever COMMIT returned for is there after the process is killed."""
    path = tmp_path / "k.sqlite3"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(path)], check=False, capture_output=True, text=True, timeout=30
    )
    assert proc.stdout.strip() == "committed"
    assert proc.returncode == -9
    assert (tmp_path / "k.sqlite3-wal").exists()  # not checkpointed: the data is only in the WAL
    conn = open_store(path)
    assert conn.execute("SELECT count(*), sum(x) FROM t").fetchone() == (200, sum(range(200)))
    close_store(conn)
