"""The plugin port: everything the plugin floor needs from the server it runs in, and nothing more.

The plugin floor (the :class:`~chatroom.plugins.context.Context` every hook and command gets, the command
:class:`~chatroom.plugins.dispatch.Dispatcher`, the derived :class:`~chatroom.plugins.events.PluginEvents`)
never reaches into the server's parts (its hub, relay, loop or transports): it calls the methods named here,
and only these. :class:`Host` is the whole port, a :class:`typing.Protocol` made of four small ones, each a
service the server offers plugins:

- :class:`LoopPort`: the clocks, timers, worker threads and the loop-thread rule;
- :class:`MemberPort`: finding members and sending them lines, names, accounts, disconnects;
- :class:`RoomPort`: rooms, what is said in them (the fan-out), their history and moderation;
- :class:`FilePort`: the file relay's offers and consent;

plus the plugin floor's own parts the host holds: the plugin manager (``plugins``, seen here through
:class:`PluginsPort`, what a context uses of it) and each plugin's state, store and folder.

:class:`chatroom.server.port.ServerPort` implements it for one server process; the test kit
(:mod:`chatroom.testing`) builds the same server from fake I/O parts, so plugins meet the same port in
tests. A door added later (the IRC door, several processes sharing rooms through Redis) changes what is
*behind* these methods (a member on another wire or in another process is still reached by ``send_line``;
a room's history may come from a shared store), and a service plugins need from it is added here, in one
place, and implemented by the server: no plugin and no context method changes. Every method runs on the
loop thread unless its docstring says otherwise.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from chatroom.model.accounts import AccountStore
    from chatroom.model.errors import SpeakRefused
    from chatroom.model.history import Entry
    from chatroom.model.member import Member
    from chatroom.model.room import Room
    from chatroom.model.search import SearchCursor, SearchPage
    from chatroom.net.scheduler import Timer
    from chatroom.plugins.commands import Registry
    from chatroom.plugins.info import PluginInfo

__all__ = ["FilePort", "Host", "LoopPort", "MemberPort", "PluginsPort", "RoomPort"]

#: ``on_delivered(room, entry, author, recipients)``: a room line was fanned out (see ``message_delivered``).
Delivered = Callable[["Room", "Entry", "Member | None", int], None]
#: ``on_membership(member, room, joined, reason)``: *member* joined (True) or left (False) *room*.
Membership = Callable[["Member", "Room", bool, str], None]


@runtime_checkable
class LoopPort(Protocol):
    """Time, timers and threads."""

    @property
    def loop_thread(self) -> int | None:
        """The id of the thread that runs the loop (``threading.get_ident()``), None before it started."""

    @property
    def now(self) -> float:
        """The loop's monotonic clock at the start of this pass, in seconds. Any thread."""

    def monotonic(self) -> float:
        """The loop's monotonic clock now, in seconds (the kit's fake clock). Any thread."""

    def wall_clock(self) -> float:
        """The wall clock, Unix seconds (the kit's fake clock moves it). Any thread."""

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any, plugin: str = "core") -> Timer:
        """Call ``fn(*args)`` on the loop after *delay* seconds with *plugin*'s fault isolation; a handle."""

    def call_soon_threadsafe(self, fn: Callable[..., Any], args: tuple[Any, ...], plugin: str) -> None:
        """Any thread: call ``fn(*args)`` on the loop at its next pass (waking it), with *plugin*'s isolation."""

    def run_in_thread(self, fn: Callable[[], Any], on_done: Callable[[Any, BaseException | None], None], *,
                      plugin: str = "core", serial: bool = False) -> None:
        """Run ``fn()`` on a worker thread, then ``on_done(result, error)`` on the loop."""

    def cancel_timers(self, plugin: str) -> None:
        """Cancel every pending timer of *plugin* (a reload)."""


@runtime_checkable
class MemberPort(Protocol):
    """Members: finding them, what they are sent, their names and accounts."""

    def is_admin(self, member: Member | None) -> bool:
        """Is *member* logged in to an account named in the server's ``admins`` (the one admin rule)?"""

    @property
    def accounts(self) -> AccountStore:
        """The server's account store."""

    def find_client(self, nick: str) -> Member | None:
        """The connected member called *nick* (any case), or None."""

    def send_line(self, member: Member, text: str) -> None:
        """Queue one line for *member* (after its rooms' pending lines)."""

    def send_private(self, nick: str, account: str | None, target: Member, text: str, *, notice: bool = False) -> None:
        """A private line from *nick* (logged in to *account*) to *target* (what ``/msg`` sends; *notice*: an
        IRC ``NOTICE``)."""

    def stream(self, member: Member, lines: Iterator[str], plugin: str) -> None:
        """Send many lines to *member*, pulled as its queue drains."""

    def close_client(self, member: Member, reason: str, *, flush: bool = False, tell: bool = False) -> None:
        """Disconnect *member* (after its queued output, with *flush*; ``ERROR disconnected (REASON)`` last,
        with *tell*)."""

    def set_nick(self, member: Member, nick: str) -> None:
        """Rename *member* (``nick_changed`` runs); raises Refused for a bad, taken or look-alike nick."""

    def private(self, sender: Member | None, target: Member, text: str, *, notice: bool = False) -> bool:
        """*sender*'s (None: the server's) private line to *target* after the ``private_message`` hooks (what
        ``/msg`` does; *notice*: an IRC ``NOTICE``); False if a hook dropped it."""

    def log_in(self, member: Member, account: str) -> None:
        """Log *member* in to *account* (Refused ``no account X`` unless it is a registered account's name, any
        case) and name it after the account as registered: whoever else holds that nick or a look-alike is logged
        out and renamed ``guestN``, told why; then, unless the account is an admin's, *member* is kicked from
        every room that bans the account."""

    def handle_line(self, member: Member, line: str, *, bypass_capture: bool = False) -> float:
        """Act on *line* as if *member* typed it (chat or command); returns its flood cost."""

    def call_hook(self, hook: str, member: Member | None, /, **kwargs: Any) -> list[Any]:
        """Call *hook* on every plugin with ``ctx.client`` = *member*; the non-None results."""

    def notify_admins(self, text: str) -> None:
        """Send ``text`` to every connected admin."""


@runtime_checkable
class RoomPort(Protocol):
    """Rooms, what is said in them, their history and moderation."""

    @property
    def lobby(self) -> Room:
        """The default room."""

    def rooms(self, reader: Member | None) -> list[Room]:
        """Every room listed to *reader* (None: the server), by name (the room lifetime's listing)."""

    def find_room(self, name: str) -> Room | None:
        """The room called *name* (``#x`` or ``x``, any case), or None."""

    def named_room(self, room: Room | str) -> Room:
        """*room* itself, or the room a name names (any case); Refused ``no such room: NAME`` if there is none."""

    def read_refusal(self, reader: Member | None, room: Room) -> str | None:
        """Why *reader* (None: the server itself) may not read *room*'s history, members and topic, or None if
        it may: the model's room access rule (:mod:`chatroom.model.access`), which every plugin read asks."""

    def speak_refusal(self, member: Member, room: Room) -> SpeakRefused | None:
        """Why *member* may not say a line in *room* (outside it, banned, moderated), or None if it may: the
        model's speak rule (:meth:`chatroom.model.rooms.Rooms.speak_refusal`), asked once per chat line."""

    def enter(self, member: Member, name: str, key: str | None) -> tuple[Room, bool]:
        """Put *member* in the room *name* (created if new, owned by its account) and make it current:
        ``(room, joined)``, *joined* False if it was in it. Raises JoinRefused for what the room's rules refuse
        (the model's rule: :meth:`chatroom.model.hub.Hub.enter`), Refused for a bad name, a creator too fast, a
        server at ``--max-rooms``."""

    def part(self, member: Member, room: Room, reason: str = "", *, notice: str = "", by: str = "") -> None:
        """Take *member* out of *room* (announced; a *notice* is told whatever the room's size; *by*: who kicked)."""

    def say(self, member: Member, room: Room, text: str, kind: str) -> Entry:
        """*member* says *text* in *room* (``kind`` ``"msg"`` or ``"me"``): recorded and fanned out; the event."""

    def chat(self, member: Member, text: str, kind: str) -> None:
        """*member* says *text* in its current room after the ``chat_message`` hooks (what typing does)."""

    def broadcast(self, room: Room, text: str, exclude: Member | None = None) -> None:
        """The line *text*, as it is, to everyone in *room* but *exclude* (a room event, not recorded)."""

    def mode(self, room: Room, by: Member | None, change: str, text: str) -> None:
        """Persist ``room.rules``, then tell *room* the moderation change ``* text``, an IRC mode *change*
        (``"+o bob"``) on the IRC door (:meth:`chatroom.model.hub.Hub.mode`)."""

    def set_topic(self, member: Member, room: Room, text: str) -> None:
        """Set *room*'s topic as *member* (persisted, recorded, told)."""

    def history(self, reader: Member | None, room: Room, *, last: int | None, since: int | None,
                before: int | None) -> list[Entry]:
        """Stored lines of *room*, oldest first, as *reader* (None: the server itself) may read them (see
        ``Context.history``); raises Refused if it may not (:meth:`read_refusal`)."""

    def search(self, reader: Member | None, query: str | SearchCursor, limit: int, show: bool) -> SearchPage:
        """A page of a full-text search of what *reader* (None: the server) may read; with *show*, *reader* is
        sent the hits too."""

    def replay(self, member: Member, entries: Iterable[Entry]) -> int:
        """Send *member* history *entries*, marked as history; how many."""

    def replay_recent(self, member: Member, room: Room) -> int:
        """Send *member* the last ``--history-on-join`` lines of *room*; how many."""

    def watch_rooms(self, delivered: Delivered | None, membership: Membership | None) -> None:
        """Report every fanned-out room line to *delivered* and every join and leave of a room to
        *membership* (None: not reported, nothing is computed for it)."""


@runtime_checkable
class FilePort(Protocol):
    """The file relay: offers, consent and policies."""

    def start_transfer(self, member: Member, name: str, size: int) -> int:
        """Offer the file *name* (*size* bytes) from *member* to its room; the transfer id (Refused why not)."""

    def answer_offer(self, member: Member, transfer_id: int | None, accept: bool) -> None:
        """*member* accepts or declines an offer (Refused for an unknown one)."""

    def set_file_policy(self, member: Member, policy: str) -> None:
        """How offers to *member* are answered: ``"ask"``, ``"all"`` or ``"none"``."""


class PluginsPort(Protocol):
    """What a context uses of the plugin manager (:class:`chatroom.plugins.manager.PluginHost`), which the
    host holds. (Named here rather than imported: the manager imports the hook specs, which name the context.)"""

    registry: Registry
    info: dict[str, PluginInfo]

    def config_for(self, plugin: str) -> Mapping[str, Any]:
        """*plugin*'s frozen settings."""

    def implemented(self, hook_name: str) -> bool:
        """True if any plugin implements *hook_name*."""

    def chain(self, hook_name: str, make_ctx: Callable[[str], Any], key: str, value: Any, **kwargs: Any) -> Any:
        """Pass *value* through every implementation of *hook_name* (None: dropped)."""

    def is_active(self, plugin: str) -> bool:
        """False once *plugin* is disabled."""

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Switch the plugin *name* on or off at run time."""


@runtime_checkable
class Host(LoopPort, MemberPort, RoomPort, FilePort, Protocol):
    """The whole plugin port: the four services, and the plugin floor's own parts the host keeps."""

    @property
    def plugins(self) -> PluginsPort:
        """The plugin manager (hooks, commands, settings, faults)."""

    def plugin_folder(self, plugin: str) -> Path:
        """*plugin*'s own folder (``ctx.data_dir``: ``DATA_DIR/plugins/<plugin>/``), created on first use. Any
        thread."""

    def plugin_state(self, plugin: str) -> dict[str, Any]:
        """*plugin*'s private dict (``ctx.state``), kept for the server's lifetime."""

    def plugin_store(self, plugin: str) -> sqlite3.Connection:
        """*plugin*'s SQLite connection (``ctx.store``), opened on first use."""

    def context_expired(self, plugin: str, what: str, member: Member) -> None:
        """*plugin* used ``ctx.WHAT``, a client part of a context whose client, *member*, left: log it once
        and return, or raise :class:`~chatroom.plugins.threads.ContextExpired` (the test kit)."""
