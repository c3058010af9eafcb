"""A receive-side parser for bulk data: bytes land in its buffer, frame payloads leave as views of it.

:class:`StreamParser` parses the same protocol as :class:`chatroom.wire.lines.Parser` (lines and
frames, ``docs/protocol.md``) for a peer that *receives* files, as ``chatroom-client`` does. It
follows asyncio's ``BufferedProtocol``: :meth:`StreamParser.get_buffer` hands out the free end of
one fixed buffer, the caller fills it (``sock.recv_into``) and reports how much with
:meth:`StreamParser.buffer_updated`, and :meth:`StreamParser.events` yields what completed. A
frame's payload is yielded as one or more :class:`~chatroom.wire.lines.Frame` events with the same
``meta``, each carrying the next piece of the payload as a ``memoryview`` of the buffer: nothing is
copied in Python, and nothing is allocated per chunk (measured: with ``recv`` into new ``bytes``
and a growing buffer, a 1 GiB file cost the receiver about 2 CPU seconds in allocations and page
faults alone; see ``docs/benchmarks.md``, "Receiving in chatroom-client").

Rules for the caller (one thread): use a piece before the next :meth:`get_buffer` call (it may move
the buffer's contents), and do not keep it. A frame of size 0 is one event with payload ``b""``.
Lines are :class:`~chatroom.wire.lines.Line`; a line over ``max_line`` bytes, or a frame header
announcing more than ``max_frame`` bytes, is :class:`~chatroom.wire.lines.TooLong` and skipped as
it arrives (the stream stays in sync); a header whose length is not 1-10 ASCII digits is shown as
a :class:`~chatroom.wire.lines.Line` of its sanitized text. Never raises on any input.
"""

from __future__ import annotations

from collections.abc import Iterator

from chatroom.wire.lines import FRAME_MARK, MAX_FRAME, MAX_LINE, Frame, Line, TooLong, split_frame_header

__all__ = ["BUFFER", "StreamParser"]

#: Default buffer size in bytes: a 1 MiB chunk plus its header and the lines around it in one read.
BUFFER = 2 * 1024 * 1024


class StreamParser:
    """Incremental parser over one fixed buffer of *size* bytes (at least ``2 * max_line``).

    See the module docstring. Memory held is the buffer, whatever arrives.
    """

    __slots__ = ("max_line", "max_frame", "_buf", "_view", "_start", "_end", "_need", "_meta", "_skip",
                 "_skip_line")

    def __init__(self, size: int = BUFFER, max_line: int = MAX_LINE, max_frame: int = MAX_FRAME) -> None:
        self.max_line = max_line
        self.max_frame = max_frame
        self._buf = bytearray(max(size, 2 * max_line))
        self._view = memoryview(self._buf)
        self._start = self._end = 0  # unparsed bytes are _buf[_start:_end]
        self._need = 0  # payload bytes of the current frame still to come
        self._meta = ""
        self._skip = 0  # payload bytes of an oversized frame still to discard
        self._skip_line = 0  # > 0 while discarding the rest of an over-long line (bytes so far)

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as events."""
        return self._end - self._start

    def get_buffer(self) -> memoryview:
        """The free end of the buffer, to be filled from the socket (never empty). Moves the unparsed bytes
        to the front first when needed, so pieces yielded before are no longer valid."""
        if self._start == self._end:
            self._start = self._end = 0
        elif len(self._buf) - self._end < self.max_line:
            size = self._end - self._start
            self._buf[:size] = self._view[self._start:self._end]
            self._start, self._end = 0, size
        return self._view[self._end:]

    def buffer_updated(self, nbytes: int) -> None:
        """*nbytes* bytes were written at the start of the last :meth:`get_buffer` view."""
        self._end += nbytes

    def events(self) -> Iterator[Line | Frame | TooLong]:
        """Yield every event the received bytes complete, frame payloads piece by piece (module docstring)."""
        buf, view = self._buf, self._view
        while self._start < self._end:
            start, end = self._start, self._end
            if self._need:
                n = min(self._need, end - start)
                self._need -= n
                self._start = start + n
                yield Frame(self._meta, view[start:start + n])
                continue
            if self._skip:
                n = min(self._skip, end - start)
                self._skip -= n
                self._start = start + n
                continue
            nl = buf.find(b"\n", start, end)
            if self._skip_line:
                if nl < 0:
                    self._skip_line += end - start
                    self._start = end
                    return
                self._start = nl + 1
                size, self._skip_line = self._skip_line + nl + 1 - start, 0
                yield TooLong("line", size)
                continue
            if nl < 0:
                if end - start >= self.max_line:
                    self._skip_line = end - start
                    self._start = end
                return
            self._start = nl + 1
            if nl + 1 - start > self.max_line:
                yield TooLong("line", nl + 1 - start)
                continue
            stop = nl - 1 if nl > start and buf[nl - 1] == 13 else nl
            if buf[start] != FRAME_MARK:
                yield Line(buf[start:stop].decode("utf-8", "replace"))
                continue
            header = split_frame_header(bytes(buf[start + 1:stop]))
            if isinstance(header, Line):
                yield header
                continue
            size, meta = header
            if size > self.max_frame:
                self._skip = size
                yield TooLong("frame", size)
            elif size == 0:
                yield Frame(meta, b"")
            else:
                self._meta, self._need = meta, size

    def feed(self, data: bytes) -> list[Line | Frame | TooLong]:
        """Consume *data* (copied in) and return its events, payload pieces copied out as ``bytes``.

        For callers off the hot path (tests, a last read after a lost connection); the receive
        loop uses :meth:`get_buffer`, :meth:`buffer_updated` and :meth:`events` instead.
        """
        out: list[Line | Frame | TooLong] = []
        with memoryview(data) as src:
            offset = 0
            while offset < len(src):
                free = self.get_buffer()
                n = min(len(free), len(src) - offset)
                free[:n] = src[offset:offset + n]
                free.release()
                self.buffer_updated(n)
                offset += n
                for event in self.events():
                    if isinstance(event, Frame) and isinstance(event.payload, memoryview):
                        event = Frame(event.meta, bytes(event.payload))
                    out.append(event)
        return out
