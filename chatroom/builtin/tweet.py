"""ttweet: short messages with hashtags, kept in the plugin's SQLite store.

Commands (the origin's ``-u``/``-d`` options become ``/tweet`` options)::

    /tweet -u MESSAGE       store a tweet (1-150 characters, quoted or not) -> OK
    /tweet -d               the last tweet's text, or exactly "Empty Message"
    /tweet -d #tag          the last tweet carrying #tag, or "Empty Message"
    /tweets [N] [#tag]      the last N (default 10, 1 to 1000) tweets with authors, then "OK n tweets"
    /subscribe #tag         push later tweets carrying #tag: "NICK (tweet): TEXT"
    /subscribe              list this connection's subscriptions
    /unsubscribe #tag       stop that

An empty or too long message gets ``ERROR ...`` with the reason and stores
nothing. Hashtags are ``#`` followed by letters, digits or ``_`` (not after a
letter or digit, so ``C#`` is none), matched case-insensitively. Subscriptions
belong to the connection (kept in ``ctx.state``, at most
:data:`MAX_SUBSCRIPTIONS`), are dropped when it leaves, and the author of a
tweet is not pushed their own tweet.

Storage (schema version 2, :data:`MIGRATIONS`): ``tweets`` (with the
author's account when logged in) and ``tags`` (one row per distinct hashtag
of a tweet). A tweet is committed before
``OK`` is sent.
"""

from __future__ import annotations

import re
import shlex
import sqlite3
import time
from typing import Any

from chatroom import Command, CommandError, Context, UsageError, author_label, hookimpl, migrate, parse_uint, transaction

MIGRATIONS = [
    """
    CREATE TABLE tweets (
        id      INTEGER PRIMARY KEY,
        author  TEXT    NOT NULL,
        created REAL    NOT NULL,           -- Unix time, seconds
        text    TEXT    NOT NULL
    );
    CREATE TABLE tags (
        tag      TEXT    NOT NULL,          -- case-folded, without '#'
        tweet_id INTEGER NOT NULL REFERENCES tweets(id),
        PRIMARY KEY (tag, tweet_id)
    ) WITHOUT ROWID;
    """,
    # 2: the author's account when they were logged in (NULL: a guest nick).
    "ALTER TABLE tweets ADD COLUMN account TEXT;",
]

#: Longest tweet, in characters (code points), as in the origin.
MAX_TWEET = 150
#: Reply of ``/tweet -d`` when there is no tweet, exactly as in the origin.
EMPTY = "Empty Message"
#: Hashtags one connection may follow at once.
MAX_SUBSCRIPTIONS = 20
#: Default and largest count for ``/tweets``.
DEFAULT_LIST = 10
MAX_LIST = 1000

_HASHTAG = re.compile(r"(?<![\w#])#(\w+)")
_TAG_ARG = re.compile(r"#?(\w+)")

TWEET_USAGE = "/tweet -u MESSAGE | -d [#tag] | -l [N] [#tag]"
TWEETS_USAGE = "/tweets [N] [#tag]"


def hashtags(text: str) -> list[str]:
    """The distinct hashtags in *text*, case-folded, without ``#``, in order of appearance."""
    return list(dict.fromkeys(m.group(1).casefold() for m in _HASHTAG.finditer(text)))


def parse_tag(arg: str) -> str:
    """``"#Cats"`` or ``"cats"`` -> ``"cats"``; raises CommandError for anything else."""
    m = _TAG_ARG.fullmatch(arg)
    if m is None:
        raise CommandError(f"not a hashtag: {arg!r} (use #word)")
    return m.group(1).casefold()


def parse_message(text: str) -> str:
    """The message of ``/tweet -u``: one quoted argument is unquoted, anything else is taken as typed.

    ``'"hello world"'`` -> ``hello world``; ``hello world`` -> ``hello world``;
    ``don't`` -> ``don't`` (unbalanced quotes are text).
    """
    try:
        parts = shlex.split(text)
    except ValueError:
        return text
    if len(parts) == 1 and text[:1] in "\"'":
        return parts[0]
    return text


def check_message(message: str) -> str | None:
    """Why *message* cannot be a tweet, or None when it can."""
    if not message.strip():
        return "empty message: a tweet needs 1 to 150 characters"
    if len(message) > MAX_TWEET:
        return f"message too long: {len(message)} characters, max {MAX_TWEET}"
    return None


def _db(ctx: Context) -> sqlite3.Connection:
    conn = ctx.store
    if not ctx.state.get("ready"):
        migrate(conn, MIGRATIONS)
        ctx.state["ready"] = True
    return conn


def _subs(ctx: Context) -> tuple[dict[str, dict[int, Any]], dict[int, set[str]]]:
    """``(tag -> {id(client): client}, id(client) -> {tags})`` for this server."""
    state = ctx.state
    if "by_tag" not in state:
        state["by_tag"] = {}
        state["by_client"] = {}
    return state["by_tag"], state["by_client"]


# -- commands --------------------------------------------------------------------


def cmd_tweet(ctx: Context, args: list[str]) -> None:
    """``/tweet -u MESSAGE``, ``/tweet -d [#tag]``, ``/tweet -l [N] [#tag]``."""
    text = args[0] if args else ""
    option, _, rest = text.partition(" ")
    rest = rest.strip()
    if option == "-u":
        upload(ctx, parse_message(rest))
    elif option == "-d":
        if not rest:
            ctx.reply(last_tweet(_db(ctx)))
        elif len(rest.split()) == 1:
            ctx.reply(last_tweet(_db(ctx), parse_tag(rest)))
        else:
            raise UsageError(TWEET_USAGE)
    elif option == "-l":
        list_tweets(ctx, rest.split())
    else:
        raise UsageError(TWEET_USAGE)


def cmd_tweets(ctx: Context, args: list[str]) -> None:
    """``/tweets [N] [#tag]``."""
    list_tweets(ctx, args)


def upload(ctx: Context, message: str) -> None:
    """Store *message* as a tweet by the caller, reply ``OK``, push it to subscribers.

    Raises CommandError (nothing stored) when it is empty or too long, or
    when the store refuses it (``tweet not saved: disk full`` for ``SQLITE_FULL``).
    """
    reason = check_message(message)
    if reason is not None:
        ctx.log.warning("tweet from %s rejected: %s", ctx.nick, reason, extra={"category": "ERROR"})
        raise CommandError(reason)
    tags = hashtags(message)
    conn = _db(ctx)
    try:
        with transaction(conn):
            cur = conn.execute(
                "INSERT INTO tweets(author, created, text, account) VALUES (?, ?, ?, ?)",
                (ctx.nick, time.time(), message, ctx.account),
            )
            tweet_id = cur.lastrowid
            conn.executemany("INSERT INTO tags(tag, tweet_id) VALUES (?, ?)", ((t, tweet_id) for t in tags))
    except sqlite3.Error as exc:
        if conn.in_transaction:  # a failed COMMIT may leave it open; every later tweet would fail
            conn.execute("ROLLBACK")
        ctx.log.error("tweet from %s not saved: %s", ctx.nick, exc)
        full = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "database or disk is full" in str(exc)
        raise CommandError(f"tweet not saved: {'disk full' if full else exc}") from None
    ctx.log.info("tweet %d by %s: %s", tweet_id, ctx.nick, message)
    ctx.reply("OK")
    _push(ctx, message, tags)


def _push(ctx: Context, message: str, tags: list[str]) -> None:
    by_tag, _ = _subs(ctx)
    receivers: dict[int, Any] = {}
    for tag in tags:
        receivers.update(by_tag.get(tag, {}))
    if ctx.client is not None:
        receivers.pop(id(ctx.client), None)
    line = f"{ctx.nick} (tweet): {message}"
    for client in receivers.values():
        ctx.send(client, line)


def last_tweet(conn: sqlite3.Connection, tag: str | None = None) -> str:
    """The text of the last tweet (carrying *tag*, if given), or :data:`EMPTY`."""
    if tag is None:
        row = conn.execute("SELECT text FROM tweets ORDER BY id DESC LIMIT 1").fetchone()
    else:
        row = conn.execute(
            "SELECT t.text FROM tags g JOIN tweets t ON t.id = g.tweet_id WHERE g.tag = ?"
            " ORDER BY g.tweet_id DESC LIMIT 1",
            (tag,),
        ).fetchone()
    return row[0] if row else EMPTY


def recent_tweets(conn: sqlite3.Connection, count: int,
                  tag: str | None = None) -> list[tuple[int, str, float, str, str | None]]:
    """The last *count* tweets (carrying *tag*), oldest first, as ``(id, author, created, text, account)``
    (``account``: the author's account if they were logged in, else None)."""
    if tag is None:
        rows = conn.execute(
            "SELECT id, author, created, text, account FROM tweets ORDER BY id DESC LIMIT ?", (count,)
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT t.id, t.author, t.created, t.text, t.account FROM tags g JOIN tweets t ON t.id = g.tweet_id"
            " WHERE g.tag = ? ORDER BY g.tweet_id DESC LIMIT ?",
            (tag, count),
        ).fetchall()
    return rows[::-1]


def list_tweets(ctx: Context, args: list[str]) -> None:
    """Reply one line per recent tweet, ``tweet ID by AUTHOR at TIME: TEXT``, then ``OK n tweets``
    (an author who was logged in: ``alice (verified)``, see :func:`chatroom.author_label`).

    *args* are ``[N] [#tag]`` in any order; N is 1 to :data:`MAX_LIST` in
    ASCII digits. Raises UsageError for anything else (``²``, ``0``, 5,000
    digits, two counts, two tags).
    """
    count, tag = None, None
    for arg in args:
        if count is None and (n := parse_uint(arg, max_digits=4, minimum=1, maximum=MAX_LIST)) is not None:
            count = n
        elif arg.startswith("#") and tag is None:
            tag = parse_tag(arg)
        else:
            raise UsageError(TWEETS_USAGE + f" (N at most {MAX_LIST})")
    rows = recent_tweets(_db(ctx), count or DEFAULT_LIST, tag)
    for tweet_id, author, created, text, account in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(created))
        ctx.reply(f"tweet {tweet_id} by {author_label(author, account)} at {when}: {text}")
    ctx.reply(f"OK {len(rows)} tweet{'s' if len(rows) != 1 else ''}")


def cmd_subscribe(ctx: Context, args: list[str]) -> None:
    """``/subscribe #tag`` (or no argument: list the subscriptions)."""
    by_tag, by_client = _subs(ctx)
    key = id(ctx.client)
    mine = by_client.get(key, set())
    if not args:
        listed = " ".join("#" + t for t in sorted(mine))
        ctx.reply(f"OK your subscriptions: {listed}" if mine else "OK no subscriptions")
        return
    tag = parse_tag(args[0])
    if tag in mine:
        ctx.reply(f"OK already subscribed to #{tag}")
        return
    if len(mine) >= MAX_SUBSCRIPTIONS:
        raise CommandError(f"too many subscriptions (max {MAX_SUBSCRIPTIONS}); /unsubscribe one first")
    by_client.setdefault(key, set()).add(tag)
    by_tag.setdefault(tag, {})[key] = ctx.client
    ctx.log.info("%s subscribed to #%s", ctx.nick, tag)
    ctx.reply(f"OK subscribed to #{tag}")


def cmd_unsubscribe(ctx: Context, args: list[str]) -> None:
    """``/unsubscribe #tag``."""
    by_tag, by_client = _subs(ctx)
    key = id(ctx.client)
    tag = parse_tag(args[0])
    mine = by_client.get(key, set())
    if tag not in mine:
        raise CommandError(f"not subscribed to #{tag}")
    _drop(by_tag, by_client, key, [tag])
    ctx.reply(f"OK unsubscribed from #{tag}")


def _drop(by_tag: dict[str, dict[int, Any]], by_client: dict[int, set[str]], key: int, tags: list[str]) -> None:
    mine = by_client.get(key, set())
    for tag in tags:
        mine.discard(tag)
        followers = by_tag.get(tag, {})
        followers.pop(key, None)
        if not followers:
            by_tag.pop(tag, None)
    if not mine:
        by_client.pop(key, None)


# -- hooks -------------------------------------------------------------------------


@hookimpl
def startup(ctx: Context) -> None:
    """Migrate the store."""
    _db(ctx)


@hookimpl
def client_left(ctx: Context, reason: str) -> None:
    """Drop the leaving connection's subscriptions."""
    by_tag, by_client = _subs(ctx)
    key = id(ctx.client)
    _drop(by_tag, by_client, key, list(by_client.get(key, ())))


@hookimpl
def register_commands() -> list[Command]:
    return [
        Command(
            "tweet",
            cmd_tweet,
            usage=TWEET_USAGE,
            summary='Tweet (-u, max 150 characters), get the last tweet (-d [#tag]; "Empty Message" if none), list (-l)',
            raw=True,
        ),
        Command("tweets", cmd_tweets, usage=TWEETS_USAGE, summary="List the last N tweets with authors", max_args=2),
        Command(
            "subscribe",
            cmd_subscribe,
            usage="/subscribe [#tag]",
            summary="Receive later tweets carrying #tag (no argument: list yours)",
            max_args=1,
        ),
        Command(
            "unsubscribe", cmd_unsubscribe, usage="/unsubscribe #tag", summary="Stop receiving #tag", min_args=1, max_args=1
        ),
    ]
