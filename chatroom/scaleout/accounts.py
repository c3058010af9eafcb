"""Accounts across nodes: a nick registered (or a password changed) on one node logs in on every node.

Each node keeps its accounts in its data dir (:class:`~chatroom.model.accounts.AccountStore`); with
scale-out, every account created or changed on a node (``AccountStore.on_change``) is written to the hash
``PREFIX:accounts`` (account key -> JSON name, scrypt hash, created, changed: never a password) and
published on ``ctl``, in one script (:data:`SHARE_LUA`: both ran or neither; a record Redis holds with a newer
change is kept, and comes back to this node instead); every other node stores it (:meth:`AccountStore.put`: the
newer change wins). A node whose command connection comes up takes every account Redis holds and adds those Redis
lacks (a node's accounts from before it joined, or a Redis restarted empty). Two nodes registering one name in the
same instant: the later change wins everywhere (registrations are rare; docs/scale-out.md).

**Nothing is forgotten on the way** (docs/scale-out.md): an account changed here stays in
:attr:`SharedAccounts.unsent` (its key only) until Redis answered its script with a reply that is not an error.
A connection lost first (``Unavailable``: it may or may not have run) sends it again when the link is back
(:meth:`SharedAccounts.ready`); an error reply (``-OOM``, ``-READONLY``...) or a full output queue on a live link,
on a timer (:class:`~chatroom.scaleout.retry.RetryTimer`: 1 s, doubling to 30 s). What goes again is the
account's *current* record, read from the store, never an older one. The read of every account (``HGETALL``,
when the link comes up) is asked again the same way. Each failure is logged once per account, and its recovery
once. An account changed in the data dir by another process (``chatroom-server --reset-password`` while this node
runs) is shared the same way within :data:`LOOK_EVERY` seconds (``AccountStore.look_outside``). Loop thread only.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chatroom.model.accounts import Account
from chatroom.model.names import nick_key
from chatroom.scaleout.link import Backpressure, Unavailable
from chatroom.scaleout.retry import LastCalls, RetryTimer

if TYPE_CHECKING:
    from chatroom.model.accounts import AccountStore
    from chatroom.net.scheduler import Timer
    from chatroom.scaleout.link import RedisLink

__all__ = ["LOOK_EVERY", "SHARE_LUA", "SharedAccounts"]

log = logging.getLogger("chatroom.server")

#: An account changed here: stored in the accounts hash (KEYS[1], field ARGV[1]: its key; ARGV[2]: its JSON
#: record, whose fourth item is its change time ARGV[3]) and published on ctl (ARGV[4], message ARGV[5]) in one
#: step, unless Redis holds a record of it changed as late or later (another node's newer change, or this one
#: already taken: its connection was lost before the reply). Returns {1} (stored and published) or {0, held}.
SHARE_LUA = """
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held then
  local ok, record = pcall(cjson.decode, held)
  if ok and type(record) == 'table' and tonumber(record[4]) and tonumber(record[4]) >= tonumber(ARGV[3]) then
    return {0, held}
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return {1}
"""

#: Seconds between two looks for accounts another process changed in this node's store (one ``PRAGMA`` when
#: nothing was committed).
LOOK_EVERY = 1.0

#: The name :attr:`SharedAccounts.calls` and the failure log use for the read of every account (no account key
#: is empty: a nick has at least one character).
_ALL = ""


class SharedAccounts:
    """Keeps *store* in step with every node's through *link*, the hash *key* and the ``ctl`` channel *ctl*;
    *name* is this node's. *call_later(delay, fn)* (default: the link's loop's) times the retries of what Redis
    refused or could not queue on a live link (:class:`~chatroom.scaleout.retry.RetryTimer`); *look_later*
    (default: the same) the looks for accounts another process changed in *store*, every :data:`LOOK_EVERY` s."""

    def __init__(self, store: AccountStore, link: RedisLink, key: str, ctl: str, name: str,
                 call_later: Callable[[float, Callable[[], None]], Timer] | None = None,
                 look_later: Callable[[float, Callable[[], None]], Timer] | None = None) -> None:
        self.store = store
        self.link = link
        self.key = key
        self.ctl = ctl
        self.name = name
        #: Keys (:func:`~chatroom.model.names.nick_key`) of the accounts changed here that Redis has not taken.
        self.unsent: set[str] = set()
        #: The read of every account failed: read again (on the timer on a live link, or when the link is back).
        self.unread = False
        call_later = call_later if call_later is not None else link.loop.call_later
        self.retries = RetryTimer(call_later, self._retry)
        self._look_later = look_later if look_later is not None else call_later
        #: Each account's shares (and the reads of every account, :data:`_ALL`): the last one of each decides.
        self.calls = LastCalls(link, self._ok, self._failed)
        self._failing: set[str] = set()  # account keys (or _ALL) whose failure was logged, until Redis answers
        store.on_change = self.changed
        self._look: Timer | None = self._look_later(LOOK_EVERY, self._look_outside)

    def _look_outside(self) -> None:
        """Every :data:`LOOK_EVERY` seconds: share what another process changed in the store."""
        self.store.look_outside()
        self._look = self._look_later(LOOK_EVERY, self._look_outside)

    def close(self) -> None:
        """Stop: the retry timer is cancelled, late replies are ignored, the store tells no one any more."""
        self.calls.close()
        self.retries.close()
        if self._look is not None:
            self._look.cancel()
            self._look = None
        if self.store.on_change == self.changed:
            self.store.on_change = None

    @staticmethod
    def _json(account: Account) -> str:
        return json.dumps([account.name, account.password_hash, account.created, account.changed])

    # -- changes made here -----------------------------------------------------------------------------
    def changed(self, account: Account) -> None:
        """``AccountStore.on_change``: to Redis and the other nodes; kept in :attr:`unsent` until Redis took it."""
        key = nick_key(account.name)
        self.unsent.add(key)
        self._share(key)

    def _share(self, key: str) -> None:
        account = self.store.get(key)  # its current record: a retry never sends an older change over a newer one
        if account is None:  # (accounts are not removed; nothing to share if one were)
            self.unsent.discard(key)
            self._failing.discard(key)
            return
        text = self._json(account)
        message = json.dumps({"k": "account", "node": self.name, "account": text})
        self.calls.send(key, functools.partial(self._shared, key), "EVAL", SHARE_LUA, 1, self.key, key, text,
                   repr(account.changed), self.ctl, message)

    def _shared(self, key: str, reply: Any) -> None:
        self.unsent.discard(key)
        if isinstance(reply, list) and len(reply) > 1 and isinstance(reply[1], bytes):
            try:  # Redis holds a change as new or newer (another node's): this node takes it
                self._put(reply[1].decode())
            except (ValueError, TypeError) as exc:
                log.error("ignoring the account %s Redis holds: %s", key, exc)

    # -- calls and their failures ------------------------------------------------------------------------
    def _ok(self, name: str) -> None:
        """Redis answered *name*'s last call: its recovery logged (once, if its failure was)."""
        if name in self._failing:
            self._failing.discard(name)
            if name == _ALL:
                log.info("the accounts of the other servers were read from Redis again")
            else:
                log.info("account %s shared through Redis again", name)
        if not self._failing:
            self.retries.reset()

    def _failed(self, name: str, exc: Exception) -> None:
        """Redis did not take *name*'s call: an account's change stays unsent, a failed read of every account is
        read again; logged once (a read lost with its connection not at all: the link's return reads again),
        retried when the link is back (:meth:`ready`) or on the timer (a live link)."""
        if name == _ALL:
            self.unread = True
        quiet = name == _ALL and isinstance(exc, Unavailable) and not isinstance(exc, Backpressure)
        if not quiet and name not in self._failing:
            self._failing.add(name)
            what = "the accounts of the other servers could not be read from Redis" if name == _ALL else \
                f"account {name} could not be shared yet"
            log.error("%s (%s): Redis is asked again %s", what, exc,
                      "when it is back" if type(exc) is Unavailable else "shortly")
        self.retries.schedule()

    def _retry(self) -> None:
        if self.link.ready:  # (else its reconnection calls ready())
            self._again(read=self.unread and _ALL not in self.calls)

    def _again(self, read: bool) -> None:
        for key in sorted(self.unsent):
            if key not in self.calls:  # (in flight: its reply decides)
                self._share(key)
        if read:
            self.unread = False
            self.calls.send(_ALL, self._snapshot, "HGETALL", self.key)

    # -- the other nodes' changes ----------------------------------------------------------------------
    def on_control(self, message: dict[str, Any]) -> None:
        """An ``account`` message on ``ctl`` (``{"k": "account", "node", "account"}``, the account's JSON record
        ``[name, password hash, created, changed]``): another node's change goes into this node's store (the
        newer change wins); this node's own, heard back, is ignored."""
        if message.get("node") != self.name:
            self._put(str(message["account"]))

    def _put(self, text: str) -> Account:
        """Store the account whose JSON record is *text* (unless this store has a newer change of it); returns it.
        Raises ValueError (or TypeError) for a malformed record."""
        name, password_hash, created, changed = json.loads(text)
        account = Account(str(name), str(password_hash), float(created), float(changed))
        self.store.put(account)
        return account

    def ready(self) -> None:
        """The command connection is (re)connected, or the subscription is (a change published while it was down
        was missed): what Redis has not taken goes again (each account's current record), then take Redis's
        accounts and give it those it lacks."""
        self.retries.reset()
        self._again(read=True)

    def _snapshot(self, reply: Any) -> None:
        held: dict[str, float] = {}
        for key, text in zip(reply[::2], reply[1::2]):
            try:
                held[key.decode()] = self._put(text.decode()).changed
            except (ValueError, TypeError) as exc:  # (Redis holds what nodes wrote: a bad record is not lost here)
                log.error("ignoring the account %r Redis holds: %s", key, exc)
        for account in self.store.all():
            changed = held.get(nick_key(account.name))
            if changed is None or account.changed > changed:  # Redis lacks it, or it changed here while Redis was away
                self.changed(account)
