"""The bus: one Lua call per room per loop pass stores a room's lines and publishes the pass, in order.

``publish.lua`` (beside this module) runs atomically in Redis: it gives the pass's lines the room's
next ids (a counter in the room's meta hash: dense, never reused), appends them to the room's stream
(trimmed to the retention rule), and publishes every event of the pass, lines and unnumbered events
(joins, notices) alike, as one message on the room's channel, with the ids and the room's **epoch**.
The epoch is a random word the room gets when Redis does not hold it: a node that sees it change
knows that Redis lost the room (restarted empty) and that lines may be missing. This is Centrifugo's
design (per-channel offset and epoch, assigned in the same script as the publish).

Keys, for a *prefix* (default ``chatroom``) and a room ``#lobby`` (the room in braces: a Redis Cluster
hash tag, so one room's keys share a slot)::

    chatroom:{#lobby}:meta   hash: seq (last id), epoch
    chatroom:{#lobby}:log    stream: entry "<id>-0", field l = the stored event
    chatroom:{#lobby}        channel: one message per pass (see :func:`parse_batch`)

Payloads are opaque bytes here (the model's encoding is the caller's). Pure functions and one small
class; the link (:mod:`chatroom.scaleout.link`) moves the bytes. Loop thread only.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from importlib.resources import files
from typing import Any, NamedTuple

from chatroom.scaleout.link import RedisLink, Unavailable
from chatroom.scaleout.resp import ReplyError

__all__ = ["PUBLISH_LUA", "PUBLISH_SHA", "Batch", "Keys", "Publisher", "new_epoch", "parse_batch"]

#: The script's text and its SHA-1 (what ``EVALSHA`` names).
PUBLISH_LUA: str = files("chatroom.scaleout").joinpath("publish.lua").read_text(encoding="utf-8")
PUBLISH_SHA: str = hashlib.sha1(PUBLISH_LUA.encode()).hexdigest()

STORED, ONLY_PUBLISHED = b"s", b"n"


class Keys:
    """The Redis key and channel names of a room, under *prefix* (``str``; no braces in it)."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str = "chatroom") -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError(f"a key prefix is a non-empty word without braces, not {prefix!r}")
        self.prefix = prefix

    def meta(self, room: str) -> str:
        """The room's meta hash (``seq``, ``epoch``)."""
        return f"{self.prefix}:{{{room}}}:meta"

    def stream(self, room: str) -> str:
        """The room's stream of stored lines."""
        return f"{self.prefix}:{{{room}}}:log"

    def channel(self, room: str) -> str:
        """The room's Pub/Sub channel."""
        return f"{self.prefix}:{{{room}}}"

    def room_of(self, channel: bytes | str) -> str:
        """The room a channel name of :meth:`channel` belongs to (ValueError otherwise)."""
        text = channel.decode() if isinstance(channel, bytes) else channel
        head = f"{self.prefix}:{{"
        if not (text.startswith(head) and text.endswith("}")):
            raise ValueError(f"not a room channel: {text!r}")
        return text[len(head):-1]


class Batch(NamedTuple):
    """One published pass of one room: ``epoch`` (``str``), ``first`` and ``last`` ids of its stored lines
    (``first == last + 1`` when it stored none), and ``events``: ``(id, payload)`` in order, ``id`` 0 for an
    event that was only published."""

    epoch: str
    first: int
    last: int
    events: list[tuple[int, bytes]]


def new_epoch() -> str:
    """A fresh random epoch word (16 hex digits)."""
    return os.urandom(8).hex()


def parse_batch(message: bytes) -> Batch:
    """The :class:`Batch` of one message of a room channel; ValueError if it is not one."""
    head, _, body = message.partition(b"\n")
    try:
        epoch, first, last = head.split(b" ")
        first_id, last_id = int(first), int(last)
    except ValueError:
        raise ValueError(f"not a published batch: {message[:60]!r}") from None
    events: list[tuple[int, bytes]] = []
    next_id = first_id
    for event in body.split(b"\n") if body else ():
        flag, payload = event[:1], event[1:]
        if flag == STORED:
            events.append((next_id, payload))
            next_id += 1
        elif flag == ONLY_PUBLISHED:
            events.append((0, payload))
        else:
            raise ValueError(f"not a published event: {event[:60]!r}")
    if next_id != last_id + 1:
        raise ValueError(f"batch {first_id}..{last_id} holds {next_id - first_id} stored lines")
    return Batch(epoch.decode(), first_id, last_id, events)


class Publisher:
    """Runs ``publish.lua`` on a command *link* for rooms named with *keys*.

    Call :meth:`load` from the link's ``on_ready`` (``SCRIPT LOAD``: a restarted Redis forgot the
    script); a ``NOSCRIPT`` reply (someone ran ``SCRIPT FLUSH``) is answered by sending the same call
    with ``EVAL`` once, so the caller never sees it. Loop thread only.
    """

    def __init__(self, link: RedisLink, keys: Keys) -> None:
        self.link = link
        self.keys = keys

    def load(self) -> None:
        """Queue ``SCRIPT LOAD`` of the script (before any call on this connection). Raises Unavailable."""
        self.link.call("SCRIPT", "LOAD", PUBLISH_LUA)

    def publish(self, room: str, events: Sequence[tuple[bool, bytes]], *, keep: int = 0, floor: int = 0,
                epoch: str | None = None, deadline: float = 0.0, on_reply: Callable[[Any], None]) -> None:
        """Store and publish *room*'s *events* of one pass (``(stored, payload)`` in order; a payload holds no
        ``\\n``) in one call. ``on_reply`` gets ``(epoch, first, last)`` (``str``, ``int``, ``int``), a
        :class:`~chatroom.scaleout.resp.ReplyError` or an :class:`~chatroom.scaleout.link.Unavailable`. *keep*:
        lines the stream keeps (0: all); *floor*: the highest id of the room the caller knows (a room Redis
        lost starts above it); *epoch*: the room's epoch if Redis must create it (default: a new one); *deadline*:
        Unix seconds after which Redis must not run the call (``STALE`` error reply instead; 0: none), so a
        call given up on for its slowness is never stored later.
        Raises :class:`~chatroom.scaleout.link.Unavailable` (or Backpressure) when it cannot be queued."""
        args: list[str | bytes | int | float] = [self.keys.meta(room), self.keys.stream(room), self.keys.channel(room), keep, floor,
                epoch or new_epoch(), int(deadline * 1000), *[(STORED if stored else ONLY_PUBLISHED) + payload for stored, payload in events]]

        def answered(reply: Any) -> None:
            if isinstance(reply, ReplyError) and reply.code == "NOSCRIPT":
                try:
                    self.link.call("EVAL", PUBLISH_LUA, 2, *args, on_reply=answered)
                except Unavailable as exc:
                    on_reply(exc)
                return
            if isinstance(reply, list):
                reply = (reply[0].decode(), int(reply[1]), int(reply[2]))
            on_reply(reply)

        self.link.call("EVALSHA", PUBLISH_SHA, 2, *args, on_reply=answered)
