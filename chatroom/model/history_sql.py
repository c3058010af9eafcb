"""The SQL of the room history file (``DATA_DIR/rooms.sqlite3``): its migrations and statements.

Used by :class:`chatroom.model.history.History` (reads) and :mod:`chatroom.model.pending` (writes, on the
writer thread); the schema is described there and in docs/protocol.md ("History"). Plain data, the standard
library only.
"""

from __future__ import annotations

__all__ = ["BEFORE", "BETWEEN", "COLUMNS", "DELETE_ROOM", "DELETE_TO", "DROPPED_MAX", "FLOOR", "INDEX_NEW", "INSERT",
           "INSERTS", "INSERT_SIZES", "LAST", "MIGRATIONS", "OLDEST", "ROOM", "RULES", "SEQ", "SINCE"]

# The search index (migrations 4 to 6; queries in chatroom.model.search). Since migration 6 a line's
# number in the index is its row's ``seq``, the rowid of the history table: one global order, the order
# lines were stored in, across rooms, and the FTS5 rowid of its words (migrations 4 and 5 kept that number
# in a table of its own, search_map, filled by a trigger per line: a second b-tree row and a unique index
# entry per line, 1.3-1.7x the cost of the rest, docs/benchmarks.md). SQLite 3.40's FTS5 writes its pending
# terms out at every statement savepoint, so the lines' words go into the FTS table in ONE statement per
# commit: INDEX_NEW, which the history's writer thread runs at the end of each group commit, after every
# job of the group (chatroom.model.writer). history_meta's 'search_indexed' is the highest seq in the FTS
# table. Deleting a line (retention, a dropped room's steps) deletes its words in the same statement (a
# trigger); lines are never changed in place.
_INDEX_NEW = """
    INSERT INTO search_fts (rowid, text, nick, room)
        SELECT seq, text, nick, room FROM history
        WHERE seq > (SELECT value FROM history_meta WHERE key = 'search_indexed') ORDER BY seq;
    UPDATE history_meta SET value = (SELECT max(seq) FROM history)
        WHERE key = 'search_indexed' AND value < (SELECT max(seq) FROM history);
"""
#: The lines stored since the last call, into the search index (two statements, run in order).
INDEX_NEW = tuple(statement.strip() for statement in _INDEX_NEW.split(";") if statement.strip())

# Migration 4's step, on search_map (it runs inside migration 4 on an old file, before migration 6).
_INDEX_NEW_4 = """
    INSERT INTO search_fts (rowid, text, nick, room)
        SELECT m.seq, h.text, h.nick, h.room FROM search_map AS m JOIN history AS h ON h.room = m.room AND h.id = m.id
        WHERE m.seq > (SELECT value FROM history_meta WHERE key = 'search_indexed') ORDER BY m.seq;
    UPDATE history_meta SET value = (SELECT max(seq) FROM search_map)
        WHERE key = 'search_indexed' AND value < (SELECT max(seq) FROM search_map);
"""

MIGRATIONS = [
    # 1: first schema.
    """
    CREATE TABLE history (
        room TEXT NOT NULL, id INTEGER NOT NULL, ts REAL NOT NULL, kind TEXT NOT NULL,
        nick TEXT NOT NULL, account TEXT, text TEXT NOT NULL,
        PRIMARY KEY (room, id)
    ) WITHOUT ROWID;
    -- Highest id ever assigned per room, written in the same transaction as
    -- the lines: ids survive retention deleting every line of a room, and
    -- start-up never scans history.
    CREATE TABLE history_seq (room TEXT NOT NULL PRIMARY KEY, last_id INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE rooms (
        name TEXT NOT NULL PRIMARY KEY, topic TEXT NOT NULL DEFAULT '', topic_by TEXT NOT NULL DEFAULT '',
        topic_at REAL NOT NULL DEFAULT 0, created REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # 2: room moderation (owner, operators, bans, topic lock, key) as JSON: chatroom.model.moderation.
    "ALTER TABLE rooms ADD COLUMN rules TEXT NOT NULL DEFAULT ''",
    # 3: dropped rooms (History.drop_room). A room's lines with id <= floor belong to a dropped room:
    # hidden at once, deleted by prune's bounded steps. history_meta's 'dropped_max' is the highest id
    # a fully deleted room had: a room name with no counter starts above it, so ids are never reused.
    """
    ALTER TABLE history_seq ADD COLUMN floor INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE history_meta (key TEXT NOT NULL PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    """,
    # 4: full-text search (see above): FTS5, contentless (the text lives in history only), no column
    # sizes (hits are ordered by time, never ranked); unicode61 folds case and removes diacritics,
    # so "cafe" finds "café". Existing lines are indexed here, oldest first.
    f"""
    CREATE TABLE search_map (seq INTEGER PRIMARY KEY, room TEXT NOT NULL, id INTEGER NOT NULL);
    CREATE UNIQUE INDEX search_map_line ON search_map (room, id);
    CREATE VIRTUAL TABLE search_fts USING fts5(
        text, nick, room, content='', columnsize=0, tokenize='unicode61 remove_diacritics 2'
    );
    INSERT INTO search_map (room, id) SELECT room, id FROM history ORDER BY ts, room, id;
    INSERT INTO history_meta (key, value) VALUES ('search_indexed', 0);
    {_INDEX_NEW_4}
    CREATE TRIGGER search_line AFTER INSERT ON history BEGIN
        INSERT INTO search_map (room, id) VALUES (new.room, new.id);
    END;
    CREATE TRIGGER search_index_new AFTER INSERT ON history_seq BEGIN {_INDEX_NEW_4} END;
    CREATE TRIGGER search_index_more AFTER UPDATE ON history_seq BEGIN {_INDEX_NEW_4} END;
    CREATE TRIGGER search_unline AFTER DELETE ON history BEGIN
        INSERT INTO search_fts (search_fts, rowid, text, nick, room)
            SELECT 'delete', seq, old.text, old.nick, old.room FROM search_map
            WHERE room = old.room AND id = old.id
            AND seq <= (SELECT value FROM history_meta WHERE key = 'search_indexed');
        DELETE FROM search_map WHERE room = old.room AND id = old.id;
    END;
    CREATE TRIGGER search_fixed BEFORE UPDATE OF room, id, nick, text ON history BEGIN
        SELECT RAISE(ABORT, 'history lines are never changed in place (the search index follows them)');
    END;
    """,
    # 5: the index step leaves the triggers on history_seq for the end of each group commit (INDEX_NEW).
    """
    DROP TRIGGER search_index_new;
    DROP TRIGGER search_index_more;
    """,
    # 6: the history's rows numbered by their index number (see above): history becomes a rowid table whose
    # rowid ``seq`` is the line's search_map number (the FTS5 rows keep theirs, so the index is not rebuilt),
    # (room, id) a unique index; search_map and its per-line trigger go. A line that had no number (none
    # should) gets a new one above every other, and is indexed by the closing step.
    f"""
    CREATE TABLE history_lines (
        seq INTEGER PRIMARY KEY, room TEXT NOT NULL, id INTEGER NOT NULL, ts REAL NOT NULL, kind TEXT NOT NULL,
        nick TEXT NOT NULL, account TEXT, text TEXT NOT NULL
    );
    INSERT INTO history_lines (seq, room, id, ts, kind, nick, account, text)
        SELECT m.seq, h.room, h.id, h.ts, h.kind, h.nick, h.account, h.text
        FROM history AS h LEFT JOIN search_map AS m ON m.room = h.room AND m.id = h.id
        ORDER BY m.seq IS NULL, m.seq, h.ts, h.room, h.id;
    DROP TABLE history;
    DROP TABLE search_map;
    ALTER TABLE history_lines RENAME TO history;
    CREATE UNIQUE INDEX history_line ON history (room, id);
    {_INDEX_NEW}
    CREATE TRIGGER search_unline AFTER DELETE ON history
        WHEN old.seq <= (SELECT value FROM history_meta WHERE key = 'search_indexed') BEGIN
        INSERT INTO search_fts (search_fts, rowid, text, nick, room) VALUES ('delete', old.seq, old.text, old.nick, old.room);
    END;
    CREATE TRIGGER search_fixed BEFORE UPDATE OF seq, room, id, nick, text ON history BEGIN
        SELECT RAISE(ABORT, 'history lines are never changed in place (the search index follows them)');
    END;
    """,
]

COLUMNS = "room, id, ts, kind, nick, account, text"
INSERT = f"INSERT INTO history ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
#: Lines per ``INSERT`` statement of a batch, largest first (the last is 1): ``INSERTS[k]`` stores k lines from
#: their 7k values. One statement for many rows instead of ``executemany``'s one per row: a third less CPU per
#: line, and the writer thread gives up Python's GIL once per statement, not once per line (a loaded loop then
#: kept it waiting for a switch interval, 5 ms, per row). 256 rows use 1,792 of SQLite's 32,766 variables.
INSERT_SIZES = (256, 64, 16, 4, 1)
INSERTS = {k: f"INSERT INTO history ({COLUMNS}) VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * k)
           for k in INSERT_SIZES}
SEQ = (
    "INSERT INTO history_seq (room, last_id) VALUES (?, ?) "
    "ON CONFLICT (room) DO UPDATE SET last_id = max(last_id, excluded.last_id)"
)
ROOM = (
    "INSERT INTO rooms (name, topic, topic_by, topic_at, created) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (name) DO UPDATE SET topic = excluded.topic, topic_by = excluded.topic_by, "
    "topic_at = excluded.topic_at, created = excluded.created"
)
RULES = "INSERT INTO rooms (name, created, rules) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET rules = excluded.rules"
DELETE_ROOM = "DELETE FROM rooms WHERE name = ?"
LAST = f"SELECT {COLUMNS} FROM history WHERE room = ? AND id > ? ORDER BY id DESC LIMIT ?"
SINCE = f"SELECT {COLUMNS} FROM history WHERE room = ? AND id > ? ORDER BY id LIMIT ?"
BEFORE = f"SELECT {COLUMNS} FROM history WHERE room = ? AND id < ? AND id > ? ORDER BY id DESC LIMIT ?"
BETWEEN = f"SELECT {COLUMNS} FROM history WHERE room = ? AND id > ? AND id < ? ORDER BY id LIMIT ?"
FLOOR = (
    "INSERT INTO history_seq (room, last_id, floor) VALUES (?, ?, ?) "
    "ON CONFLICT (room) DO UPDATE SET last_id = max(last_id, excluded.last_id), floor = excluded.floor"
)
DROPPED_MAX = (
    "INSERT INTO history_meta (key, value) VALUES ('dropped_max', ?) "
    "ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)"
)
OLDEST = "SELECT id, ts FROM history WHERE room = ? ORDER BY id LIMIT ?"
DELETE_TO = "DELETE FROM history WHERE room = ? AND id <= ?"
