"""File offers waiting for this person's answer, and the text of ``/transfers``.

The server asks a receiver in ``ask`` mode with a frame ``file-offer ID SIZE
SENDER NAME`` (``docs/protocol.md``, "Consent and quotas"). The client loop
keeps those offers (:class:`Offer`, by ID) until the server starts the file
(``file-begin``) or ends the offer (``file-abort``), so that ``/accept``
alone can answer the only waiting one (:func:`pick_offer`) and
``/transfers`` can list them (:func:`transfer_lines`). Pure functions, no
I/O: the client loop's thread calls them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Offer", "Paused", "human_rate", "human_size", "pick_offer", "took", "transfer_lines"]


def human_size(size: int) -> str:
    """``2097152`` -> ``"2.0 MiB"``; bytes below 1 KiB as ``"512 B"`` (binary units, one decimal)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


#: A finished transfer smaller than this (bytes) reports its time, not a rate: its round trips are most
#: of that time, so a rate would say little (and it used to read ``0.0 MB/s``).
TINY = 64 * 1024


def human_rate(size: int, seconds: float) -> str:
    """How fast *size* bytes moved in *seconds*: ``"446.1 MB/s"``, ``"12.5 kB/s"``, ``"40 B/s"`` (decimal
    units, as network rates are given), so a slow or tiny transfer never reads ``0.0 MB/s``."""
    rate = size / max(seconds, 1e-6)
    for unit, scale in (("MB/s", 1e6), ("kB/s", 1e3)):
        if rate >= scale:
            return f"{rate / scale:.1f} {unit}"
    return f"{rate:.0f} B/s"


def took(size: int, seconds: float) -> str:
    """What a finished transfer's summary says of its speed: :func:`human_rate`, or for a file under
    :data:`TINY` bytes its time, ``"in 3 ms"`` (``"in 2.5 s"`` from a second on)."""
    if size >= TINY:
        return human_rate(size, seconds)
    return f"in {max(1, round(seconds * 1000))} ms" if seconds < 1 else f"in {seconds:.1f} s"


@dataclass
class Offer:
    """A file offered to this person: server transfer ID (``str`` of digits), name, sender, size in bytes;
    ``answer`` is ``""`` until ``/accept`` (``"accepted"``) or ``/decline`` (``"declined"``) is sent."""

    tid: str
    name: str
    sender: str
    size: int
    answer: str = ""
    since: float = field(default_factory=time.monotonic)


@dataclass
class Paused:
    """An interrupted transfer that can resume: its *token*, ``direction`` (``"up"``, ``"down"``), ``desc``,
    ``done`` of ``total`` bytes verified (0 for an own offer: its receivers know), ``refused`` when the
    server did not know it on this connection, ``delivered`` when an own offer was relayed in full on this
    connection and waits for its receivers to confirm the file (not interrupted)."""

    token: str
    direction: str
    desc: str
    done: int
    total: int
    refused: bool = False
    delivered: bool = False


def pick_offer(offers: dict[str, Offer], arg: str, verb: str) -> tuple[Offer | None, str | None]:
    """The offer ``/accept ARG`` or ``/decline ARG`` (*verb*) means, from *offers* (transfer ID -> offer,
    oldest first): ``(offer, None)``, or ``(None, why)`` when *arg* is empty and not exactly one offer
    waits for an answer. An ID this client does not know is ``(None, None)``: the caller sends it to
    the server as typed, which answers for it."""
    if arg:
        return offers.get(arg), None
    waiting = [o for o in offers.values() if not o.answer]
    if len(waiting) == 1:
        return waiting[0], None
    if not waiting:
        return None, f"no file offer is waiting for your answer (/{verb} ID)"
    ids = ", ".join(o.tid for o in waiting)
    return None, f"{len(waiting)} file offers are waiting for your answer ({ids}): /{verb} ID"


def _percent(done: int, total: int) -> str:
    return f"{100 * done // total}%" if total else "100%"


def transfer_lines(progress: list[Any], outgoing: list[str], offers: list[Offer], now: float | None = None, *,
                   paused: Sequence[Paused] = (), queued: Sequence[str] = ()) -> list[str]:
    """The lines ``/transfers`` prints: a summary line, then one line per transfer.

    *progress* are running transfers (``.tid``, ``.desc``, ``.done``, ``.total`` bytes,
    ``.started`` monotonic seconds, ``.direction`` ``"send"``/``"recv"``), *outgoing* the names of
    this client's offers still waiting for the receivers' answers, *offers* the offers made to this
    person, *paused* the interrupted transfers that can resume, *queued* this client's files waiting to be
    offered. Example::

        transfers: 1 out, 1 in, 1 offer, 1 interrupted
          up 12 a.bin: 1.0 MiB of 2.0 MiB (50%), 3.1 MB/s; /cancel 12
          down 3f9a1c2e b.iso from bob: 512.0 MiB of 1.0 GiB (50%), interrupted; /resume 3f9a1c2e, /cancel 3f9a1c2e
    """
    now = time.monotonic() if now is None else now
    sends = [p for p in progress if p.direction == "send"]
    recvs = [p for p in progress if p.direction == "recv"]
    if not (sends or recvs or outgoing or offers or paused or queued):
        return ["transfers: none"]
    interrupted = sum(not p.delivered for p in paused)
    parts = [f"{len(sends) + len(outgoing) + len(paused) + len(queued) - interrupted} out", f"{len(recvs)} in"]
    if offers:
        parts.append(f"{len(offers)} offer{'s' * (len(offers) > 1)}")
    if interrupted:
        parts.append(f"{interrupted} interrupted")
    lines = ["transfers: " + ", ".join(parts)]
    for p in [*sends, *recvs]:
        arrow = "up" if p.direction == "send" else "down"
        rate = human_rate(p.done, now - p.started)
        lines.append(f"  {arrow} {p.tid} {p.desc}: {human_size(p.done)} of {human_size(p.total)} "
                     f"({_percent(p.done, p.total)}), {rate}; /cancel {p.tid}")
    for name in outgoing:
        lines.append(f'  up - "{name}": offered, waiting for the receivers\' answers; /cancel "{name}"')
    for name in queued:
        lines.append(f'  up - "{name}": queued behind the files on their way; /cancel "{name}"')
    for o in offers:
        what = (f"{o.answer}, waiting for the file" if o.answer
                else f"waiting for your answer: /accept {o.tid} or /decline {o.tid}")
        lines.append(f'  offer {o.tid} "{o.name}" ({human_size(o.size)}) from {o.sender}: {what}')
    for p in paused:
        short = p.token[:8]
        if p.delivered:
            lines.append(f"  up {short} {p.desc}: {human_size(p.total)}, sent, waiting for the receivers to confirm; "
                         f"/cancel {short}")
            continue
        have = (f"{human_size(p.done)} of {human_size(p.total)} ({_percent(p.done, p.total)})" if p.direction == "down"
                else human_size(p.total))
        state = "the server does not know it now" if p.refused else "interrupted"
        lines.append(f"  {p.direction} {short} {p.desc}: {have}, {state}; /resume {short}, /cancel {short}")
    return lines
