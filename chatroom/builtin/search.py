"""Built-in ``/search``: full-text search of the history of every room you may read, newest first, paged.

``/search [#room] [from:NICK] [before:ID|DATE] [after:ID|DATE] WORDS`` answers with one line per hit,
``[#lobby 42 2026-12-01 23:14] alice: I love café`` (room, id, time, the line), then ``OK search N hits``;
``(more: /search --more)`` in that line means ``/search --more`` gives the next page. The query
language, the access rule (only rooms you may read, checked again on every page) and the JSON ``hit``
events of the web page are in docs/protocol.md ("Search"). Written against the public plugin API only.

Searching costs the server's loop time, so each connection has a budget of it (a token bucket of
seconds: :data:`BURST` at once, then :data:`SHARE` of every second), and so has the server as a whole
(:data:`SERVER_BURST`, :data:`SERVER_SHARE`): a client, or many, that search without pause are told to
wait instead of slowing the rooms.
"""

from __future__ import annotations

import time

from chatroom import CommandError, Command, Context, SearchCursor, UsageError, hookimpl

USAGE = "/search [#room] [from:NICK] [before:ID|DATE] [after:ID|DATE] WORDS | /search --more"
#: Hits per page.
PAGE = 20
#: Seconds of searching one connection may spend at once, and the share of each second it gets back.
BURST, SHARE = 0.5, 0.1
#: The same for all connections together.
SERVER_BURST, SERVER_SHARE = 2.0, 0.3


def search(ctx: Context, args: list[str]) -> None:
    """``/search QUERY``: the first page of hits; ``/search --more``: the next page of the last search."""
    assert ctx.client is not None
    text = ctx.text.strip()
    cursors: dict[int, SearchCursor] = ctx.state.setdefault("cursors", {})
    if not text:
        raise UsageError(USAGE)
    start = cursors.get(ctx.client.id) if text == "--more" else text
    if start is None:
        raise CommandError("no search to go on with: /search WORDS")
    buckets: dict[object, tuple[float, float]] = ctx.state.setdefault("buckets", {})
    mine, server = (ctx.client.id, BURST, SHARE), ("server", SERVER_BURST, SERVER_SHARE)
    now = time.monotonic()
    for key, burst, share in (mine, server):
        left = _left(buckets, key, burst, share, now)
        if left < 0:
            who = "you are" if key != "server" else "the server is"
            raise CommandError(f"{who} searching too much: try again in {-left / share:.0f} s")
    began = time.perf_counter()
    try:
        page = ctx.search(start, limit=PAGE, show=True)
    finally:
        spent = time.perf_counter() - began
        for key, burst, share in (mine, server):
            buckets[key] = (_left(buckets, key, burst, share, now) - spent, now)
    if page.more is not None:
        cursors[ctx.client.id] = page.more
    else:
        cursors.pop(ctx.client.id, None)
    count = len(page.hits)
    notes = []
    if page.reached is not None:
        notes.append("searched back to " + time.strftime("%Y-%m-%d %H:%M", time.localtime(page.reached)))
    if page.more is not None:
        notes.append("more: /search --more")
    ctx.reply(f"OK search {count} hit{'s' * (count != 1)}" + (f" ({'; '.join(notes)})" if notes else ""))


def _left(buckets: dict[object, tuple[float, float]], key: object, burst: float, share: float, now: float) -> float:
    """Seconds of searching *key* may still spend now (negative: it is in debt)."""
    left, when = buckets.get(key, (burst, now))
    return min(burst, left + (now - when) * share)


@hookimpl
def client_left(ctx: Context, reason: str) -> None:
    if ctx.client is not None:
        ctx.state.get("cursors", {}).pop(ctx.client.id, None)
        ctx.state.get("buckets", {}).pop(ctx.client.id, None)


@hookimpl
def register_commands() -> list[Command]:
    return [
        Command("search", search, usage=USAGE, raw=True, cost=3.0,
                summary="Search what was said in the rooms you may read, newest first (/search --more: next page)"),
    ]
