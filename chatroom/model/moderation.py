"""Room moderation: who owns and operates a room, who is banned from it, its topic lock and key,
and the permission levels commands declare.

A :class:`RoomRules` hangs on every :class:`~chatroom.model.room.Room` (``room.rules``) and is
persisted with the room record as JSON (:meth:`RoomRules.to_json`; the ``rules`` column of
``rooms``, see :mod:`chatroom.model.history`). Operators and account bans are kept by account
name (compared case-insensitively, :meth:`str.casefold`); a guest is banned by address.

Permission levels (:data:`LEVELS`), weakest first: ``"anyone"``; ``"account"`` (logged in);
``"operator"`` (the room's owner or one of its operators, or an admin); ``"admin"`` (an account
named in the server's ``admins``). :func:`allowed` decides; :func:`denied` words the refusal.
Pure data, no I/O: the standard library only.
"""

from __future__ import annotations

import fnmatch
import hmac
import json
from dataclasses import asdict, dataclass, field

__all__ = ["LEVELS", "Ban", "RoomRules", "allowed", "denied"]

#: Permission levels a command may require, weakest first.
LEVELS = ("anyone", "account", "operator", "admin")
_NEEDS = {"account": "a logged-in account", "operator": "a room operator", "admin": "an admin"}


@dataclass
class Ban:
    """One ban: ``kind`` ``"account"``, ``"address"`` or ``"mask"`` (an IRC ``nick!user@host`` pattern with
    ``*`` and ``?``, for a nick nobody holds now); ``value`` the casefolded account, the address or the
    lower-case mask; ``label`` what the operator named (a nick or account); ``by`` who banned (nick);
    ``at`` when (Unix seconds)."""

    kind: str
    value: str
    label: str
    by: str = ""
    at: float = 0.0


@dataclass
class RoomRules:
    """A room's moderation state: ``owner`` (account name, ``""`` for none: ``#lobby``),
    ``operators`` (casefolded account -> account as registered), ``bans``, ``topic_locked``
    (only operators set the topic), ``key`` (``""``: none; else joining needs it), ``secret`` (the room is
    listed and its members shown to its members only: IRC's ``+s``), ``limit`` (most members, 0: no limit;
    ``+l``), ``invite_only`` (only invited members join; ``+i``) and ``external`` (members outside the room may
    send to it: IRC's ``-n``; only the IRC door has a way to) and ``moderated`` (only operators and voiced
    members speak: IRC's ``+m``, :meth:`~chatroom.model.rooms.Rooms.speak_refusal`)."""

    owner: str = ""
    operators: dict[str, str] = field(default_factory=dict)
    bans: list[Ban] = field(default_factory=list)
    topic_locked: bool = False
    key: str = ""
    secret: bool = False
    limit: int = 0
    invite_only: bool = False
    external: bool = False
    moderated: bool = False

    def is_operator(self, account: str | None) -> bool:
        """True if *account* owns the room or is one of its operators (None: a guest, never)."""
        if not account:
            return False
        folded = account.casefold()
        return folded == self.owner.casefold() or folded in self.operators

    def banned(self, account: str | None, address: str, mask: str = "") -> Ban | None:
        """The ban that keeps out a member logged in to *account* (None: a guest) from *address*, whose IRC
        ``nick!user@host`` is *mask*.

        Address bans catch guests only: a logged-in member is known by its account (a LAN shares
        addresses behind NAT); mask bans catch anyone whose mask matches."""
        for ban in self.bans:
            if ban.kind == "account" and account and ban.value == account.casefold():
                return ban
            if ban.kind == "address" and not account and address and ban.value == address:
                return ban
            if ban.kind == "mask" and mask and fnmatch.fnmatchcase(mask.lower(), ban.value):
                return ban
        return None

    def add_ban(self, ban: Ban) -> bool:
        """Add *ban*; False if the same kind and value is banned already."""
        if any(b.kind == ban.kind and b.value == ban.value for b in self.bans):
            return False
        self.bans.append(ban)
        return True

    def remove_ban(self, name: str) -> Ban | None:
        """Remove and return the ban whose value or label is *name* (any case), or None."""
        folded = name.casefold()
        for ban in self.bans:
            if ban.value.casefold() == folded or ban.label.casefold() == folded:
                self.bans.remove(ban)
                return ban
        return None

    def key_matches(self, given: str | None) -> bool:
        """True if the room has no key or *given* is it (compared in constant time)."""
        if not self.key:
            return True
        return given is not None and hmac.compare_digest(given.encode(), self.key.encode())

    def to_json(self) -> str:
        """The rules as one JSON object (what the room record stores)."""
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RoomRules:
        """Rules from :meth:`to_json`'s text (``""`` or bad JSON: no rules)."""
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        return cls(owner=str(data.get("owner", "")), operators=dict(data.get("operators", {})),
                   bans=[Ban(**b) for b in data.get("bans", [])], topic_locked=bool(data.get("topic_locked")),
                   key=str(data.get("key", "")), secret=bool(data.get("secret")), limit=int(data.get("limit", 0)),
                   invite_only=bool(data.get("invite_only")), external=bool(data.get("external")),
                   moderated=bool(data.get("moderated")))


def allowed(requires: str, account: str | None, rules: RoomRules | None, admin: bool) -> bool:
    """May a member logged in to *account* (None: a guest; *admin*: it is a server admin) use
    something that requires *requires* (one of :data:`LEVELS`) in a room with *rules*?

    An unknown level is refused (a typo must not open a command to everyone).
    """
    if requires == "anyone":
        return True
    if requires == "account":
        return account is not None
    if requires == "operator":
        return admin or (rules is not None and rules.is_operator(account))
    return requires == "admin" and admin


def denied(requires: str, what: str) -> str:
    """The refusal text: ``permission denied: /kick needs a room operator``."""
    return f"permission denied: {what} needs {_NEEDS.get(requires, requires)}"
