"""The server's care of its room history: the commit of every loop pass, answers held until saved, retention.

:class:`HistoryKeeper` is what :class:`chatroom.server.app.Server` runs for its
:class:`~chatroom.model.history.History` (and the stores that expire with it): at the end of every pass, after
the fan-out, it hands the pass's lines to the writer thread and says in the log when the store starts failing
and when it recovers (docs/protocol.md, "Durability"); it holds a member's answer until the room-store changes
made so far are committed; and every :data:`PRUNE_EVERY` seconds it drops rooms whose linger is over, idle
resumable transfers and one bounded step of old history (``--history-keep``). Loop thread only.
"""

from __future__ import annotations

import logging

from chatroom.model.history import History
from chatroom.model.member import Member
from chatroom.model.rooms import Rooms
from chatroom.net.connection import Connection
from chatroom.net.logs import ERR
from chatroom.net.loop import Loop
from chatroom.net.resume import Resumes

__all__ = ["PRUNE_EVERY", "PRUNE_ROWS", "HistoryKeeper"]

log = logging.getLogger("chatroom.server")

#: Seconds between two retention passes over the history.
PRUNE_EVERY = 60.0
#: Lines one retention step deletes at most (each also leaves the search index, 10-25 us: bench/search.py).
PRUNE_ROWS = 500


class HistoryKeeper:
    """Commits, answer gating and retention for *history* on *loop*; *rooms* and *resumes* expire with it;
    *keep* is ``(lines, days)`` of history kept per room (None: no limit)."""

    def __init__(self, history: History, loop: Loop, rooms: Rooms, resumes: Resumes,
                 keep: tuple[int | None, float | None]) -> None:
        self.history = history
        self.loop = loop
        self.rooms = rooms
        self.resumes = resumes
        self.keep = keep
        self._failing: str | None = None  # what the log said last about the history store

    def start(self) -> None:
        """Apply retention before the first client (nobody is replayed what it drops), then every minute."""
        for _ in range(10_000):
            if not self.history.prune(*self.keep):
                break
        self.history.commit()
        self.loop.call_later(PRUNE_EVERY, self._prune)

    def commit(self) -> None:
        """End of every pass, after the fan-out: hand the pass's lines to the writer (never waits), apply what it
        reported; a failing store is logged when it starts failing and when it recovers (protocol.md, Durability)."""
        writes = self.history.writes
        writes.collect()
        self.history.submit()
        error = writes.store_error
        if error != self._failing:
            if error is not None and self._failing is None:
                log.error("history store unavailable: %s; new lines wait in memory (at most %d, then speakers "
                          "are refused) and are retried", error, writes.max_unsaved, extra=ERR)
            elif error is None:
                log.warning("history store recovered after %.1f s: %d lines saved", writes.outage,
                            writes.saved_since_failure, extra=ERR)
            self._failing = error

    def answer_when_saved(self, member: Member) -> None:
        """Hold what *member* is sent until every room-store change made so far is committed: who changed a
        topic, a room or its rules hears ``OK`` (or the IRC reply) only then (docs/protocol.md, "Durability")."""
        if isinstance(member, Connection) and not member.gone:  # a member the loop writes to
            self.loop.gate(member)
            self.history.when_saved(lambda: self.loop.ungate(member))

    def _prune(self) -> None:  # every minute: rooms whose linger is over, then one bounded retention step
        more = self.rooms.expire()  # the step runs on the history's writer thread; the loop never waits
        self.resumes.expire()  # resumable transfers idle past --resume-keep
        def again(pruned: bool, _error: BaseException | None) -> None:
            self.loop.call_later(0 if pruned or more else PRUNE_EVERY, self._prune)
        self.history.prune(*self.keep, max_rows=PRUNE_ROWS, on_done=again)
