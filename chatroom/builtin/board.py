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

A post the store cannot keep is refused when its ``#`` arrives, and nothing
of it is kept: ``ERROR post too long (...)`` past :data:`MAX_POST_LINES` or
:data:`MAX_POST_BYTES`, ``ERROR post not saved: disk full`` when SQLite
reports ``SQLITE_FULL`` ("database or disk is full"), ``ERROR post not
saved: REASON`` for any other database error. The lines typed after the
failure are still post lines (read and dropped), never chat.

``/post TEXT`` posts the one line TEXT at once. ``/read`` streams every line,
oldest post first, each exactly as posted, then a line ``#``; ``/read N``
does the same for the last N posts (N is 1 to :data:`MAX_READ`, ASCII
digits; anything else is a usage error), and ``-v`` adds a header line with
the number, author and time before each post; an author who was logged in
reads ``alice (verified)`` (:func:`chatroom.author_label`), a guest nick just ``bob``.

Storage (schema version 2, see :data:`MIGRATIONS`): ``posts`` (one row per
post; ``seq``, the post's number on the board, is given when the post is
complete and is NULL while it is being written) and ``lines`` (keyed by
``(post_id, n)``). A post being written is flushed from memory into
``lines`` every :data:`FLUSH_LINES` lines or :data:`FLUSH_BYTES` bytes, so a
long post never sits in memory, and completing it is one small transaction
whatever its size. Posts left half-written by a killed server are deleted at
start-up. A read walks posts by ``seq`` and lines by ``n`` in pages (keyset
pagination: :mod:`chatroom.builtin.boardpages`), so it never holds the board in memory.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field

from chatroom import Command, CommandError, Context, UsageError, hookimpl, migrate, parse_uint, transaction
from chatroom.builtin.boardpages import END, board_range, iter_board

#: Schema migrations of the board's store, applied in order (append only).
MIGRATIONS = [
    """
    CREATE TABLE posts (
        id      INTEGER PRIMARY KEY,
        seq     INTEGER UNIQUE,             -- number on the board; NULL while being written
        author  TEXT    NOT NULL,
        created REAL    NOT NULL,           -- Unix time, seconds
        nlines  INTEGER NOT NULL
    );
    CREATE TABLE lines (
        post_id INTEGER NOT NULL REFERENCES posts(id),
        n       INTEGER NOT NULL,           -- 1, 2, ... within the post
        text    TEXT    NOT NULL,
        PRIMARY KEY (post_id, n)
    ) WITHOUT ROWID;
    """,
    "ALTER TABLE posts ADD COLUMN account TEXT;",  # 2: the author's account if logged in (NULL: a guest)
]

#: A post being written is flushed from memory to the store past this many lines...
FLUSH_LINES = 1000
#: ... or past this many bytes (UTF-8) of text.
FLUSH_BYTES = 1 << 20
#: Largest post accepted, in lines and in bytes of text; a longer one is discarded.
MAX_POST_LINES = 1_000_000
MAX_POST_BYTES = 64 << 20
#: Largest N of ``/read N``.
MAX_READ = 1_000_000


@dataclass
class Draft:
    """A post being written: its row id once flushed (``post_id``), the lines not flushed yet."""

    post_id: int | None = None
    buffer: list[str] = field(default_factory=list)
    buffered_bytes: int = 0
    lines: int = 0
    size: int = 0
    #: Why the post will be refused at its ``#`` (``"post too long ..."``, ``"post not saved: ..."``), or None.
    failure: str | None = None


def not_saved(exc: sqlite3.Error) -> str:
    """The refusal for a post the store failed to keep: ``"post not saved: disk full"`` for
    ``SQLITE_FULL``, else ``"post not saved: <sqlite's message>"``."""
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "database or disk is full" in str(exc):
        return "post not saved: disk full"
    return f"post not saved: {exc}"


def _db(ctx: Context) -> sqlite3.Connection:
    """The board's store, migrated and cleaned of half-written posts on first use."""
    conn = ctx.store
    if not ctx.state.get("ready"):
        migrate(conn, MIGRATIONS)
        with transaction(conn):
            conn.execute("DELETE FROM lines WHERE post_id IN (SELECT id FROM posts WHERE seq IS NULL)")
            conn.execute("DELETE FROM posts WHERE seq IS NULL")
        ctx.state["ready"] = True
    return conn


# -- posting ---------------------------------------------------------------------


def cmd_post(ctx: Context, args: list[str]) -> None:
    """``/post`` enters post mode; ``/post TEXT`` posts one line at once."""
    conn = _db(ctx)
    if args:
        text = args[0]
        if text == END:
            ctx.log.warning("post by %s rejected: a lone #", ctx.nick, extra={"category": "ERROR"})
            raise CommandError('a post line cannot be exactly "#"')
        _commit_post(ctx, conn, Draft(buffer=[text], lines=1, size=len(text.encode())))
        return
    draft = Draft()
    try:
        ctx.capture(lambda c, line: _on_line(c, draft, line), lambda c, reason: _on_end(c, draft, reason),
                    terminator=END)
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
    if draft.failure is not None:
        return
    size = len(line.encode())
    draft.lines += 1
    draft.size += size
    if draft.lines > MAX_POST_LINES or draft.size > MAX_POST_BYTES:
        draft.failure = f"post too long (max {MAX_POST_LINES} lines, {MAX_POST_BYTES} bytes); nothing was kept"
        _discard(ctx, draft)
        return
    draft.buffer.append(line)
    draft.buffered_bytes += size
    if len(draft.buffer) >= FLUSH_LINES or draft.buffered_bytes >= FLUSH_BYTES:
        try:
            with transaction(_db(ctx)) as conn:
                _write_lines(ctx, conn, draft)
        except sqlite3.Error as exc:
            _rollback_open(_db(ctx))
            ctx.log.error("post by %s: cannot save draft: %s", ctx.nick, exc)
            draft.failure = not_saved(exc)
            _discard(ctx, draft)


def _on_end(ctx: Context, draft: Draft, reason: str) -> None:
    """The client left in mid-post: keep nothing."""
    _discard(ctx, draft)
    ctx.log.info("post by %s abandoned: %s", ctx.nick, reason)


def _write_lines(ctx: Context, conn: sqlite3.Connection, draft: Draft) -> None:
    """Move *draft*'s buffered lines into ``lines`` (inside the caller's transaction)."""
    if draft.post_id is None:
        draft.post_id = conn.execute(
            "INSERT INTO posts(seq, author, created, nlines, account) VALUES (NULL, ?, ?, 0, ?)",
            (ctx.nick, time.time(), ctx.account),
        ).lastrowid
    first = draft.lines - len(draft.buffer) + 1
    conn.executemany(
        "INSERT INTO lines(post_id, n, text) VALUES (?, ?, ?)",
        ((draft.post_id, n, text) for n, text in enumerate(draft.buffer, first)),
    )
    draft.buffer.clear()
    draft.buffered_bytes = 0


def _discard(ctx: Context, draft: Draft) -> None:
    """Forget *draft*: its buffer, and the lines already flushed."""
    draft.buffer.clear()
    draft.buffered_bytes = 0
    if draft.post_id is not None:
        try:
            with transaction(_db(ctx)) as conn:
                conn.execute("DELETE FROM lines WHERE post_id = ?", (draft.post_id,))
                conn.execute("DELETE FROM posts WHERE id = ? AND seq IS NULL", (draft.post_id,))
        except sqlite3.Error as exc:  # a full disk may refuse even a delete: retried at the next post
            _rollback_open(_db(ctx))
            ctx.log.error("cannot delete half-written post %d: %s", draft.post_id, exc)
            ctx.state.setdefault("orphans", set()).add(draft.post_id)
        draft.post_id = None


def _rollback_open(conn: sqlite3.Connection) -> None:
    """Roll back a transaction that a failed ``COMMIT`` left open.

    SQLite may or may not roll back by itself when ``COMMIT`` fails
    (``SQLITE_FULL``, ``SQLITE_IOERR``...), and :func:`chatroom.model.store.transaction`
    only rolls back when its block raises; an open transaction would make
    every later write fail with "cannot start a transaction within a transaction".
    """
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def _purge_orphans(ctx: Context, conn: sqlite3.Connection) -> None:
    """Delete the half-written posts whose discard failed (inside the caller's transaction).

    They are never shown (their ``seq`` is NULL) and start-up deletes them too;
    this frees their space without waiting for a restart.
    """
    orphans: set[int] = ctx.state.get("orphans", set())
    for post_id in orphans:
        conn.execute("DELETE FROM lines WHERE post_id = ?", (post_id,))
        conn.execute("DELETE FROM posts WHERE id = ? AND seq IS NULL", (post_id,))


def _finish(ctx: Context, draft: Draft) -> None:
    """The lone ``#``: commit the post, then reply ``OK`` (or ``ERROR`` if nothing was kept)."""
    if draft.failure is not None:
        ctx.log.warning("post by %s rejected: %s", ctx.nick, draft.failure, extra={"category": "ERROR"})
        ctx.reply(f"ERROR {draft.failure}")
        return
    if draft.lines == 0:
        ctx.reply("OK")  # an empty post: nothing to keep
        return
    try:
        _commit_post(ctx, _db(ctx), draft)
    except CommandError as exc:
        ctx.reply(f"ERROR {exc}")


def _commit_post(ctx: Context, conn: sqlite3.Connection, draft: Draft) -> None:
    """Complete *draft* as the board's next post in one transaction, then reply ``OK``.

    Raises CommandError (nothing kept) if the database refuses.
    """
    orphans: set[int] = ctx.state.get("orphans", set())
    try:
        with transaction(conn):
            _purge_orphans(ctx, conn)
            fields = (ctx.nick, time.time(), draft.lines, ctx.account)
            if draft.post_id is None:  # never flushed: one row, numbered at once
                draft.post_id = conn.execute(
                    "INSERT INTO posts(seq, author, created, nlines, account)"
                    " VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM posts), ?, ?, ?, ?)",
                    fields,
                ).lastrowid
            else:
                conn.execute(
                    "UPDATE posts SET seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM posts),"
                    " author = ?, created = ?, nlines = ?, account = ? WHERE id = ?",
                    (*fields, draft.post_id),
                )
            _write_lines(ctx, conn, draft)
            seq = conn.execute("SELECT seq FROM posts WHERE id = ?", (draft.post_id,)).fetchone()[0]
    except sqlite3.Error as exc:
        _rollback_open(conn)
        ctx.log.error("post by %s not saved: %s", ctx.nick, exc)
        _discard(ctx, draft)
        raise CommandError(not_saved(exc)) from None
    orphans.clear()
    ctx.log.info("post %d by %s: %d lines, %d bytes", seq, ctx.nick, draft.lines, draft.size)
    ctx.reply("OK")


# -- reading ---------------------------------------------------------------------


def cmd_read(ctx: Context, args: list[str]) -> None:
    """``/read [-v] [N]``: stream the board (or its last N posts), then ``#``."""
    verbose = False
    count: int | None = None
    for arg in args:
        if arg in ("-v", "--verbose"):
            verbose = True
        elif count is None and (n := parse_uint(arg, max_digits=7, minimum=1, maximum=MAX_READ)) is not None:
            count = n
        else:
            raise UsageError(READ_USAGE)
    conn = _db(ctx)
    first, last = board_range(conn, count)
    ctx.stream(iter_board(conn, first, last, verbose=verbose))


# -- hooks -------------------------------------------------------------------------

POST_USAGE = "/post [TEXT]"
READ_USAGE = f"/read [-v] [N] (N: the last N posts, 1 to {MAX_READ})"


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
            summary='Post lines to the board until a lone "#" (then OK); /quit aborts the post and disconnects'
            ' you (nothing of the post is kept; you leave the chat as with /quit), //quit posts "/quit"',
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
