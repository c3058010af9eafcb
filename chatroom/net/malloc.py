"""glibc allocator tuning for the file relay: :func:`tune_malloc` (used by ``chatroom-server`` at start-up)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["tune_malloc"]


#: glibc ``mallopt`` parameters (malloc.h) and the values :func:`tune_malloc` sets, in bytes.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_TRIM_THRESHOLD = 64 * 1024 * 1024
_MMAP_THRESHOLD = 16 * 1024 * 1024


def tune_malloc() -> bool:
    """Keep glibc from returning freed chunk buffers to the kernel; True if applied.

    Relaying allocates and frees a few MiB-sized buffers per chunk (the
    parsed frame, the output queues). With glibc's defaults, buffers this big
    are ``mmap``-ed, or the heap top is trimmed after they are freed, so every
    chunk is faulted in again page by page: measured on loopback, ~730 minor
    page faults per MiB relayed, and 3/4 of the server's CPU time in the
    kernel. Raising the mmap threshold to 16 MiB (frames are at most 4 MiB) and
    the trim threshold to 64 MiB lets the same memory be reused; peak RSS is
    unchanged (it is bounded by the buffers in use, not by these limits).
    Does nothing and returns False off glibc (the ``MALLOC_*_THRESHOLD_``
    environment variables, if set, are left to win).
    """
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
