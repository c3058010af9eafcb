"""A loop pass's batch of encoded room events, as the hub's fan-out hands it out (chatroom.model.hub).

The batch of one wire variant is the events' bytes joined once; a member who spoke in the pass gets it
without its own events, cut out by position. Pure functions on bytes; any thread.
"""

from __future__ import annotations

__all__ = ["without"]


def without(batch: bytes, bounds: list[int], skip: list[int]) -> bytes:
    """*batch* without its events at the positions *skip* (ascending; event i is ``batch[bounds[i]:bounds[i + 1]]``):
    the hot path of a speaker's share of the fan-out, a few slices instead of a loop over the whole batch."""
    parts: list[bytes] = []
    start = 0
    for i in skip:
        parts.append(batch[start:bounds[i]])
        start = bounds[i + 1]
    parts.append(batch[start:])
    return b"".join(parts)
