"""Plugin calls that block the loop: the warning, and the quarantine of a plugin that keeps doing it.

One thread serves every client, so a hook or command that blocks (``time.sleep``, a blocking HTTP call, a
slow query) stalls the whole room while it runs, whoever caused the call. The host times every call
(:meth:`chatroom.plugins.manager.PluginHost.run` and friends); a call longer than ``seconds``
(``--slow-hook-ms``) is logged as a warning naming the plugin and the function. When one plugin has made
``limit`` such calls within :data:`QUARANTINE_WINDOW` seconds it is quarantined: the host disables it at run
time for everyone (its commands answer ``ERROR plugin NAME is quarantined ...``, its hooks and timers stop),
logs it under ``[ERROR]`` and tells the connected admins, one of whom may ``/plugins enable NAME`` it again.
Moving the code off the loop is not possible in general (a plugin's code expects the loop thread), so
quarantine is the answer: a command that sleeps 5 s stalls the room at most ``limit`` times, never once more.

Wall-clock time is what is measured, since a plugin that sleeps uses no CPU yet stalls the room; a
machine so loaded that calls are descheduled can therefore make a plugin look slow, which is why one slow
call only warns. Loop thread only.
"""

from __future__ import annotations

import logging
import time

from chatroom.net.logs import ERR

__all__ = ["QUARANTINE_WINDOW", "SlowCalls"]

log = logging.getLogger("chatroom.plugins")

#: Seconds within which ``limit`` slow calls of one plugin quarantine it.
QUARANTINE_WINDOW = 600.0


class SlowCalls:
    """Slow calls per plugin: ``seconds`` is the limit of one call, ``limit`` the slow calls within
    :data:`QUARANTINE_WINDOW` that quarantine a plugin (0: never)."""

    def __init__(self, seconds: float, limit: int) -> None:
        self.seconds = seconds
        self.limit = limit
        self._recent: dict[str, list[float]] = {}  # plugin -> when its recent slow calls ended (time.monotonic)

    def blocked(self, plugin: str, what: str, elapsed: float, strike: bool) -> str:
        """Log that *plugin* blocked the loop *elapsed* seconds in *what* (a function's name); with *strike*,
        count it, and return why the plugin must be quarantined now (``""``: not yet)."""
        log.warning("plugin %s blocked the loop for %.0f ms in %s (limit %.0f ms): use ctx.run_in_thread "
                    "or ctx.call_later", plugin, elapsed * 1000, what, self.seconds * 1000, extra=ERR)
        if not strike or not self.limit:
            return ""
        now = time.monotonic()
        recent = [t for t in self._recent.get(plugin, ()) if now - t < QUARANTINE_WINDOW] + [now]
        if len(recent) < self.limit:
            self._recent[plugin] = recent
            return ""
        self._recent.pop(plugin, None)
        return (f"it blocked the loop {len(recent)} times in {QUARANTINE_WINDOW / 60:.0f} minutes, the last for "
                f"{elapsed * 1000:.0f} ms in {what} (limit {self.seconds * 1000:.0f} ms)")

    def notice(self, plugin: str, why: str) -> str:
        """Log the quarantine of *plugin* (*why*: what :meth:`blocked` returned) and return the logged text."""
        text = (f"plugin {plugin} quarantined: {why}; its commands and hooks are off until an admin "
                f"types /plugins enable {plugin}")
        log.error(text, extra=ERR)
        return text

    def forget(self, plugin: str) -> None:
        """Drop *plugin*'s slow calls (it was enabled again)."""
        self._recent.pop(plugin, None)
