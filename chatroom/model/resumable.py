"""Resumable offers: what the server keeps of a file transfer so that it can resume, and for how long.

THE rule for resuming a transfer lives here, once (docs/protocol.md, "Resumable transfers"):

* **Who.** A resumable offer has one sender and one *leg* per receiver that can resume. Each party gets
  its own **token** (128 random bits, :func:`chatroom.wire.chunks.is_token`), sent to that party only;
  the server keeps only the SHA-256 of each token, so its database gives no token away. A token is
  bound to its party: presenting it resumes that party's side and nothing else, and when the party
  was logged in when the offer was made, the connection presenting it must be logged in to the same
  account (:meth:`ResumeBook.find`). Every token that is unknown, ended, expired or not the caller's
  gets the same answer, so guessing learns nothing about who holds which file.
* **What.** The offer's metadata: name, size, whole-file SHA-256, chunk size, the parties' nicks and
  accounts, the sender's quota key, when it was made and last active. Never file bytes, never the hash
  list (the receivers keep it), never a token.
* **How long.** An offer lives while some leg is unfinished and at most ``keep`` seconds
  (``--resume-keep``, default 24 h) after it was last active (made, or a session of it started or
  ended); :meth:`ResumeBook.expire` drops the others. A leg ends when its receiver says it has the file,
  or cancels; the offer ends with its last leg, or when its sender cancels. A party that was away when
  its transfer ended (cancelled by the other side, or received in full) is told why when it presents its
  token again (:meth:`ResumeBook.ended`): the token's hash, the party's account and the reason are kept
  for ``keep`` seconds, bound as the token was.
* **How much.** At most :data:`MAX_OFFERS` offers and :data:`MAX_LEGS` legs server-wide and
  :data:`MAX_PER_SENDER` offers per sender key, and :data:`MAX_ENDED` reasons: past a bound, the least recently active offer with no
  session running makes room, and when none can, the new offer is not resumable (it still goes out).
  Each kept offer is one row of about 300 bytes and one per leg in ``DATA_DIR/transfers.sqlite3``.

Presence (which connection holds a token now, what a receiver last said it needs, the running session)
is kept on the same objects but never stored: after a restart every party presents its token again.
Loop thread only.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatroom.model.checkpoint import Checkpointer, no_autocheckpoint
from chatroom.model.store import close_store, migrate, open_store, transaction

__all__ = ["DAY", "MAX_ENDED", "MAX_LEGS", "MAX_OFFERS", "MAX_PER_SENDER", "Leg", "Offer", "ResumeBook", "token_key"]

log = logging.getLogger("chatroom.relay")

DAY = 86400.0
#: Offers and legs kept server-wide, and offers kept per sender (account, else address).
MAX_OFFERS = 1024
MAX_LEGS = 16384
MAX_PER_SENDER = 32
#: Ended transfers whose reason waits for a party that was away (the oldest goes first).
MAX_ENDED = MAX_OFFERS + MAX_LEGS

MIGRATIONS = [
    """
    CREATE TABLE offers (
        key TEXT PRIMARY KEY, name TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL,
        chunk INTEGER NOT NULL, sender_nick TEXT NOT NULL, sender_account TEXT, sender_key TEXT NOT NULL,
        created REAL NOT NULL, touched REAL NOT NULL);
    CREATE TABLE legs (
        key TEXT PRIMARY KEY, offer TEXT NOT NULL REFERENCES offers(key) ON DELETE CASCADE,
        nick TEXT NOT NULL, account TEXT, sent INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX legs_offer ON legs(offer);
    """,
    """
    CREATE TABLE ended (key TEXT PRIMARY KEY, account TEXT, why TEXT NOT NULL, at REAL NOT NULL);
    """,
]


def token_key(token: str) -> str:
    """What the server keeps of a token: its SHA-256 in hex."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


@dataclass(eq=False)
class Leg:
    """One receiver's side of an :class:`Offer`: ``key`` (its token's hash), its nick and account, ``sent``
    (bytes relayed to it so far, every session). Presence, not stored: ``receiver`` (the connection that
    presented the token) and ``token`` (the token it presented), ``missing`` (chunk indices it last said it
    needs; None: not said since the last session), ``session`` (the running transfer to it)."""

    key: str
    offer: Offer
    nick: str
    account: str | None
    sent: int = 0
    receiver: Any = None
    token: str | None = None
    missing: list[int] | None = None
    session: Any = None


@dataclass(eq=False)
class Offer:
    """A resumable offer (see the module docstring). Sizes in bytes, times in Unix seconds; ``sender`` is
    the connection that holds the sender's token now and ``token`` that token, ``told`` whether its end was
    told (presence, not stored)."""

    key: str
    name: str
    size: int
    sha256: str
    chunk: int
    sender_nick: str
    sender_account: str | None
    sender_key: str
    created: float
    touched: float
    legs: dict[str, Leg] = field(default_factory=dict)
    sender: Any = None
    token: str | None = None
    told: bool = False  # its end was told (file-gone now, or kept for the parties away)

    @property
    def busy(self) -> bool:
        """True while a session of it runs."""
        return any(leg.session is not None for leg in self.legs.values())


class ResumeBook:
    """The resumable offers (see the module docstring), stored in the SQLite file *path* (None: memory only).

    *keep* is how long an idle offer lives (seconds); *clock* gives Unix seconds. Raises sqlite3.Error
    if the file cannot be opened. Loop thread only. Its commits (a few rows per transfer session, on the
    loop) never checkpoint: a :class:`~chatroom.model.checkpoint.Checkpointer` thread watching the file
    does it, as for the plugins' stores, so no commit waits for an ``fsync`` (issue 17, row 5).
    """

    def __init__(self, path: Path | None, keep: float = DAY, clock: Callable[[], float] = time.time) -> None:
        self.keep = keep
        self.clock = clock
        self._checkpointer: Checkpointer | None = None
        if path is not None:
            self.db = no_autocheckpoint(open_store(path, check_same_thread=False))
            self._checkpointer = Checkpointer(path, name="chatroom-transfers-checkpoint", watch=True)
        else:
            self.db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA foreign_keys=ON")
        migrate(self.db, MIGRATIONS)
        self.offers: dict[str, Offer] = {}
        self._by_key: dict[str, tuple[Offer, Leg | None]] = {}
        self._legs = 0
        self._ended: dict[str, tuple[str | None, str, float]] = {}  # token key -> account, why, when (oldest first)
        self._load()

    def _load(self) -> None:
        for row in self.db.execute("SELECT key, name, size, sha256, chunk, sender_nick, sender_account, sender_key, "
                                   "created, touched FROM offers"):
            self._index(Offer(*row))
        for key, offer_key, nick, account, sent in self.db.execute("SELECT key, offer, nick, account, sent FROM legs"):
            offer = self.offers.get(offer_key)
            if offer is not None:
                self._add_leg(Leg(key, offer, nick, account, sent))
        for key, account, why, at in self.db.execute("SELECT key, account, why, at FROM ended ORDER BY at"):
            self._ended[key] = (account, why, at)

    def _index(self, offer: Offer) -> None:
        self.offers[offer.key] = offer
        self._by_key[offer.key] = (offer, None)

    def _add_leg(self, leg: Leg) -> None:
        leg.offer.legs[leg.key] = leg
        self._by_key[leg.key] = (leg.offer, leg)
        self._legs += 1

    def close(self) -> None:
        """Close the database (the server's shutdown) after stopping its checkpoint thread."""
        if self._checkpointer is not None:
            self._checkpointer.close()
        close_store(self.db)

    # -- making offers ----------------------------------------------------------------------------
    def create(self, *, name: str, size: int, sha256: str, chunk: int, sender: Any, sender_key: str,
               receivers: Iterable[Any]) -> tuple[Offer, str, dict[int, str]] | None:
        """Keep a new offer from *sender* (a member: ``nick``, ``account``) to *receivers* (members with
        an ``id``); returns ``(offer, sender token, {receiver id: token})``, or None when the bounds leave
        no room or the database refuses it (the transfer then goes out without resume). Evicted offers are
        gone at once (their parties hear it when they next present a token)."""
        receivers = list(receivers)
        if not receivers or not self._make_room(sender_key, len(receivers)):
            return None
        now = self.clock()
        token = secrets.token_hex(16)
        offer = Offer(token_key(token), name, size, sha256, chunk, sender.nick, sender.account, sender_key, now, now)
        tokens = {r.id: secrets.token_hex(16) for r in receivers}
        legs = [Leg(token_key(tokens[r.id]), offer, r.nick, r.account) for r in receivers]
        try:
            with transaction(self.db):
                self.db.execute("INSERT INTO offers VALUES (?,?,?,?,?,?,?,?,?,?)",
                                (offer.key, name, size, sha256, chunk, offer.sender_nick, offer.sender_account,
                                 sender_key, now, now))
                self.db.executemany("INSERT INTO legs VALUES (?,?,?,?,0)",
                                    [(leg.key, offer.key, leg.nick, leg.account) for leg in legs])
        except sqlite3.Error as exc:
            log.error("cannot keep a resumable offer (it goes out without resume): %s", exc)
            return None
        self._index(offer)
        for leg, receiver in zip(legs, receivers):
            self._add_leg(leg)
            leg.receiver, leg.token = receiver, tokens[receiver.id]
        offer.sender, offer.token = sender, token
        return offer, token, tokens

    def _make_room(self, sender_key: str, legs: int) -> bool:
        """Evict the least recently active idle offers until one more (with *legs* legs) fits the bounds."""
        if legs > MAX_LEGS:
            return False
        while True:
            mine = [o for o in self.offers.values() if o.sender_key == sender_key]
            if len(mine) >= MAX_PER_SENDER:
                pool = mine
            elif len(self.offers) >= MAX_OFFERS or self._legs + legs > MAX_LEGS:
                pool = list(self.offers.values())
            else:
                return True
            idle = [o for o in pool if not o.busy]
            if not idle:
                return False
            self.drop(min(idle, key=lambda o: o.touched))

    # -- finding -----------------------------------------------------------------------------------
    def find(self, token: str, member: Any) -> tuple[Offer, Leg | None] | None:
        """The offer (and the leg, None for the sender's side) *token* belongs to, if *member* may use it:
        the token is known, not expired, and *member* is logged in to the party's account when the party
        had one. None otherwise, whatever the reason (see the module docstring)."""
        found = self._by_key.get(token_key(token))
        if found is None:
            return None
        offer, leg = found
        if self.clock() - offer.touched > self.keep and not offer.busy:
            return None
        account = offer.sender_account if leg is None else leg.account
        return (offer, leg) if _bound_to(account, member) else None

    def ended(self, token: str, member: Any) -> str | None:
        """Why the transfer of *token* ended while its party was away, if *member* may hear it (as
        :meth:`find`); the reason is told once. None otherwise, whatever the reason."""
        key = token_key(token)
        found = self._ended.get(key)
        if found is None or self.clock() - found[2] > self.keep or not _bound_to(found[0], member):
            return None
        del self._ended[key]
        self._write("DELETE FROM ended WHERE key=?", [(key,)])
        return found[1]

    def remember_end(self, keys: list[tuple[str, str | None]], why: str) -> None:
        """The parties with these token *keys* (and accounts) were away when their transfer ended *why*."""
        now = self.clock()
        for key, account in keys:
            self._ended.pop(key, None)
            self._ended[key] = (account, why, now)
        self._write("INSERT OR REPLACE INTO ended (key, account, why, at) VALUES (?, ?, ?, ?)",
                    [(key, account, why, now) for key, account in keys],
                    "DELETE FROM ended WHERE key=?", [(key,) for key in self._prune_ended(now)])

    def _prune_ended(self, now: float) -> list[str]:
        """Forget the reasons kept longer than ``keep``, then the oldest past :data:`MAX_ENDED`; their keys."""
        old = [key for key, (_, _, at) in self._ended.items() if now - at > self.keep]
        for key in old:
            del self._ended[key]
        extra = list(self._ended)[:max(0, len(self._ended) - MAX_ENDED)]
        for key in extra:
            del self._ended[key]
        return old + extra

    # -- ending -------------------------------------------------------------------------------------
    def touch(self, offer: Offer) -> None:
        """A session of *offer* started or ended: its idle time starts again; legs' progress is saved."""
        offer.touched = self.clock()
        self._write("UPDATE offers SET touched=? WHERE key=?", [(offer.touched, offer.key)],
                    "UPDATE legs SET sent=? WHERE key=?", [(leg.sent, leg.key) for leg in offer.legs.values()])

    def drop_leg(self, leg: Leg) -> bool:
        """*leg* is over (received or cancelled); True when that ended its offer too (no leg left)."""
        offer = leg.offer
        if offer.legs.pop(leg.key, None) is None:
            return False
        self._by_key.pop(leg.key, None)
        self._legs -= 1
        if not offer.legs:
            self.drop(offer)
            return True
        self._write("DELETE FROM legs WHERE key=?", [(leg.key,)])
        return False

    def drop(self, offer: Offer) -> None:
        """*offer* is over, with every leg."""
        if self.offers.pop(offer.key, None) is None:
            return
        self._by_key.pop(offer.key, None)
        for key in offer.legs:
            self._by_key.pop(key, None)
        self._legs -= len(offer.legs)
        self._write("DELETE FROM offers WHERE key=?", [(offer.key,)])

    def expire(self) -> list[Offer]:
        """Drop the offers idle for longer than ``keep`` (none with a running session), and the ended ones'
        reasons kept that long; returns the offers."""
        now = self.clock()
        gone = self._prune_ended(now)
        if gone:
            self._write("DELETE FROM ended WHERE key=?", [(key,) for key in gone])
        old = [o for o in self.offers.values() if now - o.touched > self.keep and not o.busy]
        for offer in old:
            self.drop(offer)
        return old

    def _write(self, sql: str, rows: list[tuple[Any, ...]], *more: Any) -> None:
        """Run the statements (``sql, rows`` pairs) in one transaction; a failure is logged, and what is in
        memory stays right for this run (an old row left behind expires after a restart)."""
        try:
            with transaction(self.db):
                pairs = [(sql, rows), *zip(more[::2], more[1::2])]
                for statement, params in pairs:
                    self.db.executemany(statement, params)
        except sqlite3.Error as exc:
            log.error("cannot update the resumable offers: %s", exc)


def _bound_to(account: str | None, member: Any) -> bool:
    """May *member* use a token bound to *account* (None: to whoever holds it)?"""
    mine = getattr(member, "account", None)
    return account is None or (mine is not None and mine.casefold() == account.casefold())
