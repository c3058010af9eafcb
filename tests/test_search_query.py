"""The search query language without sockets or a server (chatroom.model.searchquery): parsing, refusals,
the FTS5 expression built from it (checked against a real SQLite FTS5 table with the index's tokenizer, so
no user text is ever FTS5 syntax) and the Python matcher used for lines not committed yet, which must agree
with FTS5 on what matches."""

from __future__ import annotations

import calendar
import sqlite3

import pytest

from chatroom.model.searchquery import MAX_TERMS, Query, QueryError, Term, fts_match, matches, parse, tokens


def test_words_phrases_prefixes_and_exclusions() -> None:
    query = parse('café "new release" deploy* -draft -"not now"')
    assert query.terms == (Term("café", ("cafe",)), Term("new release", ("new", "release")),
                           Term("deploy", ("deploy",), prefix=True))
    assert query.excluded == (Term("draft", ("draft",)), Term("not now", ("not", "now")))
    assert query.room is None and query.nick is None
    assert parse("café-bar").terms == (Term("café-bar", ("cafe", "bar")),)  # inner punctuation: a phrase
    assert parse('"unclosed phrase').terms == (Term("unclosed phrase", ("unclosed", "phrase")),)
    assert parse("hello ... !!").terms == (Term("hello", ("hello",)),)  # punctuation alone holds no word


def test_filters_and_bounds() -> None:
    query = parse("#Design FROM:Alice before:500 after:20 plans")
    assert (query.room, query.nick, query.before_id, query.after_id) == ("#design", "Alice", 500, 20)
    query = parse("after:2026-12-01 before:2026-12-02T14:30:05Z plans")
    assert query.after_ts == calendar.timegm((2026, 12, 1, 0, 0, 0))
    assert query.before_ts == calendar.timegm((2026, 12, 2, 14, 30, 5))
    assert parse("before:2026-12-02T14:30 x").before_ts == calendar.timegm((2026, 12, 2, 14, 30, 0))
    assert parse("from:bob").nick == "bob"  # an author alone is a search
    assert parse("http://example.org/x").terms[0].words == ("http", "example", "org", "x")  # not an operator


@pytest.mark.parametrize(("text", "reason"), [
    ("", "nothing to search for"),
    ("#lobby", "nothing to search for"),
    ("-only -excluded", "nothing to search for"),
    ("!!! ...", "nothing to search for"),
    ("before:12 plans", "before:ID and after:ID need a #room"),
    ("#a #b x", "one #room per search"),
    ("from:a from:b", "one from: per search"),
    ("after:1 after:2 #a x", "one after: per search"),
    ("from: x", "from: needs a value"),
    ("before:yesterday x", "before:yesterday: not an id or a date"),
    ("ab* x", "ab*: a prefix needs at least 3 characters"),
    ("#no/such x", "is not a room name"),
    (" ".join(f"w{i}" for i in range(MAX_TERMS + 1)), f"at most {MAX_TERMS} words"),
    ("x" * 201, "a word or phrase of at most 200 characters"),
])
def test_refusals_say_why(text: str, reason: str) -> None:
    with pytest.raises(QueryError) as refused:
        parse(text)
    assert reason in str(refused.value)


def test_tokens_fold_case_and_remove_diacritics() -> None:
    assert tokens("Café-Bar 2 NAÏVE Ångström über_alles") == ("cafe", "bar", "2", "naive", "angstrom", "uber", "alles")
    assert tokens("...") == ()


LINES = [
    ("#lobby", "alice", "I love the Café downtown"),
    ("#lobby", "bob", "cafe au lait, s'il vous plaît"),
    ("#design", "alice", "new release on Friday"),
    ("#design", "bob-2", "the release is new"),
    ("#my-room", "carol", "deployment went fine"),
    ("#my_room", "carol", "deploys are scary"),
    ("#lobby", "dave", 'quotes "inside" and NEAR(a b) OR text:x * ^ -'),
    ("#lobby", "Bob", "naïve Ångström über café"),
]

QUERIES = [
    "cafe", "CAFÉ downtown", '"new release"', "release -friday", "deploy*", "from:bob cafe", "from:BOB",
    "#my-room deploy*", "#my_room deploys", 'NEAR(a', 'text:x', '"inside"', "OR", "naive angstrom uber",
    '-"new release" release', "plait * ^", "s il",
]


@pytest.fixture(scope="module")
def index() -> sqlite3.Connection:
    """An in-memory FTS5 table with the index's columns and tokenizer, holding LINES (rowid = position + 1)."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE search_fts USING fts5(text, nick, room, content='', columnsize=0, "
                 "tokenize='unicode61 remove_diacritics 2')")
    conn.executemany("INSERT INTO search_fts (rowid, text, nick, room) VALUES (?, ?, ?, ?)",
                     [(i + 1, text, nick, room) for i, (room, nick, text) in enumerate(LINES)])
    return conn


def _exact(query: Query, row: int) -> bool:
    room, nick, _ = LINES[row - 1]  # the exact checks the search makes after FTS5's first cut
    return (query.room is None or room == query.room) and (query.nick is None or nick.casefold() == query.nick.casefold())


@pytest.mark.parametrize("text", QUERIES)
def test_fts5_and_the_python_matcher_agree(index: sqlite3.Connection, text: str) -> None:
    query = parse(text)
    found = {row for (row,) in index.execute("SELECT rowid FROM search_fts WHERE search_fts MATCH ?", (fts_match(query),))
             if _exact(query, row)}
    assert found == {i + 1 for i, (room, nick, line) in enumerate(LINES) if matches(query, room, nick, line)}


def test_what_matches(index: sqlite3.Connection) -> None:
    def rows(text: str) -> set[int]:
        query = parse(text)
        return {i + 1 for i, (room, nick, line) in enumerate(LINES) if matches(query, room, nick, line)}

    assert rows("cafe") == {1, 2, 8}  # Café, cafe, café
    assert rows('"new release"') == {3}  # a phrase is in order; bob-2's "release is new" is not
    assert rows("new release") == {3, 4}
    assert rows("from:bob") == {2, 8}  # Bob and bob, not bob-2
    assert rows("#my-room deploy*") == {5}  # not #my_room, whose words are the same
    assert rows('NEAR(a b) OR text:x') == {7}  # operators typed are words
    assert rows("alice") == set()  # words are looked for in the text, not in the author


@pytest.mark.parametrize("text", ['"', '""', '-"', "x\"y", 'a"""b', "NOT x", "x AND", "(x", "x:y", "{text}:x", "^x",
                                  "x +", "x\x00y", "🙂 smile", "x\u202ey"])
def test_any_text_is_a_valid_fts5_query_or_a_refusal(index: sqlite3.Connection, text: str) -> None:
    try:
        query = parse(text)
    except QueryError:
        return
    index.execute("SELECT rowid FROM search_fts WHERE search_fts MATCH ?", (fts_match(query),)).fetchall()
