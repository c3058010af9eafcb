"""Full-text search over the room history: one page of hits, newest first, from SQLite FTS5.

The index (``chatroom.model.history_sql``, migrations 4 to 6) numbers every stored line in one global
order, ``seq`` (the order lines were stored in, across rooms: the ``history`` table's rowid), and holds
its words in the FTS5 table ``search_fts`` under that number, written in the commit that stores the line
(once per group commit) and deleted in the commit that deletes it. A page is one FTS5 query read newest first (``ORDER BY rowid DESC``, which FTS5 answers from
its index without sorting), each candidate kept if the reader may read its room (the caller passes
those rooms: :meth:`chatroom.model.rooms.Rooms.search` applies the access rule) and the exact
filters agree; the next page continues below the last line looked at, so pages never repeat or skip
a line (lines stored after the first page are left to a new search).

Lines appended and not committed yet are not in the index: the caller passes them and they are
matched here in Python (:func:`chatroom.model.searchquery.matches`), ahead of the rest (they are the
newest).

Bounded work: a page looks at most at *scan* candidates and spends at most *budget* seconds in
SQLite (a progress handler interrupts it); a page stopped early says how far back it looked and
continues from there. Pure functions of an open connection; the loop thread calls them with the
history's reading connection.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple, Protocol

from chatroom.model.searchquery import Query, QueryError, fts_match, matches

__all__ = ["BUDGET", "MAX_PAGE", "PAGE", "SCAN", "Query", "SearchCursor", "SearchPage", "run"]

#: Hits per page, by default (``/search``); at most :data:`MAX_PAGE`.
PAGE = 20
MAX_PAGE = 200
#: Candidates (lines whose words match, before the room and author checks) one page looks at, at most.
SCAN = 20_000
#: Seconds one page may spend in SQLite, at most.
BUDGET = 0.05
#: SQLite virtual-machine steps between two looks at the clock (a look costs about a microsecond).
STEPS = 1000

_HITS = (
    "SELECT f.rowid, h.room, h.id, h.ts, h.kind, h.nick, h.account, h.text FROM search_fts AS f "
    "JOIN history AS h ON h.seq = f.rowid WHERE search_fts MATCH ? AND f.rowid < ? AND f.rowid >= ? ORDER BY f.rowid DESC"
)
_INDEXED = "SELECT value FROM history_meta WHERE key = 'search_indexed'"
_SEQ_RANGE = "SELECT min(seq), max(seq) FROM history"
_FIRST_FROM = "SELECT seq, ts FROM history WHERE seq >= ? ORDER BY seq LIMIT 1"
_ID_AFTER = "SELECT seq FROM history WHERE room = ? AND id > ? ORDER BY id LIMIT 1"
_ID_BEFORE = "SELECT seq FROM history WHERE room = ? AND id < ? ORDER BY id DESC LIMIT 1"


class Entry(Protocol):
    """What a page holds: a stored line, :class:`chatroom.model.history.Entry` (which imports this module)."""

    @property
    def room(self) -> str: ...
    @property
    def id(self) -> int: ...
    @property
    def ts(self) -> float: ...
    @property
    def nick(self) -> str: ...
    @property
    def text(self) -> str: ...


class SearchCursor(NamedTuple):
    """Where the next page of a search starts: its ``query``, ``below`` (index lines stored before this
    ``seq``), ``unsaved`` (matching lines not committed when the search began, not shown yet) and ``served``
    (``(room, id)`` of every line the search took from memory, which its index pages skip: a line the writer
    had committed but not reported yet is in both)."""

    query: Query
    below: int
    unsaved: tuple[Entry, ...] = ()
    served: frozenset[tuple[str, int]] = frozenset()


class SearchPage(NamedTuple):
    """One page: ``hits`` (history :class:`~chatroom.model.history.Entry` objects, newest first), ``more``
    (a :class:`SearchCursor` for the next page, or None: no more hits) and ``reached`` (when the page
    stopped at its bounds before finding a full page: the time, Unix seconds, of the oldest line it
    looked at; else None)."""

    hits: list[Entry]
    more: SearchCursor | None
    reached: float | None = None


def run(conn: sqlite3.Connection, start: Query | SearchCursor, rooms: Mapping[str, int], unsaved: Sequence[Entry],
        make: Callable[[Sequence[object]], Entry], *, limit: int = PAGE, scan: int = SCAN,
        budget: float = BUDGET) -> SearchPage:
    """One page of *start* (a new query, or the cursor of the previous page) over the lines of *rooms*
    (readable room name -> its floor: lines with ``id <= floor`` are hidden). *unsaved* are the lines not
    committed yet (oldest first; read for a new query only); *make* builds an entry from the ``history``
    columns. ValueError for *limit* outside 1..:data:`MAX_PAGE`; :class:`~chatroom.model.searchquery.QueryError`
    when SQLite cannot run the query or finds no candidate within *budget*."""
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be an int in 1..{MAX_PAGE}, not {limit!r}")
    if isinstance(start, SearchCursor):
        query, below, waiting, served = start.query, start.below, list(start.unsaved), start.served
    else:
        query = start
        below = int(conn.execute(_INDEXED).fetchone()[0]) + 1
        waiting = [e for e in reversed(unsaved) if _keep(query, e, rooms) and matches(query, e.room, e.nick, e.text)]
        served = frozenset((e.room, e.id) for e in waiting)
    hits = waiting[:limit]
    if len(waiting) > limit:
        return SearchPage(hits, SearchCursor(query, below, tuple(waiting[limit:]), served))
    low, high = _bounds(conn, query, below)
    if low >= high:
        return SearchPage(hits, None)
    deadline = time.monotonic() + budget
    conn.set_progress_handler(lambda: time.monotonic() > deadline, STEPS)
    seq, ts = high, None  # the last candidate looked at
    examined = 0
    try:
        for row in conn.execute(_HITS, (fts_match(query), high, low)):
            entry = make(row[1:])
            if (entry.room, entry.id) not in served and _keep(query, entry, rooms):
                if len(hits) == limit:  # one more: the next page has something
                    return SearchPage(hits, SearchCursor(query, seq, (), served))
                hits.append(entry)
            seq, ts = row[0], entry.ts
            examined += 1
            if examined >= scan:
                break
        else:
            return SearchPage(hits, None)
    except sqlite3.OperationalError as exc:
        if "interrupted" not in str(exc):
            raise QueryError(f"cannot search for that ({exc})") from None
        if ts is None and not hits:
            raise QueryError("this search takes too long: add words, a #room or from:NICK") from None
    finally:
        conn.set_progress_handler(None, 0)
    return SearchPage(hits, SearchCursor(query, seq, (), served), ts)


def _keep(query: Query, entry: Entry, rooms: Mapping[str, int]) -> bool:
    """The exact checks: a readable room above its floor, the query's room, author and bounds."""
    floor = rooms.get(entry.room)
    if floor is None or entry.id <= floor:
        return False
    if query.room is not None and entry.room != query.room:
        return False
    if query.nick is not None and entry.nick.casefold() != query.nick.casefold():
        return False
    if query.before_id is not None and entry.id >= query.before_id:
        return False
    if query.after_id is not None and entry.id <= query.after_id:
        return False
    if query.before_ts is not None and entry.ts >= query.before_ts:
        return False
    return query.after_ts is None or entry.ts >= query.after_ts


def _bounds(conn: sqlite3.Connection, query: Query, below: int) -> tuple[int, int]:
    """``(low, high)``: the index numbers a page reads, ``low <= seq < high``, from the query's bounds
    (dates by a binary search of the stored order, ids by the room's lines)."""
    low, high = 0, below
    if query.room is not None and query.after_id is not None:
        row = conn.execute(_ID_AFTER, (query.room, query.after_id)).fetchone()
        low = max(low, row[0]) if row else high
    if query.room is not None and query.before_id is not None:
        row = conn.execute(_ID_BEFORE, (query.room, query.before_id)).fetchone()
        high = min(high, row[0] + 1) if row else low
    if query.after_ts is not None:
        low = max(low, _seq_at(conn, query.after_ts))
    if query.before_ts is not None:
        high = min(high, _seq_at(conn, query.before_ts))
    return low, high


def _seq_at(conn: sqlite3.Connection, when: float) -> int:
    """The first index number whose line was stored at or after *when* (one past the last if none)."""
    range_row: tuple[int | None, int | None] = conn.execute(_SEQ_RANGE).fetchone()
    first, last = range_row
    if first is None or last is None:
        return 0
    lo, hi = first, last + 1
    while lo < hi:  # ~log2(lines) probes, each one primary-key lookup
        mid = (lo + hi) // 2
        row = conn.execute(_FIRST_FROM, (mid,)).fetchone()
        if row is None or row[1] >= when:
            hi = mid
        else:
            lo = mid + 1
    return lo
