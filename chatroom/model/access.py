"""Who may enter and who may read a room: the one rule every door, command and plugin read path follows.

**Reading** a room is seeing what it holds: its history (replayed on join, ``/history``, a plugin's
``ctx.history``, a search, IRC's CHATHISTORY), who is in it (``/who``, NAMES) and its topic. The rule,
in this order (docs/protocol.md, "Who may read a room"):

1. an **admin** (an account named in the server's ``admins``) reads every room;
2. a viewer **banned** from the room never reads it, member or not, also what was said after the ban
   (:meth:`~chatroom.model.moderation.RoomRules.banned`: by account, or a guest by address);
3. a **member** of the room reads it;
4. anyone else reads it when they could join it now without a key: the room has **no key**, or they
   are its owner or one of its operators (who join without the key).

So a keyed room is readable only by its members (and its operators and the admins, who may join it
without the key), and a room is never readable by someone it has banned.

**Listing** (``/rooms``, the web page's ``hello``, IRC LIST): a listed room shows everyone its name, its
member count and whether it has a key (IRC LIST shows keyed channels too); its topic only to viewers who
may read it (:func:`view`). Which rooms are listed is the room lifetime's business
(:mod:`chatroom.model.rooms`), but a *secret* room (``RoomRules.secret``, IRC's ``+s``) is listed only to
its members and the admins (:func:`listed_to`).

**Entering** (``/join``, IRC JOIN, ``ctx.join``: all through :meth:`chatroom.model.hub.Hub.enter`):
:func:`join_refusal`, raised by :func:`check_join` (an admin always; never a banned viewer; an
invited viewer passes the rest; an invite-only room needs an invitation, a keyed room the key and a full
room (``RoomRules.limit``) a free place, unless the viewer is its operator). Bans match an account, a
guest's address, or an IRC mask (``nick!user@host``, :attr:`Viewer.mask`).

**Speaking** (a chat line, ``/me``, a plugin's ``ctx.chat``, IRC PRIVMSG and NOTICE to a channel: all through
:meth:`chatroom.model.rooms.Rooms.speak_refusal`): :func:`speak_block` (an admin always; someone outside the
room only where it takes lines from outside, IRC's ``-n``; its operators and voiced members always, a ban
notwithstanding, as on IRC; never a banned viewer; in a moderated room nobody else).

**Changing nick** (``/nick``, ``ctx.rename``, the web page's nick, IRC NICK, a login's rename: all through
:meth:`chatroom.model.hub.Hub.rename`): :func:`nick_refusal`: a member the speak rule silences for a ban in a
room it is in may not change nick (no evading a mask ban), as solanum and hybrid answer ``435``; a nick change
*into* a banned mask is allowed (the speak rule then silences it).

The viewer is a :class:`Viewer`: a connected member (:meth:`Viewer.of`), or an account and an address
for a reader that is not in the rooms (a search across nodes, a door checking before it joins).
:data:`SERVER` is the server itself (plugins' timers and start-up), which reads everything. Pure
functions on the loop thread's objects; no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from chatroom.model.errors import JoinRefused, NickRefused, Refused, SpeakRefused

if TYPE_CHECKING:
    from chatroom.model.member import Member
    from chatroom.model.room import Room

__all__ = ["SERVER", "RoomView", "Viewer", "check_join", "check_read", "join_block", "join_refusal", "listed_to",
           "may_read", "nick_refusal", "read_refusal", "speak_block", "speak_refusal", "view"]


class Viewer(NamedTuple):
    """Who wants to read or enter a room: ``account`` (``str`` as registered, None for a guest),
    ``address`` (the peer's address without the port, ``""`` if unknown), ``member`` (the connected
    :class:`~chatroom.model.member.Member`, or None for a viewer that is not one), ``admin``
    (``bool``: logged in to an admin's account) and ``mask`` (its IRC ``nick!user@host``, ``""``: none)."""

    account: str | None
    address: str = ""
    member: Member | None = None
    admin: bool = False
    mask: str = ""

    @classmethod
    def of(cls, member: Member, admin: bool = False) -> Viewer:
        """The viewer a connected *member* is: its account, its address (the transport's ``host``, ``""``
        if it has none), *admin* or not, its mask (an IRC member's ``source``; else ``nick!nick@address``)."""
        address = str(getattr(member, "host", "") or "")
        mask = getattr(member, "source", "") or f"{member.nick}!{member.nick}@{address or 'chatroom'}"
        return cls(member.account, address, member, admin, mask)


#: The server itself (plugins' server events, start-up, timers without a caller): reads every room.
SERVER = Viewer(None, "", None, True)


class RoomView(NamedTuple):
    """What a viewer sees of a listed room: ``name`` (``#name``), ``label`` (bare), ``members`` (count),
    ``topic`` (``""`` when it has none *or the viewer may not read it*), ``keyed`` (joining needs a key),
    ``readable`` (the viewer may read it: :func:`may_read`), ``banned`` (the viewer is banned from it)."""

    name: str
    label: str
    members: int
    topic: str
    keyed: bool
    readable: bool
    banned: bool


def _is_member(viewer: Viewer, room: Room) -> bool:
    member = viewer.member
    return member is not None and room.members.get(member.id) is member


def read_refusal(viewer: Viewer, room: Room) -> str | None:
    """None if *viewer* may read *room* (the rule above), else the reason, for ``ERROR``:
    ``you are banned from #den`` or ``#den has a key: only its members can read it (/join #den KEY)``."""
    if viewer.admin:
        return None
    rules = room.rules
    if rules.banned(viewer.account, viewer.address, viewer.mask):
        return f"you are banned from {room.name}"
    if _is_member(viewer, room) or not rules.key or rules.is_operator(viewer.account):
        return None
    return f"{room.name} has a key: only its members can read it (/join {room.name} KEY)"


def listed_to(viewer: Viewer, room: Room) -> bool:
    """May *viewer* see *room* in a listing at all: any room but a secret one, which only its members and
    the admins see."""
    return not room.rules.secret or viewer.admin or _is_member(viewer, room)


def may_read(viewer: Viewer, room: Room) -> bool:
    """True if *viewer* may read *room*'s history, members and topic (:func:`read_refusal` is None)."""
    return read_refusal(viewer, room) is None


def check_read(viewer: Viewer, room: Room) -> None:
    """Raise :class:`~chatroom.model.errors.Refused` with the reason unless *viewer* may read *room*."""
    reason = read_refusal(viewer, room)
    if reason is not None:
        raise Refused(reason)


#: What :func:`join_block` answers, in words (``{0}``: the room; the key's words depend on a key given).
_BLOCKS = {"banned": "you are banned from {0}", "invite": "{0} is invite-only: it needs an invitation",
           "full": "{0} is full", "key": "{0} needs a key: /join {0} KEY", "wrong key": "wrong key for {0}"}


def join_block(viewer: Viewer, room: Room, key: str | None, *, invited: bool = False) -> str | None:
    """None if *viewer* may join *room* giving *key* (None: no key given), else why not, as a word:
    ``"banned"``, ``"invite"`` (invite-only, *invited* false), ``"key"`` (wrong or no key), ``"full"``
    (``limit`` members in it). A member is in already; an admin always enters; an invitation passes all but
    a ban; a room's operators pass all but a ban."""
    if viewer.admin or _is_member(viewer, room):
        return None
    rules = room.rules
    if rules.banned(viewer.account, viewer.address, viewer.mask):
        return "banned"
    if invited or rules.is_operator(viewer.account) or (viewer.member is not None and viewer.member.id in room.ops):
        return None
    if rules.invite_only:
        return "invite"
    if not rules.key_matches(key):
        return "key"
    if rules.limit and len(room.members) >= rules.limit:
        return "full"
    return None


def join_refusal(viewer: Viewer, room: Room, key: str | None, *, invited: bool = False) -> str | None:
    """:func:`join_block` in words, for ``ERROR``: ``you are banned from #den``, ``#den needs a key: /join #den
    KEY``, ``wrong key for #den``, ``#den is invite-only: ...``, ``#den is full``; None if *viewer* may join."""
    block = join_block(viewer, room, key, invited=invited)
    return None if block is None else _words(block, room, key)


def check_join(viewer: Viewer, room: Room, key: str | None, *, invited: bool = False) -> None:
    """Raise :class:`~chatroom.model.errors.JoinRefused` (:func:`join_refusal`'s words, :func:`join_block`'s
    word as ``block``) unless *viewer* may join *room* giving *key*."""
    block = join_block(viewer, room, key, invited=invited)
    if block is not None:
        raise JoinRefused(_words(block, room, key), block)


def _words(block: str, room: Room, key: str | None) -> str:
    return _BLOCKS["wrong key" if block == "key" and key is not None else block].format(room.name)


#: What :func:`speak_block` answers, in words (``{0}``: the room).
_SILENCED = {"outside": "you are not in {0}: /join {0} first", "banned": "you are banned from {0}",
             "moderated": "{0} is moderated: only its operators and voiced members speak"}


def speak_block(viewer: Viewer, room: Room) -> str | None:
    """None if *viewer* may say a line in *room*, else why not, as a word: ``"outside"`` (not a member, and the
    room takes no lines from outside: ``rules.external`` off), ``"banned"``, ``"moderated"`` (neither an operator
    nor voiced). An admin always speaks; the room's operators and voiced members speak, banned or not (IRC's
    ``+o``/``+v`` before ``+b``, as ngircd and most servers do)."""
    if viewer.admin:
        return None
    rules, member = room.rules, viewer.member
    if not _is_member(viewer, room) and not rules.external:
        return "outside"
    if member is not None and (member.id in room.voices or room.operated_by(member)) or \
            member is None and rules.is_operator(viewer.account):
        return None
    if rules.banned(viewer.account, viewer.address, viewer.mask):
        return "banned"
    return "moderated" if rules.moderated else None


def speak_refusal(viewer: Viewer, room: Room) -> SpeakRefused | None:
    """:func:`speak_block` as a :class:`~chatroom.model.errors.SpeakRefused` (the reason in words for ``ERROR``:
    ``#den is moderated: only its operators and voiced members speak``, ``you are banned from #den``, ``you are
    not in #den: /join #den first``; the word as ``block``), or None if *viewer* may speak."""
    block = speak_block(viewer, room)
    return None if block is None else SpeakRefused(_SILENCED[block].format(room.name), block)


def nick_refusal(viewer: Viewer, room: Room) -> NickRefused | None:
    """A :class:`~chatroom.model.errors.NickRefused` (``you are banned from #den: you cannot change your nick
    there``) if :func:`speak_block` silences *viewer* in *room* for a ban (so admins, the room's operators and
    voiced members pass), else None. Source: solanum's ``m_nick.c`` (``435 ERR_BANNICKCHANGE``)."""
    if speak_block(viewer, room) != "banned":
        return None
    return NickRefused(f"{_SILENCED['banned'].format(room.name)}: you cannot change your nick there", "banned",
                       room.name)


def view(viewer: Viewer, room: Room) -> RoomView:
    """What *viewer* sees of *room* in a listing: name, member count and key to all; the topic only
    if it may read the room."""
    readable = may_read(viewer, room)
    banned = not viewer.admin and room.rules.banned(viewer.account, viewer.address, viewer.mask) is not None
    return RoomView(room.name, room.label, len(room.members), room.topic if readable else "",
                    bool(room.rules.key), readable, banned)
