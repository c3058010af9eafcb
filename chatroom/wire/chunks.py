"""Chunks of a resumable file transfer: their sizes, their hash list, bitmaps of them, and transfer tokens.

Sans-I/O arithmetic shared by the server's relay and every client (docs/protocol.md, "Resumable
transfers"). A file of ``size`` bytes is cut into ``chunk``-byte pieces (the last one shorter), numbered
from 0; chunk *i* is ``size``'s bytes ``[i * chunk, min(size, (i + 1) * chunk))``. The sender's offer
carries the SHA-256 of every chunk, in order (:func:`hash_list`: 32 bytes each, concatenated), so a
receiver can check each chunk by itself. A set of chunks travels as a **bitmap** in BitTorrent's layout
(BEP 3, ``bitfield``): bit *i* is the bit ``0x80 >> (i % 8)`` of byte ``i // 8``; ``ceil(count / 8)``
bytes, spare bits zero. A transfer **token** is 128 random bits as 32 lowercase hex digits.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

__all__ = [
    "DEFAULT_CHUNK",
    "DIGEST",
    "MAX_CHUNK",
    "MAX_CHUNKS",
    "MIN_CHUNK",
    "bitmap",
    "bitmap_size",
    "chunk_count",
    "chunk_span",
    "hash_list",
    "is_sha256",
    "is_token",
    "pick_chunk",
    "set_bits",
]

#: Bytes of one chunk's SHA-256 in the hash list.
DIGEST = 32
#: The smallest and largest chunk (bytes); one chunk travels in one frame, so at most a frame's 4 MiB.
MIN_CHUNK = 64 * 1024
MAX_CHUNK = 4 * 1024 * 1024
#: Most chunks one file may have: its hash list is then at most 2 MiB, its bitmap 8 KiB.
MAX_CHUNKS = 65536
#: The chunk size chatroom-client and the web page use unless the file needs larger ones.
DEFAULT_CHUNK = 1024 * 1024

_TOKEN = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def chunk_count(size: int, chunk: int) -> int:
    """How many chunks of *chunk* bytes a file of *size* bytes has (0 for an empty file)."""
    return -(-size // chunk)


def chunk_span(size: int, chunk: int, index: int) -> tuple[int, int]:
    """``(offset, length)`` in bytes of chunk *index* of a *size*-byte file; raises IndexError past the end."""
    offset = index * chunk
    if index < 0 or offset >= size:
        raise IndexError(f"chunk {index} is past the end of a {size}-byte file")
    return offset, min(chunk, size - offset)


def pick_chunk(size: int, preferred: int = DEFAULT_CHUNK) -> int | None:
    """The chunk size for a *size*-byte file: *preferred*, doubled until the file has at most
    :data:`MAX_CHUNKS` chunks; None if even :data:`MAX_CHUNK` is too small (a file over 256 GiB)."""
    chunk = max(MIN_CHUNK, min(preferred, MAX_CHUNK))
    while chunk_count(size, chunk) > MAX_CHUNKS:
        if chunk >= MAX_CHUNK:
            return None
        chunk = min(MAX_CHUNK, chunk * 2)
    return chunk


def hash_list(chunks: Iterable[bytes | memoryview]) -> bytes:
    """The SHA-256 digests of *chunks*, concatenated (32 bytes each)."""
    return b"".join(hashlib.sha256(c).digest() for c in chunks)


def bitmap_size(count: int) -> int:
    """Bytes of a bitmap of *count* chunks."""
    return (count + 7) // 8


def bitmap(indices: Iterable[int], count: int) -> bytes:
    """The bitmap of *indices* (each ``0 <= i < count``; raises IndexError otherwise) among *count* chunks."""
    bits = bytearray(bitmap_size(count))
    for i in indices:
        if not 0 <= i < count:
            raise IndexError(f"chunk {i} is not one of {count}")
        bits[i >> 3] |= 0x80 >> (i & 7)
    return bytes(bits)


def set_bits(bits: bytes, count: int) -> list[int] | None:
    """The chunk indices set in the bitmap *bits* of *count* chunks, ascending; None when *bits* is not
    exactly :func:`bitmap_size` bytes or sets a spare bit past *count*."""
    if len(bits) != bitmap_size(count):
        return None
    found = [(n << 3) + k for n, byte in enumerate(bits) if byte for k in range(8) if byte & (0x80 >> k)]
    if found and found[-1] >= count:
        return None
    return found


def is_token(text: str) -> bool:
    """Is *text* a transfer token (32 lowercase hex digits)?"""
    return _TOKEN.fullmatch(text) is not None


def is_sha256(text: str) -> bool:
    """Is *text* a SHA-256 in lowercase hex (64 digits)?"""
    return _SHA256.fullmatch(text) is not None
