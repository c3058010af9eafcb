"""Migration 6 of the room history (chatroom.model.history_sql): a store written by chatroom 5 (history as a
WITHOUT ROWID table, search_map numbering each line for the FTS5 index) is rebuilt as a rowid table whose
rowid is the index number. Ids, times and texts stay, the index stays in step (the FTS rows keep their
numbers: nothing is re-tokenized), searches, replays, retention and new lines work after the upgrade."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from chatroom.model.history import Entry, History
from chatroom.model.history_sql import MIGRATIONS
from chatroom.model.search import run
from chatroom.model.searchquery import parse
from chatroom.model.store import migrate, open_store, schema_version

T0 = 1_800_000_000.0

# What chatroom 5's writer ran at the end of each group commit (history_sql's INDEX_NEW then).
OLD_INDEX_STEP = (
    "INSERT INTO search_fts (rowid, text, nick, room) SELECT m.seq, h.text, h.nick, h.room FROM search_map AS m "
    "JOIN history AS h ON h.room = m.room AND h.id = m.id "
    "WHERE m.seq > (SELECT value FROM history_meta WHERE key = 'search_indexed') ORDER BY m.seq",
    "UPDATE history_meta SET value = (SELECT max(seq) FROM search_map) "
    "WHERE key = 'search_indexed' AND value < (SELECT max(seq) FROM search_map)",
)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def _old_commit(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    """One group commit as chatroom 5 wrote it: the lines (the trigger numbers each), counters, the index step."""
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    conn.executemany("INSERT INTO history_seq (room, last_id) VALUES (?, ?) "
                     "ON CONFLICT (room) DO UPDATE SET last_id = max(last_id, excluded.last_id)",
                     [(r[0], r[1]) for r in rows])
    for statement in OLD_INDEX_STEP:
        conn.execute(statement)
    conn.execute("COMMIT")


def _old_store(path: Path) -> None:
    """A version-5 file: #a and #b interleaved over three commits, one line deleted by retention (its words
    left the index), one line stored while the numbering trigger was missing (no number: a damaged file)."""
    conn = open_store(path)
    migrate(conn, MIGRATIONS[:5])
    assert schema_version(conn) == 5
    _old_commit(conn, [("#a", 1, T0 + 1, "msg", "alice", None, "first cafe"),
                       ("#b", 1, T0 + 2, "msg", "bob", "bob", "second café")])
    _old_commit(conn, [("#a", 2, T0 + 3, "me", "alice", None, "waves at the CAFÉ"),
                       ("#a", 3, T0 + 4, "msg", "alice", None, "doomed cafe line")])
    _old_commit(conn, [("#b", 2, T0 + 5, "topic", "bob", "bob", "the cafe topic")])
    conn.execute("DELETE FROM history WHERE room = '#a' AND id = 3")  # retention, in the old schema
    conn.execute("DROP TRIGGER search_line")
    conn.execute("INSERT INTO history VALUES ('#a', 4, ?, 'msg', 'carol', NULL, 'unnumbered cafe')", (T0 + 6,))
    conn.execute("UPDATE history_seq SET last_id = 4 WHERE room = '#a'")
    conn.close()


def _texts(history: History, query: str, rooms: dict[str, int]) -> list[str]:
    page = run(history._conn, parse(query), rooms, [], Entry._make, limit=50)
    return [e.text for e in page.hits]


def test_an_old_store_is_searched_and_replayed_after_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "rooms.sqlite3"
    _old_store(path)
    history = History(path, clock=Clock(T0 + 100))
    try:
        conn = history._conn
        assert schema_version(conn) == len(MIGRATIONS) == 6
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")}
        assert "search_map" not in tables and "search_line" not in tables and "history_lines" not in tables
        assert {"search_unline", "search_fixed"} <= tables
        # Replays: every id, time, kind, author and text as it was.
        assert [tuple(e) for e in history.since("#a", 0, 10)] == [
            ("#a", 1, T0 + 1, "msg", "alice", None, "first cafe"),
            ("#a", 2, T0 + 3, "me", "alice", None, "waves at the CAFÉ"),
            ("#a", 4, T0 + 6, "msg", "carol", None, "unnumbered cafe"),
        ]
        assert [e.text for e in history.last("#b", 5)] == ["second café", "the cafe topic"]
        assert history.latest_id("#a") == 4 and history.latest_id("#b") == 2
        # The index kept its numbers: they are the rows' seq now, in stored order; the unnumbered line got one.
        seqs = [r[0] for r in conn.execute("SELECT seq FROM history ORDER BY seq")]
        assert seqs == [1, 2, 3, 5, 6]
        assert [r[0] for r in conn.execute("SELECT seq FROM history WHERE room = '#a' ORDER BY id")] == [1, 3, 6]
        assert conn.execute("SELECT value FROM history_meta WHERE key = 'search_indexed'").fetchone()[0] == 6
        conn.execute("INSERT INTO search_fts (search_fts) VALUES ('integrity-check')")
        # Searches: newest first across rooms, the deleted line gone, the unnumbered one found, filters work.
        rooms = {"#a": 0, "#b": 0}
        assert _texts(history, "cafe", rooms) == ["unnumbered cafe", "the cafe topic", "waves at the CAFÉ",
                                                  "second café", "first cafe"]
        assert _texts(history, "doomed", rooms) == []
        assert _texts(history, "#a cafe after:1", rooms) == ["unnumbered cafe", "waves at the CAFÉ"]
        assert _texts(history, "cafe before:2027-01-15T08:00:03Z", rooms) == ["second café", "first cafe"]
        # New lines go on above: ids per room, index numbers above every old one, searchable.
        history.append("#b", "msg", "dave", "a new cafe")
        history.commit()
        assert conn.execute("SELECT seq, id FROM history WHERE text = 'a new cafe'").fetchone() == (7, 3)
        assert _texts(history, "cafe", rooms)[0] == "a new cafe"
        # Retention deletes lines and their words in the same commit.
        history.prune(1, None)
        assert _texts(history, "cafe", rooms) == ["a new cafe", "unnumbered cafe"]
        conn.execute("INSERT INTO search_fts (search_fts) VALUES ('integrity-check')")
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        history.close()


def test_a_dropped_room_of_an_old_store_stays_hidden_and_goes(tmp_path: Path) -> None:
    """A room dropped before the upgrade (its floor in history_seq): its lines stay hidden from replays and
    searches after it, retention deletes them and their words, then forgets the room's counter."""
    path = tmp_path / "rooms.sqlite3"
    _old_store(path)
    conn = open_store(path)
    conn.execute("UPDATE history_seq SET floor = 2 WHERE room = '#b'")  # History.drop_room('#b') in chatroom 5
    conn.close()
    history = History(path, clock=Clock(T0 + 100))
    try:
        assert history.since("#b", 0, 10) == [] and history.has_lines("#b") is False
        rooms = {"#a": 0, "#b": history.ids.floor_of("#b")}
        assert "second café" not in _texts(history, "cafe", rooms)
        while history.prune(None, None):
            pass
        assert history._conn.execute("SELECT count(*) FROM history WHERE room = '#b'").fetchone()[0] == 0
        assert history.latest_id("#b") == 0 and history.ids.dropped_max == 2  # forgotten, ids never reused
        history._conn.execute("INSERT INTO search_fts (search_fts) VALUES ('integrity-check')")
        assert _texts(history, "cafe", {"#a": 0, "#b": 0}) == ["unnumbered cafe", "waves at the CAFÉ", "first cafe"]
    finally:
        history.close()
