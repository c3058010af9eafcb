"""The nick table of one server: who holds which nick and its look-alikes, and every door's nick rule.

The hub (:class:`chatroom.model.hub.Hub`) owns one :class:`Nicks` and keeps it up to date as members come, go
and rename; the rules of a nick itself and of look-alikes are :mod:`chatroom.model.names`'. No sockets; the
loop thread only.
"""

from __future__ import annotations

from collections.abc import Callable

from chatroom.model.member import Member
from chatroom.model.names import check_nick, nick_key, nick_skeleton_key, too_alike

__all__ = ["Nicks"]


class Nicks:
    """Every connected member by nick (case-insensitive) and by confusable skeleton (UTS #39: look-alikes)."""

    def __init__(self) -> None:
        self.by_key: dict[str, Member] = {}
        self.by_skeleton: dict[str, Member] = {}
        #: ``registered(nick) -> account name | None``: the account a nick belongs to (None: no accounts).
        #: A registered nick (or a look-alike of it) is only given to a member logged in to that account.
        self.registered: Callable[[str], str | None] | None = None

    def claim(self, member: Member) -> None:
        """File *member* under its nick and that nick's skeleton (unchecked: see :meth:`refusal`)."""
        self.by_key[nick_key(member.nick)] = member
        self.by_skeleton[nick_skeleton_key(member.nick)] = member

    def release(self, member: Member) -> None:
        """Drop *member*'s nick and skeleton, where they are still filed under *member*."""
        if self.by_key.get(nick_key(member.nick)) is member:
            del self.by_key[nick_key(member.nick)]
        if self.by_skeleton.get(nick_skeleton_key(member.nick)) is member:
            del self.by_skeleton[nick_skeleton_key(member.nick)]

    def find(self, nick: str) -> Member | None:
        """The member called *nick* (case-insensitive), or None."""
        return self.by_key.get(nick_key(nick))

    def alike(self, nick: str) -> Member | None:
        """The member whose nick looks like *nick* (same confusable skeleton; *nick*'s holder too), or None."""
        return self.by_skeleton.get(nick_skeleton_key(nick))

    def refusal(self, nick: str, member: Member, *, accounts: bool = False) -> str | None:
        """Why *member* may not take *nick*, or None (*accounts*: registered nicks too): every door's nick rule."""
        reason = check_nick(nick)
        if reason:
            return reason
        owner = self.registered(nick) if accounts and self.registered is not None else None
        if owner is not None and (member.account is None or nick_key(owner) != nick_key(member.account)):
            if nick_key(owner) == nick_key(nick):
                return f"{nick} is registered; /login {nick} PASSWORD"
            return f"the nick {nick} is too much like the registered nick {owner}"
        other = self.by_key.get(nick_key(nick))
        if other is not None and other is not member:
            return f"the nick {nick} is taken"
        alike = self.by_skeleton.get(nick_skeleton_key(nick))
        if alike is not None and alike is not member:
            return too_alike(nick, alike.nick)
        return None
