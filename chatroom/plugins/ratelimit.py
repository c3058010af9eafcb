"""Per-command rate limits, after Sopel's ``@plugin.rate(user=, channel=, server=)``.

A command declares ``rate=Rate(user=10)``: a member must wait 10 seconds
between two calls of it (``room=``: anyone in the same room; ``server=``:
anyone at all). A call that comes too soon is answered
``ERROR /poll: too soon, try again in 7 s`` (or the command's own
``Rate.message``, where ``{seconds}`` is replaced) and the handler does not
run. Server admins are not limited, as in Sopel. Only calls that succeeded
count: a call refused before its handler (arguments, permission, too soon),
one its handler refuses (``raise CommandError``: "a stand-up is already
running") and one whose handler fails spend nothing, so a refusal never
locks anyone out. ``user`` means the caller's account when logged in, else its
connection (a ``/nick`` keeps the bucket), and a guest who reconnects from an
address still waits out what the guests who left from it owe. This is on top of the flood token bucket every connection
has (:mod:`chatroom.net.budget`), which bounds all input whatever the command.

Loop thread only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Rate", "RateLimiter"]

#: Remembered call times above which old entries are pruned.
PRUNE_AT = 10_000


@dataclass(frozen=True)
class Rate:
    """Seconds that must pass between calls: per member (``user``), per room (``room``), for everyone (``server``).

    0 means no limit at that scope. ``message``, if given, replaces the
    default refusal text; ``{seconds}`` in it becomes the whole seconds left.
    """

    user: float = 0.0
    room: float = 0.0
    server: float = 0.0
    message: str = ""

    def longest(self) -> float:
        """The longest of the three intervals, in seconds."""
        return max(self.user, self.room, self.server)


class RateLimiter:
    """The last call time per (command, scope, key); ``check`` then ``record`` for each call."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str, str], float] = {}
        self._users: dict[str, set[tuple[str, str, str]]] = {}  # member key -> its user-scope keys in _last
        self._longest = 0.0

    def _keys(self, command: str, rate: Rate, member: str, room: str) -> list[tuple[tuple[str, str, str], float]]:
        keys = []
        if rate.user > 0:
            keys.append(((command, "user", member), rate.user))
        if rate.room > 0:
            keys.append(((command, "room", room), rate.room))
        if rate.server > 0:
            keys.append(((command, "server", ""), rate.server))
        return keys

    def wait(self, command: str, rate: Rate, member: str, room: str, now: float, *, also: str = "") -> float:
        """Seconds *member* (a caller's key: ``@account`` or ``#connection``) in *room* must still wait before
        calling *command*; 0 if it may. *also*: a second ``user`` key that must have waited too (a guest's
        address, holding what guests who left from it owe)."""
        left = 0.0
        keys = self._keys(command, rate, member, room)
        if also and rate.user > 0:
            keys.append(((command, "user", also), rate.user))
        for key, interval in keys:
            last = self._last.get(key)
            if last is not None:
                left = max(left, last + interval - now)
        return left

    def move(self, member: str, to: str) -> None:
        """Hand every ``user``-scope call time of *member* to the key *to* (the latest of both is kept)."""
        for key in self._users.pop(member, ()):
            last = self._last.pop(key, None)
            if last is not None:
                target = (key[0], "user", to)
                self._last[target] = max(last, self._last.get(target, last))
                self._users.setdefault(to, set()).add(target)

    def record(self, command: str, rate: Rate, member: str, room: str, now: float) -> None:
        """Note a call made at *now* (monotonic seconds)."""
        self._longest = max(self._longest, rate.longest())
        for key, _ in self._keys(command, rate, member, room):
            self._last[key] = now
            if key[1] == "user":
                self._users.setdefault(member, set()).add(key)
        if len(self._last) > PRUNE_AT:
            cutoff = now - self._longest
            self._last = {k: t for k, t in self._last.items() if t > cutoff}
            self._users = {m: live for m, keys in self._users.items() if (live := keys & self._last.keys())}

    @staticmethod
    def refusal(command: str, rate: Rate, left: float) -> str:
        """The text of the ``ERROR`` for a call *left* seconds too soon."""
        seconds = max(1, math.ceil(left))
        if rate.message:
            return rate.message.replace("{seconds}", str(seconds))
        return f"/{command}: too soon, try again in {seconds} s"
