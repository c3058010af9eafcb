"""Senders' budgets for the file relay: files per hour and bytes per day.

:class:`Quota` is one part the relay (:class:`chatroom.net.relay.Relay`)
holds (``docs/protocol.md``, "Consent"): per-sender sliding windows, *files
per hour* and *bytes per day* (0: unlimited), checked before any byte moves
and charged when an offer is made (refunded when nobody accepts it).
Prosody's ``mod_http_file_share`` is the model: a per-user daily byte
budget, refused with a clear reason. It knows senders only by key
(:func:`quota_key`), never their connections. Loop thread only.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["DAY", "HOUR", "Quota", "quota_key"]

HOUR = 3600.0
DAY = 86400.0
#: Senders remembered by one :class:`Quota` before a sweep drops the idle ones.
_SWEEP_AT = 4096


def quota_key(client: Any) -> str:
    """Whom a quota is charged to: the account when logged in, else the address (a nick is free to change)."""
    account = getattr(client, "account", None)
    if account:
        return f"account:{account.lower()}"
    host = getattr(client, "host", "")
    return f"address:{host}" if host else f"nick:{client.nick.lower()}"


class Quota:
    """Per-sender budgets: at most *files_per_hour* offers per hour and *bytes_per_day* bytes a day.

    Sliding windows over ``clock()`` seconds; 0 disables a limit (then nothing
    is recorded for it). Memory: one ``[time, size]`` entry per offer in the
    last day (or hour), per sender key.
    """

    def __init__(self, files_per_hour: int = 0, bytes_per_day: int = 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.files_per_hour = files_per_hour
        self.bytes_per_day = bytes_per_day
        self.clock = clock
        self._log: dict[str, deque[list[float]]] = {}

    @property
    def active(self) -> bool:
        """True when any quota is set (0 means unlimited)."""
        return bool(self.files_per_hour or self.bytes_per_day)

    def _entries(self, key: str, now: float) -> deque[list[float]]:
        span = DAY if self.bytes_per_day else HOUR
        entries = self._log.get(key, deque())
        while entries and entries[0][0] <= now - span:
            entries.popleft()
        if len(self._log) > _SWEEP_AT:
            for other in [k for k, e in self._log.items() if not e or e[-1][0] <= now - span]:
                del self._log[other]
        return entries

    def check(self, key: str, size: int) -> str | None:
        """Why *key* may not offer *size* more bytes now (a sentence with the wait in seconds), or None."""
        if not self.active:
            return None
        now = self.clock()
        entries = self._entries(key, now)
        if self.files_per_hour:
            recent = [e for e in entries if e[0] > now - HOUR]
            if len(recent) >= self.files_per_hour:
                wait = math.ceil(recent[-self.files_per_hour][0] + HOUR - now)
                return (f"quota: you offered {len(recent)} files in the last hour and the server allows "
                        f"{self.files_per_hour} (--quota-files-per-hour); try again in {wait} s")
        if self.bytes_per_day:
            if size > self.bytes_per_day:
                return (f"quota: {size} bytes is more than the {self.bytes_per_day} bytes a day the server "
                        f"allows each sender (--quota-bytes-per-day)")
            used = int(sum(e[1] for e in entries))
            if used + size > self.bytes_per_day:
                freed, until = 0, DAY
                for t, n in entries:
                    freed += int(n)
                    if used - freed + size <= self.bytes_per_day:
                        until = t + DAY - now
                        break
                return (f"quota: you sent {used} of the {self.bytes_per_day} bytes a day the server allows "
                        f"(--quota-bytes-per-day) and this file needs {size}; try again in {math.ceil(until)} s")
        return None

    def charge(self, key: str, size: int) -> list[float] | None:
        """Record one offer of *size* bytes by *key*; returns the entry (for :meth:`refund`), None if unlimited."""
        if not self.active:
            return None
        entry = [self.clock(), float(size)]
        self._log.setdefault(key, deque()).append(entry)
        return entry

    def refund(self, key: str, entry: list[float] | None) -> None:
        """Forget an offer nobody accepted."""
        entries = self._log.get(key)
        if entry is not None and entries is not None:
            try:
                entries.remove(entry)
            except ValueError:
                pass
