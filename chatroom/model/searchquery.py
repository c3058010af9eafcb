"""What ``/search`` and ``ctx.search`` ask for: the query language, parsed; no SQL, no sockets.

The syntax (docs/protocol.md, "Search")::

    /search [#room] [from:NICK] [before:ID|DATE] [after:ID|DATE] WORDS

- a plain **word** must appear in the line; words are matched whole, case and diacritics aside
  (``cafe`` finds ``Café``); a word with inner punctuation (``café-bar``, ``e.g``) is the phrase of its parts;
- ``"a phrase"`` must appear as it is, word after word; ``deploy*`` matches words starting with
  ``deploy`` (at least :data:`MIN_PREFIX` characters before the ``*``); ``-word`` (or ``-"a phrase"``)
  must not appear;
- ``#room`` keeps one room's lines, ``from:NICK`` one author's (the nick the line was said under,
  any case), ``before:`` and ``after:`` bound the lines by id (with a ``#room``: ids count per room)
  or by date: ``2026-12-01``, ``2026-12-01T14:30``, ``2026-12-01T14:30:05Z`` (UTC; a date is its
  first instant). ``before:`` is strictly earlier; ``after:ID`` strictly later, ``after:DATE`` at or
  after that instant.

:func:`parse` turns the text into a :class:`Query` or raises :class:`QueryError` (a
:class:`~chatroom.model.errors.Refused`: its text is the ``ERROR`` a user reads). :func:`fts_match`
gives the SQLite FTS5 expression of a query (https://sqlite.org/fts5.html, "Full-text Query Syntax"):
every user word is a quoted FTS5 string, so no user text is ever FTS5 syntax. :func:`matches` applies a
query to one line in Python, for lines not committed yet (not in the index): :func:`tokens` follows
FTS5's ``unicode61`` tokenizer with ``remove_diacritics 2`` (letters and digits are word characters;
case folded; combining marks removed after NFKD).
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from datetime import datetime
from typing import NamedTuple, TypeVar

from chatroom.model.errors import Refused
from chatroom.model.names import room_key

_T = TypeVar("_T")

__all__ = ["MAX_TERMS", "MIN_PREFIX", "Query", "QueryError", "Term", "fts_match", "matches", "parse",
           "tokens"]

#: Most words and phrases one query may hold (positive and excluded together).
MAX_TERMS = 12
#: Characters a prefix (``word*``) needs before its ``*``: shorter ones match too much of the index.
MIN_PREFIX = 3
_MAX_TERM_CHARS = 200
_MAX_ID = 2**63 - 1
_SPLIT = re.compile(r'-?"[^"]*"?|\S+')  # a quoted phrase (closing quote optional) or a word


class QueryError(Refused):
    """A query that cannot run: ``str(exc)`` is what the user reads after ``ERROR``."""


class Term(NamedTuple):
    """One word or phrase: ``text`` as typed (without quotes, ``*`` or ``-``), ``words`` its tokens
    (:func:`tokens`), ``prefix`` (the last token is a prefix: ``deploy*``)."""

    text: str
    words: tuple[str, ...]
    prefix: bool = False


class Query(NamedTuple):
    """A parsed query. ``terms`` must all appear, ``excluded`` must not; ``room`` (canonical ``#name``) and
    ``nick`` (as typed) filter, or None; ``before_id``/``after_id`` (per-room ids: only with ``room``) and
    ``before_ts``/``after_ts`` (Unix seconds UTC) bound, or None. ``text`` is the query as typed."""

    text: str
    terms: tuple[Term, ...] = ()
    excluded: tuple[Term, ...] = ()
    room: str | None = None
    nick: str | None = None
    before_id: int | None = None
    after_id: int | None = None
    before_ts: float | None = None
    after_ts: float | None = None


def tokens(text: str) -> tuple[str, ...]:
    """The words of *text* as the index sees them: runs of letters and digits, case-folded, with
    diacritics removed (``"Café-Bar 2"`` -> ``("cafe", "bar", "2")``)."""
    folded = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()
    out: list[str] = []
    word: list[str] = []
    for c in folded:
        if c.isalnum():
            word.append(c)
        elif word:
            out.append("".join(word))
            word = []
    if word:
        out.append("".join(word))
    return tuple(out)


def parse(text: str) -> Query:
    """Parse *text* (what follows ``/search``); raises :class:`QueryError` with the reason."""
    text = text.strip()
    terms: list[Term] = []
    excluded: list[Term] = []
    fields: dict[str, object] = {}
    for piece in _SPLIT.findall(text):
        negative = piece.startswith("-") and len(piece) > 1
        body = piece[1:] if negative else piece
        if body.startswith('"'):
            term = _term(body[1:-1] if body.endswith('"') and len(body) > 1 else body[1:], False)
        elif not negative and body.startswith("#") and len(body) > 1:
            _once(fields, "room", _room(body))
            continue
        elif not negative and ":" in body and body.split(":", 1)[0].lower() in ("from", "before", "after"):
            key, value = body.split(":", 1)
            _field(fields, key.lower(), value)
            continue
        else:
            prefix = body.endswith("*")
            term = _term(body.rstrip("*") if prefix else body, prefix)
            if term is not None and prefix and len(term.text) < MIN_PREFIX:
                raise QueryError(f"{body}: a prefix needs at least {MIN_PREFIX} characters before the *")
        if term is not None:
            (excluded if negative else terms).append(term)
    if len(terms) + len(excluded) > MAX_TERMS:
        raise QueryError(f"at most {MAX_TERMS} words or phrases in one search")
    if not terms and "nick" not in fields:
        raise QueryError("nothing to search for: give a word, a \"phrase\" or from:NICK")
    query = Query(text, tuple(terms), tuple(excluded), room=_get(fields, "room", str), nick=_get(fields, "nick", str),
                  before_id=_get(fields, "before_id", int), after_id=_get(fields, "after_id", int),
                  before_ts=_get(fields, "before_ts", float), after_ts=_get(fields, "after_ts", float))
    if (query.before_id is not None or query.after_id is not None) and query.room is None:
        raise QueryError("before:ID and after:ID need a #room (ids count per room); before:DATE works across rooms")
    return query


def _term(text: str, prefix: bool) -> Term | None:
    if len(text) > _MAX_TERM_CHARS:
        raise QueryError(f"a word or phrase of at most {_MAX_TERM_CHARS} characters")
    words = tokens(text)
    return Term(text, words, prefix) if words else None  # only punctuation: nothing the index holds


_NAMES = {"room": "#room", "nick": "from:", "before": "before:", "after": "after:"}


def _once(fields: dict[str, object], key: str, value: object) -> None:
    group = key.split("_")[0]
    if any(k.split("_")[0] == group for k in fields):
        raise QueryError(f"one {_NAMES[group]} per search")
    fields[key] = value


def _get(fields: dict[str, object], key: str, kind: type[_T]) -> _T | None:
    """The filter *key* of *fields* (set by :func:`_once`), or None."""
    value = fields.get(key)
    return value if isinstance(value, kind) else None


def _room(word: str) -> str:
    name = room_key(word)
    if name is None:
        raise QueryError(f"{word!r} is not a room name: # and 1-32 of a-z 0-9 _ -")
    return name


def _field(fields: dict[str, object], key: str, value: str) -> None:
    if not value:
        raise QueryError(f"{key}: needs a value ({'from:NICK' if key == 'from' else key + ':ID or ' + key + ':DATE'})")
    if key == "from":
        return _once(fields, "nick", value)
    if value.isdigit() and len(value) <= 18:
        return _once(fields, f"{key}_id", int(value))
    _once(fields, f"{key}_ts", _date(key, value))


def _date(key: str, value: str) -> float:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise QueryError(f"{key}:{value}: not an id or a date (2026-12-01, 2026-12-01T14:30, "
                         "2026-12-01T14:30:05Z; UTC)") from None
    if when.tzinfo is not None:
        return when.timestamp()
    return float(calendar.timegm(when.timetuple())) + when.microsecond / 1e6


def _phrase(term: Term) -> str:
    return '"' + term.text.replace("\x00", "").replace('"', '""') + '"' + ("*" if term.prefix else "")  # NUL ends C strings


def fts_match(query: Query) -> str:
    """The FTS5 MATCH expression of *query* over the index's columns ``text``, ``nick`` and ``room``;
    its ``nick`` and ``room`` parts are only a first cut (the exact check is the caller's)."""
    parts = [f"text : {_phrase(term)}" for term in query.terms]
    if query.nick is not None:
        parts.append(f"nick : {_phrase(Term(query.nick, tokens(query.nick)))}")
    if query.room is not None:
        parts.append(f"room : {_phrase(Term(query.room[1:], tokens(query.room[1:])))}")
    expression = " AND ".join(parts)
    for term in query.excluded:
        expression += f" NOT text : {_phrase(term)}"
    return expression


def _contains(words: tuple[str, ...], term: Term) -> bool:
    want = term.words
    n = len(want)
    for i in range(len(words) - n + 1):
        if words[i:i + n - 1] == want[:-1] and (
            words[i + n - 1].startswith(want[-1]) if term.prefix else words[i + n - 1] == want[-1]
        ):
            return True
    return False


def matches(query: Query, room: str, nick: str, text: str) -> bool:
    """True if a line said by *nick* in *room* with *text* answers *query* (words, phrases, prefixes,
    exclusions, room and author; the bounds are the caller's)."""
    if query.room is not None and room != query.room:
        return False
    if query.nick is not None and nick.casefold() != query.nick.casefold():
        return False
    words = tokens(text)
    return all(_contains(words, t) for t in query.terms) and not any(_contains(words, t) for t in query.excluded)
