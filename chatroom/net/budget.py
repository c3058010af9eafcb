"""Per-connection budgets: the flood token bucket and the limits the loop enforces.

Flood control follows the IRC servers' model (ngircd's penalty time,
InspIRCd's per-command penalties and "fakelag"): every connection has a
**token bucket** that refills at ``rate`` tokens per second up to ``burst``.
Each line the server handles costs tokens (a chat line 1, a command its
declared cost, an unknown command :data:`UNKNOWN_COST`...). While the bucket
is empty the server stops reading that connection's socket, so a flood is
*slowed*, never dropped: TCP backpressure holds the rest in the client's
kernel buffers. A client that stays throttled without its input ever running
dry for ``kill`` seconds is past the hard limit: it gets ``ERROR excess
flood`` and is disconnected.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FloodPolicy", "TOO_LONG_COST", "UNKNOWN_COST"]

#: Tokens an unknown command costs (it also costs a did-you-mean lookup).
UNKNOWN_COST = 5.0
#: Tokens an over-long line or a refused frame costs.
TOO_LONG_COST = 2.0


@dataclass(frozen=True)
class FloodPolicy:
    """``rate`` tokens per second (0 disables flood control), ``burst`` tokens at most,
    ``kill`` seconds of continuous throttling before disconnecting (0: never)."""

    rate: float = 25.0
    burst: float = 250.0
    kill: float = 30.0

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

    @staticmethod
    def empty(tokens: float) -> bool:
        """True when a bucket at *tokens* cannot pay for one more line (float rounding forgiven)."""
        return tokens < 1.0 - 1e-9
