"""Rooms and history ids: what a reconnect needs to rejoin and fetch exactly the lines it missed (:class:`CatchUp`).

With ``tags`` the handshake sends ``/caps tags`` (docs/protocol.md "Capabilities"); every room line then
comes with message tags, which are taken off here (the person sees exactly the line a client without
tags sees; a console with an ``event(Event)`` method, the terminal UI's, gets the whole
:class:`~chatroom.client.events.Event` instead) and remembered:

* the last history id seen per room (``msgid``), the rooms the client is in (any tagged line, ``OK
  join``, ``OK part``, a kick of its own nick) and the current room (``OK join``/``OK current room``/``OK
  part``, or a tagged line without the ``[#room] `` prefix), and the key given to ``/join #room KEY``;
* the greeting's replay is sent before ``/caps tags`` takes effect, so once named the client asks
  ``/history 1`` (its reply is not shown) to learn the default room's last id.

After a reconnect (:meth:`CatchUp.begin_rejoin`) and a new handshake, the greeting, the default room's
replay and every ``/join`` replay are not shown; the client sends ``/join #room [KEY]`` for each room it
was in (the current room last, so it is current again; ``/part`` of the default room if it had left
it), then ``/history #room since ID 500`` per room, again while a page comes back full (at most
:data:`MAX_PAGES` pages). Lines of its own nick are not counted as missed. Live lines of those rooms
that arrive meanwhile are held. When every reply is in it prints ``* reconnected after 12 s; 5 missed
lines in #lobby``, the missed lines, then the held live lines that were neither seen before the loss nor
among them, and calls ``on_caught_up()``.

A room's ids only grow (docs/protocol.md "Rooms"), so a live line whose id is at or below the last id seen
in its room is never shown: each line is shown once per room (a defence in depth: a restarted scale-out node
fetches what it missed before it accepts connections, docs/scale-out.md).

Loop thread only; lines go out through :class:`~chatroom.client.replies.Replies`, whose replies come
back to this object's handler.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from chatroom.client.events import Event, parse
from chatroom.client.io import Console
from chatroom.client.replies import Replies

__all__ = ["MAX_PAGES", "PAGE", "CatchUp", "away_text"]

#: Lines asked per ``/history #room since ID N`` page (the server's maximum).
PAGE = 500
#: Pages fetched per room at most after a reconnect.
MAX_PAGES = 20
#: Live lines held while catching up (beyond that they are shown at once).
MAX_HELD = 10_000
_WELCOME = re.compile(r"^\* Welcome to chatroom, room (\S+?)\. ")


def away_text(seconds: float) -> str:
    """``12 s``, ``3 min 5 s``, ``2 h 4 min`` (rounded down)."""
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def _room(name: str) -> str:
    return name.lower() if name.startswith("#") else "#" + name.lower()


class CatchUp:
    """Room and history-id bookkeeping, and the rejoin after a reconnect (see the module docstring).

    *me* gives the client's nick now; *sync_ids* asks ``/history 1`` once named (a client that may
    reconnect needs the default room's last id).
    """

    def __init__(self, replies: Replies, console: Console, *, me: Callable[[], str], sync_ids: bool,
                 on_caught_up: Callable[[], None]) -> None:
        self.replies = replies
        self.console = console
        self._me = me
        self.sync_ids = sync_ids
        self._on_caught_up = on_caught_up
        #: Room -> last history id seen (0: none yet). Insertion order is join order.
        self.last_ids: dict[str, int] = {}
        self.current_room: str | None = None
        self._keys: dict[str, str] = {}
        self._default_room: str | None = None
        self.tags_on = False
        self._synced = False  # the default room's last id was asked for (/history 1)
        self._muted = False  # a reconnect's greeting and replay: not shown
        self._lost_at = 0.0  # rejoining after a loss at this time.monotonic()
        self._catching = False  # a reconnect's rejoin and history fetch are running
        self._rejoin_rooms: list[str] = []
        self._missed: dict[str, list[Event]] = {}
        self._missed_ids: dict[str, set[int]] = {}
        self._pages: dict[str, int] = {}
        self._held_live: list[Event] = []
        self._before: dict[str, int] = {}  # room -> last id seen before the loss (a rejoin's held lines)

    def tags_answered(self, ok: bool) -> None:
        """The reply to ``/caps tags``."""
        self.tags_on = ok

    # ---- every line -------------------------------------------------------------------

    def line(self, text: str) -> bool:
        """A server line that is no reply: bookkeeping; True when it was shown or must not be (handled here)."""
        if self._default_room is None or self._muted:
            found = _WELCOME.match(text)
            if found:
                self._default_room = _room(found.group(1))
        if self._muted:
            return True  # a reconnect's greeting and the default room's replay
        if not self.tags_on:
            return False
        event = parse(text)
        if event.tags.get("search"):  # a /search hit: no line of a room you are in; shown as the server wrote it
            self.console.line(event.text)
            return True
        if event.room is None and event.kind is not None:  # a server notice of no room (a nick change)
            self.console.line(event.text)  # shown without its tags
            return True
        if event.room is None or event.kind is None:  # not a room line (a reply starting with "@" stays whole)
            return self._catching and text.startswith("* topic of ")  # a rejoin's /join reply
        room = _room(event.room or "")
        if self._catching and room in self._pages:
            if event.history:
                self._missed_line(room, event)
                return True
            if len(self._held_live) < MAX_HELD:
                self._held_live.append(event)
                return True
        if event.history and "sync" in self.replies:
            if event.msgid is not None:
                self._note_id(room, event.msgid)
            return True
        if not event.history and self._shown(room, event):
            return True  # never an id twice per room (a node's own catch-up re-delivering a line, live)
        self._show_live(room, event)
        return True

    def _shown(self, room: str, event: Event) -> bool:
        """True when *event* has an id at or below the last one seen in *room* (a room's ids only grow:
        docs/protocol.md "Rooms"): a live line shown already, or fetched as missed."""
        return event.msgid is not None and event.msgid <= self.last_ids.get(room, 0)

    def _missed_line(self, room: str, event: Event) -> None:
        """A history line during a rejoin: missed when it answers ``/history since`` (not a /join replay)."""
        msgid = event.msgid
        if msgid is None or self.replies.head != f"history:{room}":
            return  # the replay of a /join (replies come in order: the head is the one answering)
        self._note_id(room, msgid)
        if msgid not in self._missed_ids[room] and event.nick != self._me():
            self._missed_ids[room].add(msgid)
            self._missed[room].append(event)

    def _show_live(self, room: str, event: Event) -> None:
        if event.msgid is not None:
            self._note_id(room, event.msgid)
        self.last_ids.setdefault(room, 0)
        if not event.text.startswith(f"[{event.room}] "):  # no room prefix: the current room
            self.current_room = room
        if event.kind == "notice" and _kicked(event.text, self._me()):
            self._left(room)
        self._print(event)

    def _print(self, event: Event, text: str | None = None) -> None:
        """Hand a room line to the console: with its tags when it takes events (the terminal UI)."""
        show = getattr(self.console, "event", None)
        if show is not None:
            show(event)
        else:
            self.console.line(event.text if text is None else text)

    def _note_id(self, room: str, msgid: int) -> None:
        self.last_ids[room] = max(msgid, self.last_ids.get(room, 0))

    def _left(self, room: str) -> None:
        self.last_ids.pop(room, None)
        if self.current_room == room:
            self.current_room = None

    # ---- replies ----------------------------------------------------------------------

    def reply(self, text: str) -> None:
        """A reply to a line the person typed: follow joins and parts."""
        if text.startswith("OK join "):
            room = _room(text.split()[2])
            self.last_ids.setdefault(room, 0)
            self.current_room = room
        elif text.startswith("OK current room "):
            self.current_room = _room(text.split()[3])
        elif text.startswith("OK part "):
            parts = text.split()
            self._left(_room(parts[2].rstrip(";")))
            if "current room" in text:
                self.current_room = _room(parts[-1])

    def typed(self, cmd: str, rest: str) -> None:
        """A typed command (*cmd* lower case): remember the key of ``/join #room KEY`` for a rejoin."""
        if cmd in ("/join", "/j"):
            words = rest.split()
            if len(words) == 2:
                self._keys[_room(words[0])] = words[1]

    def _reply(self, what: str, text: str) -> None:
        """A reply to one of this object's lines (*what*: ``sync``, ``join:#room``, ``part:#room``,
        ``history:#room``)."""
        kind, _, room = what.partition(":")
        ok = text.startswith("OK")
        if kind == "sync":
            if ok and text.startswith("OK history "):
                named = _room(text.split()[2])
                self.last_ids.setdefault(named, 0)
                self.current_room = self.current_room or named
        elif kind == "join":
            if ok:
                self.reply(text)
            else:
                self.console.error(f"could not rejoin {room}: {text}")
                self._left(room)
                self._pages.pop(room, None)
        elif kind == "part":
            if ok:
                self.reply(text)
        elif not ok:
            self.console.error(f"could not fetch what was missed in {room}: {text}")
        else:
            count = text.split()
            pages = self._pages.get(room, 1)
            if len(count) >= 4 and count[3].isdigit() and int(count[3]) >= PAGE and pages < MAX_PAGES:
                self._ask_history(room)

    def after_reply(self, label: str, named: bool) -> None:
        """After each reply taken for the client's own lines (*label*); *named*: the server accepted a
        name on this connection. The next step once every reply so far is in."""
        if label != "pass":
            self._muted = False  # a reconnect's greeting and replay came before this
        if self.replies or not named:
            return
        if not self._lost_at:
            if self.sync_ids and self.tags_on and not self._synced:
                self._synced = True
                self.replies.ask("/history 1", "sync", self._reply)
        elif not self._catching:
            self._send_rejoin()
        else:
            self._finish()

    # ---- a reconnect ------------------------------------------------------------------

    def begin_rejoin(self, lost_at: float) -> None:
        """A new connection after a loss at *lost_at* (``time.monotonic()``): keep quiet until the
        handshake is through, then rejoin."""
        self._lost_at = lost_at
        self._rejoin_rooms = list(self.last_ids)
        if self.current_room in self._rejoin_rooms:  # the current room last: /join makes it current
            self._rejoin_rooms.remove(self.current_room)
            self._rejoin_rooms.append(self.current_room)
        self._muted = True
        self._catching = False
        self._synced = True
        self.tags_on = False

    def _send_rejoin(self) -> None:
        self._catching = True
        self._muted = False
        self._missed = {}
        self._missed_ids = {}
        self._held_live = []
        self._pages = {}
        old_ids = dict(self.last_ids)
        for room in self._rejoin_rooms:
            self._missed[room] = []
            self._missed_ids[room] = set()
            self._pages[room] = 0
            key = self._keys.get(room)
            self.replies.ask(f"/join {room}" + (f" {key}" if key else ""), f"join:{room}", self._reply)
        default = self._default_room
        if default and default not in self._rejoin_rooms:
            self.replies.ask(f"/part {default}", f"part:{default}", self._reply)
        self.last_ids = {room: old_ids[room] for room in self._rejoin_rooms}
        self._before = dict(self.last_ids)
        if self.tags_on:
            for room in self._rejoin_rooms:
                self._ask_history(room)
        if not self.replies:
            self._finish()

    def _ask_history(self, room: str) -> None:
        self._pages[room] = self._pages.get(room, 0) + 1
        self.replies.ask(f"/history {room} since {self.last_ids.get(room, 0)} {PAGE}", f"history:{room}",
                         self._reply)

    def _finish(self) -> None:
        self._catching = False
        away = away_text(time.monotonic() - self._lost_at)
        self._lost_at = 0.0
        self.console.line(f"* reconnected after {away}; {self._summary()}")
        for room, events in self._missed.items():
            for event in events:  # /history does not mark another room in its text: say it
                marked = room == self.current_room or event.text.startswith(f"[{event.room}] ")
                self._print(event, event.text if marked else f"[{event.room}] {event.text}")
        held, self._held_live = self._held_live, []
        seen, before = self._missed_ids, self._before
        self._pages = {}
        for event in held:  # neither seen before the loss nor among the missed lines just shown
            room = _room(event.room or "")
            if event.msgid is None or (event.msgid > before.get(room, 0) and event.msgid not in seen.get(room, ())):
                self._show_live(room, event)
        self._missed = {}
        self._missed_ids = {}
        self._on_caught_up()

    def _summary(self) -> str:
        counts = [(room, len(lines)) for room, lines in self._missed.items() if lines]
        if not self.tags_on:
            return "missed lines unknown (this server has no /caps tags)"
        if not counts:
            return "nothing missed"
        first, n = counts[0]
        summary = f"{n} missed line{'s' * (n != 1)} in {first}"
        summary += "".join(f", {n} in {room}" for room, n in counts[1:])
        full = [room for room, pages in self._pages.items() if pages >= MAX_PAGES]
        if full:
            summary += f" (more in {', '.join(full)}: /history ROOM)"
        return summary


def _kicked(text: str, nick: str) -> bool:
    """True for the notice ``* alice kicked NICK from den (...)`` (any room prefix)."""
    return re.match(rf"^(\[\S+\] )?\* \S+ kicked {re.escape(nick)} from ", text) is not None
