"""The bulletin board's reading side: its posts as lines, paged (the ``board`` built-in's ``/read``).

A read walks posts by ``seq`` and lines by ``n`` in pages (keyset pagination) and holds no cursor between
pages, so it never holds the board in memory and the store is free between pages; the schema is
:data:`chatroom.builtin.board.MIGRATIONS`. Generators run on the loop thread (``ctx.stream`` pulls them).
"""

from __future__ import annotations

import itertools
import operator
import sqlite3
import time
from collections.abc import Iterator

from chatroom import author_label

__all__ = ["END", "PAGE", "board_range", "iter_board"]

#: Lines (about) fetched per query while streaming a ``/read``.
PAGE = 500
#: The line that ends a ``/read`` (and a post).
END = "#"


def board_range(conn: sqlite3.Connection, count: int | None = None) -> tuple[int, int]:
    """``(first, last)`` post numbers (``seq``) of the whole board, or of its last *count* posts.

    ``last`` is fixed now, so a read in progress does not grow with posts
    completed after it started. ``(1, 0)`` for an empty board.
    """
    last = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM posts").fetchone()[0]
    first = 1
    if count is not None:
        row = conn.execute(
            "SELECT seq FROM posts WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1 OFFSET ?", (count - 1,)
        ).fetchone()
        first = row[0] if row else 1
    return first, last


Post = tuple[int, int, str, float, int, str | None]  # (id, seq, author, created, nlines, account)


def iter_board(conn: sqlite3.Connection, first: int, last: int, *, verbose: bool = False) -> Iterator[str]:
    """Yield the lines of posts number *first* to *last*, oldest first, then ``"#"``.

    Keyset pagination: posts are fetched :data:`PAGE` at a time by ``seq``;
    the lines of small posts are fetched together, about :data:`PAGE` per
    query, and a long post's lines :data:`PAGE` at a time by ``n``. No cursor
    is held between pages, so memory stays flat for any board size and the
    store is free between pages. With *verbose*, each post starts with a line
    ``-- post SEQ by AUTHOR at YYYY-MM-DD HH:MM:SS UTC (N lines) --``.
    """
    after = first - 1
    while after < last:
        posts: list[Post] = conn.execute(
            "SELECT id, seq, author, created, nlines, account FROM posts WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
            (after, last, PAGE),
        ).fetchall()
        if not posts:
            break
        batch: list[Post] = []
        budget = 0
        for post in posts:
            if post[4] > PAGE:
                yield from _small_posts(conn, batch, verbose)
                batch, budget = [], 0
                yield from _long_post(conn, post, verbose)
                continue
            batch.append(post)
            budget += post[4]
            if budget >= PAGE:
                yield from _small_posts(conn, batch, verbose)
                batch, budget = [], 0
        yield from _small_posts(conn, batch, verbose)
        after = posts[-1][1]
    yield END


def _small_posts(conn: sqlite3.Connection, posts: list[Post], verbose: bool) -> Iterator[str]:
    """The lines of *posts* (each at most about :data:`PAGE` lines), in their order, in one query."""
    if not posts:
        return
    ids = [p[0] for p in posts]
    rows = conn.execute(
        f"SELECT post_id, text FROM lines WHERE post_id IN ({','.join('?' * len(ids))}) ORDER BY post_id, n", ids
    ).fetchall()
    if not verbose and all(a < b for a, b in itertools.pairwise(ids)):
        yield from map(_text, rows)  # the usual case: row ids in board order, no regrouping
        return
    by_post: dict[int, list[str]] = {}
    for post_id, text in rows:
        by_post.setdefault(post_id, []).append(text)
    for post in posts:
        if verbose:
            yield _header(post)
        yield from by_post.get(post[0], ())


def _long_post(conn: sqlite3.Connection, post: Post, verbose: bool) -> Iterator[str]:
    """The lines of one long post, :data:`PAGE` per query."""
    if verbose:
        yield _header(post)
    n = 0
    while True:
        rows = conn.execute(
            "SELECT n, text FROM lines WHERE post_id = ? AND n > ? ORDER BY n LIMIT ?", (post[0], n, PAGE)
        ).fetchall()
        yield from map(_text, rows)
        if len(rows) < PAGE:
            return
        n = rows[-1][0]


_text = operator.itemgetter(1)


def _header(post: Post) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(post[3]))
    return f"-- post {post[1]} by {author_label(post[2], post[5])} at {when} ({post[4]} lines) --"
