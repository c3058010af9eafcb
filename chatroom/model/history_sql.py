"""The SQL of the room history file (``DATA_DIR/rooms.sqlite3``): its migrations and statements.

Used by :class:`chatroom.model.history.History` (reads) and :mod:`chatroom.model.pending` (writes, on the
writer thread); the schema is described there and in docs/protocol.md ("History"). Plain data, the standard
library only.
"""

from __future__ import annotations

__all__ = ["BEFORE", "BETWEEN", "COLUMNS", "DELETE_ROOM", "DELETE_TO", "DROPPED_MAX", "FLOOR", "INSERT", "LAST",
           "MIGRATIONS", "OLDEST", "ROOM", "RULES", "SEQ", "SINCE"]

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
]

COLUMNS = "room, id, ts, kind, nick, account, text"
INSERT = f"INSERT INTO history ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
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
