"""Accounts across nodes: a nick registered (or a password changed) on one node logs in on every node.

Each node keeps its accounts in its data dir (:class:`~chatroom.model.accounts.AccountStore`); with
scale-out, every account created or changed on a node (``AccountStore.on_change``) is written to the hash
``PREFIX:accounts`` (account key -> JSON name, scrypt hash, created, changed: never a password) and
published on ``ctl``; every other node stores it (:meth:`AccountStore.put`: the newer change wins). A node
whose command connection comes up takes every account Redis holds and adds those Redis lacks (a node's
accounts from before it joined, or a Redis restarted empty). Two nodes registering one name in the same
instant: the later change wins everywhere (registrations are rare; docs/scale-out.md). Loop thread only.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from chatroom.model.accounts import Account
from chatroom.model.names import nick_key
from chatroom.scaleout.link import Unavailable

if TYPE_CHECKING:
    from chatroom.model.accounts import AccountStore
    from chatroom.scaleout.link import RedisLink

__all__ = ["SharedAccounts"]

log = logging.getLogger("chatroom.server")


class SharedAccounts:
    """Keeps *store* in step with every node's through *link*, the hash *key* and the ``ctl`` channel *ctl*."""

    def __init__(self, store: AccountStore, link: RedisLink, key: str, ctl: str, name: str) -> None:
        self.store = store
        self.link = link
        self.key = key
        self.ctl = ctl
        self.name = name
        store.on_change = self.changed

    def close(self) -> None:
        if self.store.on_change == self.changed:
            self.store.on_change = None

    @staticmethod
    def _json(account: Account) -> str:
        return json.dumps([account.name, account.password_hash, account.created, account.changed])

    def changed(self, account: Account) -> None:
        """``AccountStore.on_change``: to Redis and the other nodes."""
        text = self._json(account)
        try:
            self.link.call("HSET", self.key, nick_key(account.name), text)
            self.link.call("PUBLISH", self.ctl, json.dumps({"k": "account", "node": self.name, "account": text}))
        except Unavailable as exc:
            log.error("account %s could not be shared yet (%s): it is when Redis is back", account.name, exc)

    def on_control(self, message: dict[str, Any]) -> None:
        if message.get("node") != self.name:
            self._put(str(message["account"]))

    def _put(self, text: str) -> None:
        name, password_hash, created, changed = json.loads(text)
        self.store.put(Account(str(name), str(password_hash), float(created), float(changed)))

    def ready(self) -> None:
        """The command connection is (re)connected: take Redis's accounts, give it those it lacks."""
        try:
            self.link.call("HGETALL", self.key, on_reply=self._snapshot)
        except Unavailable:
            pass

    def _snapshot(self, reply: Any) -> None:
        if not isinstance(reply, list):
            return
        held = {key.decode(): float(json.loads(text)[3]) for key, text in zip(reply[::2], reply[1::2])}
        for text in reply[1::2]:
            self._put(text.decode())
        for account in self.store.all():
            changed = held.get(nick_key(account.name))
            if changed is None or account.changed > changed:  # Redis lacks it, or it changed here while Redis was away
                self.changed(account)
