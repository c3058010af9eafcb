"""Safe file names for files that arrive from the network.

A name offered by a peer is never trusted. :func:`safe_name` turns any string
into a single, harmless base name, and :func:`unique_path` picks a name in a
folder that does not exist yet (``name (1).ext``), so a received file never
overwrites another. Both the server (for the name it announces) and the
client (for the name it writes) use them.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from chatroom.wire.textsafety import strip_invisible

__all__ = ["FALLBACK", "MAX_NAME_BYTES", "safe_name", "split_ext", "unique_path"]

#: Name used when nothing usable is left of the offered one.
FALLBACK = "file"
#: Longest name produced, in UTF-8 bytes. Most file systems allow 255; the
#: rest is room for `` (N)`` and for the receiver's ``.NAME.ID.part`` temp name.
MAX_NAME_BYTES = 200

# C0/C1 controls, DEL, characters Windows forbids in names (`/` and `\`
# are path separators and handled before this), and lone surrogates (what
# os.listdir gives for undecodable bytes: they cannot be encoded as UTF-8).
_BAD_CHARS = re.compile(r'[\x00-\x1f\x7f-\x9f<>:"|?*\ud800-\udfff]')
# Device names Windows reserves, with or without an extension ("NUL.txt").
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\..*)?$", re.IGNORECASE)


def safe_name(raw: str) -> str:
    """Return a safe base name (``str``) for the untrusted file name *raw*.

    * Only the last path component is kept (``/`` and ``\\`` both separate),
      so ``../../x`` and ``/etc/x`` become ``x``.
    * NUL, control characters, lone surrogates and ``<>:"|?*`` become ``_``; Unicode is
      NFC-normalised.
    * Invisible characters are removed and line/paragraph separators
      (U+2028, U+2029) become spaces (:func:`chatroom.wire.textsafety.strip_invisible`):
      no bidi override turns ``evil\\u202etxt.exe`` into a name that reads
      ``evilexe.txt``, no zero-width character makes two names look the same.
    * Leading dots and spaces are removed (no hidden files, no ``..``),
      and so are trailing dots and spaces (Windows drops them).
    * A Windows device name (``CON``, ``NUL.txt``, ``com1``...) gets a ``_``
      prefix.
    * The result is at most :data:`MAX_NAME_BYTES` UTF-8 bytes, keeping the
      extension when it is short.
    * If nothing is left, :data:`FALLBACK` (``"file"``).

    Never raises; ``safe_name(safe_name(x)) == safe_name(x)``.
    """
    text = unicodedata.normalize("NFC", strip_invisible(str(raw)))
    text = text.replace("\\", "/").rstrip("/")
    text = text.rsplit("/", 1)[-1]
    text = _BAD_CHARS.sub("_", text)
    text = text.strip(" .")
    if _RESERVED.match(text):
        text = "_" + text
    text = _truncate(text, MAX_NAME_BYTES).rstrip(" .")
    return text or FALLBACK


def _truncate(name: str, limit: int) -> str:
    """Cut *name* to at most *limit* UTF-8 bytes, keeping a short extension."""
    if len(name.encode("utf-8")) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext.encode("utf-8")) > 16:
        stem, ext = name, ""
    else:
        ext = "." + ext
    room = limit - len(ext.encode("utf-8"))
    cut = stem.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip(" .")
    return cut + ext


def split_ext(name: str) -> tuple[str, str]:
    """``"report.pdf"`` -> ``("report", ".pdf")``; ``"README"`` -> ``("README", "")``."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return name, ""
    return stem, "." + ext


def unique_path(folder: Path, name: str, limit: int = 10_000) -> Path:
    """The first of ``folder/name``, ``folder/stem (1).ext``, ``folder/stem (2).ext``...
    that does not exist (``Path``).

    *name* should already be a :func:`safe_name`. This only looks; callers
    that must never overwrite create the file exclusively (``os.link`` or
    ``O_EXCL``) and retry with the next name on ``FileExistsError``.
    Raises ``FileExistsError`` after *limit* tries.
    """
    folder = Path(folder)
    candidate = folder / name
    if not candidate.exists() and not candidate.is_symlink():
        return candidate
    stem, ext = split_ext(name)
    for n in range(1, limit + 1):
        candidate = folder / f"{stem} ({n}){ext}"
        if not candidate.exists() and not candidate.is_symlink():
            return candidate
    raise FileExistsError(f"no free name for {name!r} in {folder}")
