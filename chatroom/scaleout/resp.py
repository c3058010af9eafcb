"""RESP2, the Redis serialisation protocol, as a sans-I/O codec: commands to bytes, bytes to replies.

The framing is hiredis' (the C parser Redis itself maintains, through the ``hiredis`` package's
``Reader`` and ``pack_command``), used the way h11 and wsproto are used for HTTP and WebSocket: the
caller moves the bytes, this module never touches a socket. Reference: the Redis protocol
specification (redis.io, "Redis serialization protocol specification"), RESP2.

Why RESP2 and not RESP3: hiredis' Python ``Reader`` returns a RESP3 push (``>``) as a plain list, so
push messages could not be told from replies on one connection; with RESP2 a subscriber has a
connection of its own (:class:`~chatroom.scaleout.link.RedisLink` ``subscriber=True``), whose every
reply is a push, and every Redis version (and its forks) speaks it. RESP2 has no boolean type, so
``False`` never is a reply and is free to mean "incomplete"; this codec uses its own sentinel anyway.

Replies are ``bytes`` (simple and bulk strings), ``int``, ``None`` (nil), ``list`` (arrays, nested)
or :class:`ReplyError` (an error reply: a value, not raised). Measured here: 1.3-1.8 us per
published message (field notes, "Services for scale-out tests").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Union

import hiredis

__all__ = ["Codec", "ProtocolError", "Reply", "ReplyError", "pack"]

#: What :meth:`Codec.replies` yields.
Reply = Union[bytes, int, None, list[Any], "ReplyError"]

#: Bytes a half-received reply may hold in the reader before :class:`ProtocolError` (a Redis that
#: streams one endless reply is treated as broken, not followed until memory runs out).
MAX_REPLY = 512 * 1024 * 1024


class ReplyError(Exception):
    """An error reply from Redis (``-ERR ...``, ``-NOSCRIPT ...``, ``-WRONGTYPE ...``); ``str()`` is its text.

    ``code`` is its first word (``"ERR"``, ``"NOSCRIPT"``, ``"BUSY"``...). A reply, not a failure of the
    connection: the command was received and refused.
    """

    @property
    def code(self) -> str:
        """The error's first word, upper case (``"NOSCRIPT"``)."""
        return str(self).split(" ", 1)[0]


class ProtocolError(Exception):
    """The bytes from Redis are not RESP (a bug, or not a Redis server): the connection must be dropped."""


_INCOMPLETE = object()


def pack(*args: str | bytes | int | float) -> bytes:
    """One command as RESP bytes: ``pack("SET", "k", b"v")`` -> ``b"*3\\r\\n$3\\r\\nSET\\r\\n..."``.

    Arguments are ``str`` (UTF-8), ``bytes``, ``int`` or ``float`` (their decimal text). Any thread.
    """
    packed: bytes = hiredis.pack_command(args)  # type: ignore[arg-type]  # its stub types the tuple as one item long
    return packed


class Codec:
    """The reading side of one connection: :meth:`feed` what the socket gave, then take :meth:`replies`.

    One codec per connection (its buffer holds a partial reply). Raises :class:`ProtocolError` from
    :meth:`replies` when the bytes are not RESP or a partial reply passes *max_reply* bytes. One thread.
    """

    __slots__ = ("_reader", "_max")

    def __init__(self, max_reply: int = MAX_REPLY) -> None:
        self._reader = hiredis.Reader(replyError=ReplyError, notEnoughData=_INCOMPLETE)
        self._max = max_reply

    def feed(self, data: bytes) -> None:
        """Add bytes read from the socket."""
        self._reader.feed(data)

    def replies(self) -> Iterator[Reply]:
        """Every complete reply fed so far, in order (a partial one waits for more bytes)."""
        reader = self._reader
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                raise ProtocolError(str(exc)) from None
            if reply is _INCOMPLETE:
                if reader.len() > self._max:
                    raise ProtocolError(f"a reply of more than {self._max} bytes")
                return
            yield reply

    @property
    def buffered(self) -> int:
        """Bytes fed and not yet returned as replies."""
        return int(self._reader.len())
