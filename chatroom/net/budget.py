"""Per-connection budgets: the flood token bucket and the limits the loop enforces.

Flood control follows InspIRCd's model (docs/protocol.md, "Budgets and
limits", says why and compares ngircd's): every connection has a **token
bucket** that refills at ``rate`` tokens per second up to ``burst`` (InspIRCd's
``<connect commandrate>`` and ``threshold``). Each line the server handles
costs tokens (a chat line 1, a command its declared cost, an unknown command
:data:`UNKNOWN_COST`...). While the bucket is empty the server handles
nothing more from that connection ("fake lag"): what it sends meanwhile is
read and held, unhandled, up to ``backlog`` lines or :data:`BACKLOG_TEXT`
characters (InspIRCd's ``recvq``). A client past that is flooding, not
typing: it gets ``ERROR excess flood`` and is disconnected, the lines it held
never reach anyone. A person pasting ``burst`` lines is never slowed; a longer
paste, or a bot answering faster than ``rate``, is slowed to ``rate`` lines
per second and never cut off while it stays under the backlog. ``kill``
optionally also disconnects a client that stays throttled, its input never
running dry, for that many seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BACKLOG_TEXT", "EMPTY_BELOW", "FloodPolicy", "TOO_LONG_COST", "UNKNOWN_COST"]

#: Tokens an unknown command costs (it also costs a did-you-mean lookup).
UNKNOWN_COST = 5.0
#: Tokens an over-long line or a refused frame costs.
TOO_LONG_COST = 2.0
#: Characters of held lines a throttled connection may have waiting (twice the longest line, 64 KiB).
BACKLOG_TEXT = 128 * 1024
#: A bucket holding fewer tokens than this cannot pay for one more line (one token, float rounding forgiven).
EMPTY_BELOW = 1.0 - 1e-9


@dataclass(frozen=True)
class FloodPolicy:
    """``rate`` tokens per second (0 disables flood control), ``burst`` tokens at most, ``backlog`` lines a
    throttled client may have waiting before it is disconnected (0: no limit but :data:`BACKLOG_TEXT`),
    ``kill`` seconds of continuous throttling before disconnecting (0: never)."""

    rate: float = 2.0
    burst: float = 20.0
    kill: float = 0.0
    backlog: int = 100

    @property
    def enabled(self) -> bool:
        """False when ``rate`` is 0 (no flood control)."""
        return self.rate > 0

    def refill(self, tokens: float, stamp: float, now: float) -> float:
        """The bucket's level at *now* (seconds) given *tokens* at *stamp*."""
        return min(self.burst, tokens + (now - stamp) * self.rate)

    def wait(self, tokens: float) -> float:
        """Seconds until a bucket at *tokens* (< 1) holds one token again (at least 1 ms)."""
        return max(0.001, (1.0 - tokens) / self.rate)

    def excess(self, lines: int, text: int) -> bool:
        """True when *lines* held lines of *text* characters in all are more than a throttled client may have
        waiting (more than ``backlog`` lines, or more than :data:`BACKLOG_TEXT` characters)."""
        return (self.backlog > 0 and lines > self.backlog) or text > BACKLOG_TEXT

    @staticmethod
    def empty(tokens: float) -> bool:
        """True when a bucket at *tokens* cannot pay for one more line (float rounding forgiven)."""
        return tokens < EMPTY_BELOW
