"""HTTP answers of the web listener, sans-I/O: the static files of the page and the headers every answer carries.

:class:`StaticFiles` loads the page's files (package data ``chatroom/web/static/``,
or another folder) into memory once, at start-up, each with its content type
and a strong ``ETag`` (the first 16 bytes of its SHA-256): a request can only
name a file of that table, never a path on disk, and a symbolic link in the
folder is served only when it stays inside it. :func:`respond` builds one
complete answer with h11, :func:`plain_answer` a short refusal without it.
The headers (docs/protocol.md, "WebSocket and JSON events"):
``Content-Security-Policy`` (``default-src 'self'``, plus the WebSocket of
the same host), ``X-Content-Type-Options: nosniff``,
``Referrer-Policy: no-referrer``, and ``Cache-Control``: ``no-cache`` for
the page's files (kept, but revalidated with the ETag, so a new version is
seen at once), ``no-store`` for refusals. Which requests get which answer
is :mod:`chatroom.net.webgate`'s. Any thread (a :class:`StaticFiles` is
read-only once built).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import h11

__all__ = ["FALLBACK_PAGE", "HOST", "StaticFiles", "TYPES", "csp", "plain_answer", "respond"]

#: Content types by file suffix; anything else is ``application/octet-stream``.
TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8", ".json": "application/json", ".map": "application/json",
    ".webmanifest": "application/manifest+json", ".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg",
    ".ico": "image/vnd.microsoft.icon", ".webp": "image/webp", ".woff2": "font/woff2", ".txt": "text/plain; charset=utf-8",
}
#: Served as ``/`` when the folder has no ``index.html`` (the page is not installed).
FALLBACK_PAGE = (b"<!doctype html><meta charset=utf-8><title>chatroom</title>"
                 b"<p>This chatroom server has no web page installed (chatroom/web/static/index.html).")
_REASONS = {200: b"OK", 304: b"Not Modified", 400: b"Bad Request", 403: b"Forbidden", 404: b"Not Found",
            405: b"Method Not Allowed", 408: b"Request Timeout", 426: b"Upgrade Required",
            431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}
#: A valid ``Host`` value (RFC 9110: ``uri-host [ ":" port ]``, a name or an address).
HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
#: Most files (and bytes) loaded from the folder: it is the page, not a file server.
MAX_FILES, MAX_BYTES = 200, 16 * 1024 * 1024


class StaticFiles:
    """URL path (``"/app.js"``) -> (body, content type, ETag), loaded from *folder* (default: the package's
    ``chatroom/web/static``; missing: only the fallback page). Dotfiles are skipped."""

    def __init__(self, folder: Path | Traversable | None = None) -> None:
        root = folder if folder is not None else files("chatroom") / "web" / "static"
        self.table: dict[str, tuple[bytes, str, bytes]] = {}
        total = 0
        inside = Path(root).resolve() if isinstance(root, Path) else None  # package data without a path: no links
        for path, item in _walk(root, "", inside):
            body = item.read_bytes()
            total += len(body)
            if len(self.table) >= MAX_FILES or total > MAX_BYTES:
                break
            suffix = path[path.rfind("."):] if "." in path else ""
            self.table[path] = (body, TYPES.get(suffix.lower(), "application/octet-stream"), _etag(body))
        if "/index.html" not in self.table:
            self.table["/index.html"] = (FALLBACK_PAGE, TYPES[".html"], _etag(FALLBACK_PAGE))
        self.table["/"] = self.table["/index.html"]

    def get(self, target: bytes) -> tuple[bytes, str, bytes] | None:
        """The file a request *target* names (query string ignored), or None."""
        path = target.split(b"?", 1)[0].split(b"#", 1)[0].decode("utf-8", "replace")
        return self.table.get(path)


def _walk(folder: Path | Traversable, prefix: str, inside: Path | None) -> list[tuple[str, Traversable]]:
    """The files under *folder* (URL path, item), at most 5 levels deep; on disk, only what resolves *inside*."""
    found: list[tuple[str, Traversable]] = []
    try:
        items = sorted(folder.iterdir(), key=lambda i: i.name)
    except (FileNotFoundError, NotADirectoryError):
        return found
    for item in items:
        if item.name.startswith(".") or item.name == "__pycache__":
            continue
        if inside is not None and isinstance(item, Path) and not item.resolve().is_relative_to(inside):
            continue  # a symbolic link out of the folder (to /etc/shadow, /proc/self/environ...)
        if item.is_dir():
            if prefix.count("/") < 4:
                found += _walk(item, f"{prefix}/{item.name}", inside)
        elif item.is_file():
            found.append((f"{prefix}/{item.name}", item))
    return found


def _etag(body: bytes) -> bytes:
    return b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'


def csp(host: bytes | None) -> bytes:
    """The Content-Security-Policy for a page served to *host* (the request's ``Host``; a malformed one is left out)."""
    connect = b"connect-src 'self'"
    if host and HOST.fullmatch(host.decode("latin-1")):
        connect += b" ws://" + host + b" wss://" + host
    return (b"default-src 'self'; " + connect + b"; img-src 'self' data: blob:; base-uri 'none'; "
            b"frame-ancestors 'none'; form-action 'self'")


def respond(http: h11.Connection, status: int, *, body: bytes = b"", content_type: str = "text/plain; charset=utf-8",
            etag: bytes | None = None, host: bytes | None = None, head: bool = False, close: bool = False,
            extra: list[tuple[bytes, bytes]] | None = None) -> bytes:
    """One complete answer on *http* (h11, our side ready to send): status line, headers, *body* (not for
    *head* or 304). *close* adds ``Connection: close``. Raises h11.LocalProtocolError if h11 cannot send it."""
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-cache"), (b"x-content-type-options", b"nosniff"),
               (b"referrer-policy", b"no-referrer"), (b"content-security-policy", csp(host))]
    if etag is not None:
        headers.append((b"etag", etag))
    if close:
        headers.append((b"connection", b"close"))
    headers += extra or []
    data = http.send(h11.Response(status_code=status, headers=headers, reason=_REASONS.get(status, b"")))
    if body and not head and status != 304:
        data += http.send(h11.Data(data=body))
    return data + http.send(h11.EndOfMessage())


def plain_answer(status: int, text: str, *, extra: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
    """A whole ``Connection: close`` answer with *text* (printable ASCII is kept, anything else becomes ``?``),
    built without h11 (which cannot answer a request it could not parse); *extra* headers (``Allow`` for a 405,
    ``Upgrade`` and ``Sec-WebSocket-Version`` for a 426) come before ``Connection``. Refusals are never cached."""
    body = "".join(c if " " <= c <= "~" else "?" for c in text).encode() + b"\n"
    more = b"".join(b"%b: %b\r\n" % pair for pair in extra)
    return (b"HTTP/1.1 %d %b\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
            b"cache-control: no-store\r\nx-content-type-options: nosniff\r\nreferrer-policy: no-referrer\r\n"
            b"content-security-policy: %b\r\n%bconnection: close\r\n\r\n%b"
            % (status, _REASONS.get(status, b""), len(body), csp(None), more, body))
