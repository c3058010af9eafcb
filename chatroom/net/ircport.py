"""What the IRC door needs of the application: :class:`IrcApplication`, the door interface upward for IRC.

The door (:class:`chatroom.net.irc.IrcDoor` and its commands in ``chatroom/net/irc*.py``) reaches the server
assembly (:class:`chatroom.server.app.Server`, which implements it; ``Server`` passing itself to
:func:`chatroom.server.doors.open_doors`, typed with this protocol, is where ``mypy --strict`` checks that it does) only through the
members named here: the :class:`~chatroom.net.connection.Application` every door calls, the room model's parts
(hub, history, accounts) and the file relay, and the services below. The parts of floors above this one (the
plugin host, the dispatcher, the server password gate) appear as the few members the door uses of them
(:class:`IrcPlugins`, :class:`IrcDispatcher`, :class:`IrcGate`), so this floor imports nothing above it.
Loop thread only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from chatroom.model.accounts import AccountStore
from chatroom.model.history import Entry, History
from chatroom.model.hub import Hub
from chatroom.model.member import Member
from chatroom.model.room import Room
from chatroom.net.connection import Application, Connection, Transport
from chatroom.net.relay import Relay

__all__ = ["CommandIndex", "IrcApplication", "IrcDispatcher", "IrcGate", "IrcPlugins"]


class CommandIndex(Protocol):
    """The command registry (:class:`chatroom.plugins.commands.Registry`): ``get(name)`` the command a name or
    alias calls (lower case, no ``/``), or None. The door only asks whether chatroom has a command: what it says
    of one is what ``/help`` replies (``HELP``), and running it is the dispatcher's."""

    def get(self, name: str) -> object | None: ...


class IrcPlugins(Protocol):
    """The plugin host (:class:`chatroom.plugins.manager.PluginHost`) as the door sees it: its command registry
    (a command the door does not know, or a ``HELP`` subject, is chatroom's if the registry has it)."""

    @property
    def registry(self) -> CommandIndex: ...


class IrcDispatcher(Protocol):
    """The command dispatcher (:class:`chatroom.plugins.dispatch.Dispatcher`): ``speak`` says *text* (``kind``:
    ``"msg"``, ``"notice"`` or ``"me"``) in *room* as *client*, through the chat hooks, once the door has asked
    the speak rule (:meth:`chatroom.model.rooms.Rooms.speak_refusal`, answered with ``404``), and returns the
    stored :class:`~chatroom.model.history.Entry`, or None if a hook dropped it or the store refused it (told
    already)."""

    def speak(self, client: Connection, room: Room, text: str, kind: str = "msg") -> Entry | None: ...


class IrcGate(Protocol):
    """The server password gate (:class:`chatroom.server.gate.PasswordGate`): ``needed`` if connections must give
    it (``PASS``); ``check(given)`` whether *given* is it (True when there is none)."""

    @property
    def needed(self) -> bool: ...

    def check(self, given: str) -> bool: ...


class IrcApplication(Application, Protocol):
    """What the IRC door needs of the application besides the door interface (:class:`Application`).

    Parts: ``hub`` (the room model: members, nicks, rooms, the fan-out), ``history`` (its ``version`` tells a
    command that changed a room's state, whose replies wait for the commit; ``room(name)`` a room's creation
    time for ``329``), ``accounts`` (``SASL``, ``OPER``, ban masks by account), ``relay`` (``SENDFILE``'s
    one-time upload links), ``plugins``, ``dispatcher``, ``gate``; ``admins``: the admins' casefolded account
    names; ``history_on_join``: lines replayed on ``JOIN`` (0: none); ``transports``: every transport of the
    server (``LUSERS`` counts the IRC ones' unregistered connections).

    Services: ``send_line`` (a line of chatroom's as a ``NOTICE``), ``say_private`` (a private line through the
    ``private_message`` hooks; False if one dropped it), ``set_nick`` (raises
    :class:`~chatroom.model.errors.Refused`), ``run_in_thread`` (password checks:
    ``fn()`` on a worker thread, then ``on_done(result, error)`` on the loop thread), ``answer_when_saved``
    (hold a member's replies until the room store committed).
    """

    @property
    def hub(self) -> Hub: ...

    @property
    def history(self) -> History: ...

    @property
    def accounts(self) -> AccountStore: ...

    @property
    def relay(self) -> Relay: ...

    @property
    def plugins(self) -> IrcPlugins: ...

    @property
    def dispatcher(self) -> IrcDispatcher: ...

    @property
    def gate(self) -> IrcGate: ...

    @property
    def admins(self) -> frozenset[str]: ...

    @property
    def history_on_join(self) -> int: ...

    @property
    def transports(self) -> Sequence[Transport]: ...

    def send_line(self, member: Member, text: str) -> None: ...

    def say_private(self, member: Member, target: Member, text: str, *, notice: bool = False) -> bool: ...

    def set_nick(self, member: Member, nick: str) -> None: ...

    def run_in_thread(self, fn: Callable[[], Any], on_done: Callable[[Any, BaseException | None], None]) -> None: ...

    def answer_when_saved(self, member: Member) -> None: ...
