"""The bulletin board: ``/post`` and ``/read``, kept in the plugin's SQLite store.

A built-in plugin written against the same hooks and :class:`Context` as any
third-party plugin. The origin's transcript works verbatim::

    /post
    Welcome socket programming
    Text#!
    more text.
    #
    -> OK
    /read
    -> Welcome socket programming
    -> Text#!
    -> more text.
    -> #

Post mode (``/post``): every following line is one line of the post, even
one that looks like a command or contains ``#``; a line that is exactly
``#`` ends it, the post is committed, then the server replies ``OK``. Post
lines are never broadcast. Exceptions, so nobody is trapped:

* a line that is exactly ``/quit`` (any case) aborts the post - nothing of
  it is kept - and runs ``/quit``; a line ``//quit`` posts the literal line
  ``/quit``;
* a disconnect in mid-post keeps nothing of it.

``/post TEXT`` posts the one line TEXT at once. ``/read`` streams every line,
oldest post first, each exactly as posted, then a line ``#``; ``/read N``
does the same for the last N posts, and ``-v`` adds a header line with the
number, author and time before each post.

Storage (schema version 1, see :data:`MIGRATIONS`): ``posts`` (one row per
post), ``lines`` (one row per line; a post's lines have consecutive ids, so
a read is a keyset scan by ``lines.id``) and ``drafts`` (lines of posts still
being written, flushed every :data:`FLUSH_LINES` lines or
:data:`FLUSH_BYTES` bytes so a long post never sits in memory). Leftover
drafts from a killed server are deleted at start-up.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from chatroom.commands import Command, CommandError, UsageError
from chatroom.context import Context
from chatroom.hookspecs import hookimpl
from chatroom.store import migrate, transaction

#: Schema migrations of the board's store, applied in order (append only).
MIGRATIONS = [
    """
    CREATE TABLE posts (
        id      INTEGER PRIMARY KEY,        -- in order of completion
        author  TEXT    NOT NULL,
        created REAL    NOT NULL,           -- Unix time, seconds
        nlines  INTEGER NOT NULL
    );
    CREATE TABLE lines (
        id      INTEGER PRIMARY KEY,        -- consecutive within a post
        post_id INTEGER NOT NULL REFERENCES posts(id),
        text    TEXT    NOT NULL
    );
    CREATE INDEX lines_post ON lines(post_id);
    CREATE TABLE drafts (
        id      INTEGER PRIMARY KEY,
        draft   INTEGER NOT NULL,           -- one per post being written
        text    TEXT    NOT NULL
    );
    CREATE INDEX drafts_draft ON drafts(draft);
    """,
]

#: Lines fetched per query while streaming a ``/read``.
PAGE = 500
#: A post being written is flushed from memory to ``drafts`` past this many lines...
FLUSH_LINES = 1000
#: ... or past this many bytes (UTF-8) of text.
FLUSH_BYTES = 1 << 20
#: Largest post accepted, in lines and in bytes of text; a longer one is discarded.
MAX_POST_LINES = 1_000_000
MAX_POST_BYTES = 64 << 20
#: The line that ends a post, and ends a ``/read``.
END = "#"


@dataclass
class Draft:
    """A post being written by one client: lines in memory plus lines flushed to ``drafts``."""

    key: int
    buffer: list[str] = field(default_factory=list)
    buffered_bytes: int = 0
    flushed: int = 0
    lines: int = 0
    size: int = 0
    overflow: bool = False


def _db(ctx: Context) -> sqlite3.Connection:
    """The board's store, migrated and cleaned of stale drafts on first use."""
    conn = ctx.store
    if not ctx.state.get("ready"):
        migrate(conn, MIGRATIONS)
        conn.execute("DELETE FROM drafts")
        ctx.state["ready"] = True
        ctx.state["draft_ids"] = itertools.count(1)
    return conn


# -- posting ---------------------------------------------------------------------


def cmd_post(ctx: Context, args: list[str]) -> None:
    """``/post`` enters post mode; ``/post TEXT`` posts one line at once."""
    conn = _db(ctx)
    if args:
        text = args[0]
        if text == END:
            _reject(ctx, 'a post line cannot be exactly "#"')
        _commit_post(ctx, conn, Draft(key=0, buffer=[text], lines=1, size=len(text.encode())))
        return
    draft = Draft(key=next(ctx.state["draft_ids"]))
    try:
        ctx.capture(lambda c, line: _on_line(c, draft, line), lambda c, reason: _on_end(c, draft, reason))
    except RuntimeError as exc:
        raise CommandError(f"cannot post now: {exc}") from None




def _on_line(ctx: Context, draft: Draft, line: str) -> None:
    """One line typed in post mode."""
    if line == END:
        ctx.release()
        _finish(ctx, draft)
        return
    if line.lower() == "/quit":
        ctx.release()
        _discard(ctx, draft)
        ctx.log.info("post by %s abandoned: /quit in mid-post", ctx.nick)
        ctx.dispatch(line)
        return
    if line.lower() == "//quit":
        line = line[1:]
    if draft.overflow:
        return
    size = len(line.encode())
    draft.lines += 1
    draft.size += size
    if draft.lines > MAX_POST_LINES or draft.size > MAX_POST_BYTES:
        draft.overflow = True
        _discard(ctx, draft)
        return
    draft.buffer.append(line)
    draft.buffered_bytes += size
    if len(draft.buffer) >= FLUSH_LINES or draft.buffered_bytes >= FLUSH_BYTES:
        try:
            _flush(_db(ctx), draft)
        except sqlite3.Error as exc:
            ctx.log.error("post by %s: cannot save draft: %s", ctx.nick, exc)
            draft.overflow = True
            _discard(ctx, draft)


def _on_end(ctx: Context, draft: Draft, reason: str) -> None:
    """The client left in mid-post: keep nothing."""
    _discard(ctx, draft)
    ctx.log.info("post by %s abandoned: %s", ctx.nick, reason)


def _flush(conn: sqlite3.Connection, draft: Draft) -> None:
    with transaction(conn):
        conn.executemany(
            "INSERT INTO drafts(draft, text) VALUES (?, ?)", ((draft.key, text) for text in draft.buffer)
        )
    draft.flushed += len(draft.buffer)
    draft.buffer.clear()
    draft.buffered_bytes = 0


def _discard(ctx: Context, draft: Draft) -> None:
    draft.buffer.clear()
    draft.buffered_bytes = 0
    if draft.flushed:
        try:
            _db(ctx).execute("DELETE FROM drafts WHERE draft = ?", (draft.key,))
        except sqlite3.Error as exc:  # stale rows are deleted at the next start-up
            ctx.log.error("cannot delete draft %d: %s", draft.key, exc)
        draft.flushed = 0


def _finish(ctx: Context, draft: Draft) -> None:
    """The lone ``#``: commit the post, then reply ``OK`` (or ``ERROR`` if nothing was kept)."""
    if draft.overflow:
        ctx.log.warning(
            "post by %s rejected: over %d lines or %d bytes", ctx.nick, MAX_POST_LINES, MAX_POST_BYTES,
            extra={"category": "ERROR"},
        )
        ctx.reply(f"ERROR post too long (max {MAX_POST_LINES} lines, {MAX_POST_BYTES} bytes); nothing was kept")
        return
    if draft.lines == 0:
        ctx.reply("OK")  # an empty post: nothing to keep
        return
    try:
        _commit_post(ctx, _db(ctx), draft)
    except CommandError as exc:
        ctx.reply(f"ERROR {exc}")


def _commit_post(ctx: Context, conn: sqlite3.Connection, draft: Draft) -> None:
    """Store *draft* as one post in one transaction, then reply ``OK``.

    Raises CommandError (nothing stored) if the database refuses.
    """
    try:
        with transaction(conn):
            cur = conn.execute(
                "INSERT INTO posts(author, created, nlines) VALUES (?, ?, ?)", (ctx.nick, time.time(), draft.lines)
            )
            post_id = cur.lastrowid
            if draft.flushed:
                conn.execute(
                    "INSERT INTO lines(post_id, text) SELECT ?, text FROM drafts WHERE draft = ? ORDER BY id",
                    (post_id, draft.key),
                )
                conn.execute("DELETE FROM drafts WHERE draft = ?", (draft.key,))
            conn.executemany("INSERT INTO lines(post_id, text) VALUES (?, ?)", ((post_id, t) for t in draft.buffer))
    except sqlite3.Error as exc:
        ctx.log.error("post by %s not saved: %s", ctx.nick, exc)
        _discard(ctx, draft)
        raise CommandError(f"post not saved: {exc}") from None
    draft.buffer.clear()
    draft.flushed = 0
    ctx.log.info("post %d by %s: %d lines, %d bytes", post_id, ctx.nick, draft.lines, draft.size)
    ctx.reply("OK")


def _reject(ctx: Context, reason: str) -> None:
    ctx.log.warning("post by %s rejected: %s", ctx.nick, reason, extra={"category": "ERROR"})
    raise CommandError(reason)


# -- reading ---------------------------------------------------------------------


def cmd_read(ctx: Context, args: list[str]) -> None:
    """``/read [-v] [N]``: stream the board (or its last N posts), then ``#``."""
    verbose = False
    count: int | None = None
    for arg in args:
        if arg in ("-v", "--verbose"):
            verbose = True
        elif arg.isdigit() and int(arg) > 0 and count is None:
            count = int(arg)
        else:
            raise UsageError(READ_USAGE)
    conn = _db(ctx)
    first, last = board_range(conn, count)
    ctx.stream(iter_board(conn, first, last, verbose=verbose))


def board_range(conn: sqlite3.Connection, count: int | None = None) -> tuple[int, int]:
    """``(first, last)`` line ids of the whole board, or of its last *count* posts.

    ``last`` is fixed now, so a read in progress does not grow with posts
    made after it started. ``(1, 0)`` for an empty board.
    """
    last = conn.execute("SELECT COALESCE(MAX(id), 0) FROM lines").fetchone()[0]
    first = 1
    if count is not None:
        row = conn.execute("SELECT id FROM posts ORDER BY id DESC LIMIT 1 OFFSET ?", (count - 1,)).fetchone()
        if row is not None:
            first = conn.execute("SELECT MIN(id) FROM lines WHERE post_id = ?", (row[0],)).fetchone()[0] or 1
    return first, last


def iter_board(conn: sqlite3.Connection, first: int, last: int, *, verbose: bool = False) -> Iterator[str]:
    """Yield the board's lines with ids in ``[first, last]``, then ``"#"``.

    Keyset pagination: one short query per :data:`PAGE` lines, no cursor held
    between pages, so memory stays flat for any board size and the store is
    free between pages. With *verbose*, each post starts with a line
    ``-- post ID by AUTHOR at YYYY-MM-DD HH:MM:SS UTC (N lines) --``.
    """
    after = first - 1
    post = None
    while after < last:
        if verbose:
            rows = conn.execute(
                "SELECT l.id, l.text, l.post_id, p.author, p.created, p.nlines FROM lines l"
                " JOIN posts p ON p.id = l.post_id WHERE l.id > ? AND l.id <= ? ORDER BY l.id LIMIT ?",
                (after, last, PAGE),
            ).fetchall()
        else:
            rows = conn.execute(
                "SELECT id, text FROM lines WHERE id > ? AND id <= ? ORDER BY id LIMIT ?", (after, last, PAGE)
            ).fetchall()
        if not rows:
            break
        for row in rows:
            if verbose and row[2] != post:
                post = row[2]
                yield f"-- post {post} by {row[3]} at {_utc(row[4])} ({row[5]} lines) --"
            yield row[1]
        after = rows[-1][0]
    yield END


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


# -- hooks -------------------------------------------------------------------------

POST_USAGE = "/post [TEXT]"
READ_USAGE = "/read [-v] [N]"


@hookimpl
def startup(ctx: Context) -> None:
    """Migrate the store and drop drafts a killed server left behind."""
    _db(ctx)


@hookimpl
def register_commands() -> list[Command]:
    return [
        Command(
            "post",
            cmd_post,
            usage=POST_USAGE,
            summary='Post lines to the board until a lone "#" (then OK); /quit aborts the post, //quit posts "/quit"',
            raw=True,
        ),
        Command(
            "read",
            cmd_read,
            usage=READ_USAGE,
            summary='Read the board (the last N posts; -v: with author and time), ending with "#"',
            max_args=2,
        ),
    ]
