"""``chatroom-client --tls``: which server certificate to trust, and the TLS socket the client loop uses.

:func:`open_tls` decides, in this order:

1. ``--fingerprint SHA256:...`` given: the certificate must have that SHA-256
   fingerprint (nothing else is checked, nothing is stored).
2. Otherwise the certificate must verify against the system CAs, or only
   against ``--ca FILE`` when given, for the host name or address connected to.
3. Without ``--ca``, a certificate no CA vouches for (a self-signed
   ``chatroom-server --tls``) is trusted on first use, as SSH does: its
   fingerprint is stored per ``host:port`` in :func:`known_hosts_path`
   (``$XDG_CONFIG_HOME/chatroom/known_hosts``, default
   ``~/.config/chatroom/known_hosts``; lines ``HOST:PORT SHA256:AB:CD:...``)
   and a later connection must offer the same one; a different one is refused,
   naming both fingerprints.

Every refusal is a :class:`TrustRefused` whose message is the one line to
print (the client exits with status 1). Fingerprints are written as OpenSSL
prints them: ``SHA256:`` and upper-case hex pairs joined by colons.

:class:`TLSClientSocket` is the face of the ``ssl.SSLSocket`` the client loop
and the output queue use: ``recv`` reads until TLS wants more from the
network (decrypted bytes can sit inside the SSL object, where ``select`` does
not see them) and raises BlockingIOError when nothing came (``recv_into`` the
same, into the loop's receive buffer); ``sendmsg``
writes buffers as TLS records and reports partial writes.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from chatroom.sockets.tlssocket import TLSSocket

__all__ = ["TLSClientSocket", "TrustRefused", "known_hosts_path", "normalize_fingerprint", "open_tls"]

#: Bytes handed to one ``SSL_write`` (one TLS record): an interrupted record is retried with the same bytes.
RECORD = 16 * 1024
_WANT = (ssl.SSLWantReadError, ssl.SSLWantWriteError)
_HEX = re.compile(r"[0-9A-F]{64}")


class TrustRefused(Exception):
    """The server's certificate is not trusted; the message is the line to print."""


def known_hosts_path() -> Path:
    """Where trusted-on-first-use fingerprints live (see the module docstring)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "chatroom" / "known_hosts"


def normalize_fingerprint(text: str) -> str:
    """``sha256:ab:cd...``, ``AB CD...`` or bare hex -> ``SHA256:AB:CD:...``; raises ValueError otherwise."""
    hexdigits = re.sub(r"^sha-?256[:=]?", "", text.strip(), flags=re.IGNORECASE)
    hexdigits = re.sub(r"[\s:]", "", hexdigits).upper()
    if not _HEX.fullmatch(hexdigits):
        raise ValueError(f"not a SHA-256 fingerprint: {text!r} (like SHA256:AB:CD:... with 32 pairs)")
    return "SHA256:" + ":".join(hexdigits[i:i + 2] for i in range(0, 64, 2))


def _fingerprint(sock: ssl.SSLSocket) -> str:
    der = sock.getpeercert(binary_form=True)
    if not der:
        raise TrustRefused("the server sent no certificate")
    return normalize_fingerprint(hashlib.sha256(der).hexdigest())


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _unverified() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def read_known_hosts(path: Path) -> dict[str, str]:
    """``HOST:PORT`` -> fingerprint from *path* (missing file: ``{}``; malformed lines are skipped)."""
    known: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return known
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and not line.startswith("#"):
            try:
                known[parts[0]] = normalize_fingerprint(parts[1])
            except ValueError:
                continue
    return known


def _remember(path: Path, key: str, fingerprint: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(f"{key} {fingerprint}\n")


def open_tls(connect: Callable[[], socket.socket], host: str, port: int, *, ca: Path | None = None,
             pin: str | None = None, known_hosts: Path | None = None, err: TextIO | None = None) -> TLSClientSocket:
    """A TLS connection to *host*:*port* whose certificate is trusted (see the module docstring).

    *connect* returns a new connected TCP socket (called twice when the CA
    check fails and trust on first use takes over); *pin* is a fingerprint in
    any form :func:`normalize_fingerprint` takes; *err* gets the notice of a
    first-use trust. Raises :class:`TrustRefused`, ValueError for a malformed
    *pin*, ``ssl.SSLError``/OSError when the connection or handshake fails.
    """
    where = _address(host, port)
    if pin is not None:
        wanted = normalize_fingerprint(pin)
        sock = _unverified().wrap_socket(connect(), server_hostname=host)
        offered = _fingerprint(sock)
        if offered != wanted:
            sock.close()
            raise TrustRefused(f"REFUSED: the certificate of {where} has fingerprint {offered}, "
                               f"not the pinned {wanted}")
        return TLSClientSocket(sock)
    try:
        context = ssl.create_default_context(cafile=str(ca) if ca else None)
    except (OSError, ValueError) as exc:
        raise TrustRefused(f"cannot use --ca {ca}: {getattr(exc, 'reason', None) or exc.strerror or exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        return TLSClientSocket(context.wrap_socket(connect(), server_hostname=host))
    except ssl.SSLCertVerificationError as exc:
        if ca is not None:
            raise TrustRefused(f"REFUSED: the certificate of {where} does not verify against {ca}: "
                               f"{exc.verify_message or exc}") from None
    path = known_hosts or known_hosts_path()
    sock = _unverified().wrap_socket(connect(), server_hostname=host)
    offered = _fingerprint(sock)
    known = read_known_hosts(path).get(where)
    if known is None:
        try:
            _remember(path, where, offered)
        except OSError as exc:
            sock.close()
            raise TrustRefused(f"cannot record the certificate of {where} in {path}: {exc.strerror or exc}") from None
        if err is not None:
            err.write(f"chatroom-client: trusting {where} on first use: certificate {offered} (no known CA signed "
                      f"it; compare with the server's start-up line; saved in {path})\n")
            err.flush()
    elif known != offered:
        sock.close()
        raise TrustRefused(f"REFUSED: the certificate of {where} CHANGED: {path} has {known}, the server now offers "
                           f"{offered}; if the server really has a new certificate, delete its line from {path}")
    return TLSClientSocket(sock)


class TLSClientSocket(TLSSocket):
    """A :class:`~chatroom.wire.tlssocket.TLSSocket` whose ``recv`` reads until TLS wants the network
    (the client loop reads less often than the server)."""

    __slots__ = ()

    def recv(self, size: int) -> bytes:
        """Up to *size* decrypted bytes, reading until TLS wants the network; ``b""`` at the end."""
        chunks: list[bytes] = []
        got = 0
        while got < size:
            try:
                data = self.ssl.recv(size - got)
            except _WANT:
                if chunks:
                    break
                raise BlockingIOError("TLS wants more bytes") from None
            except ssl.SSLZeroReturnError:
                data = b""
            if not data:
                break  # the end: returned now if nothing came first, else on the next call
            chunks.append(data)
            got += len(data)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def recv_into(self, buffer: Any, size: int) -> int:
        """Like :meth:`recv`, decrypting into *buffer* (up to *size* bytes); 0 at the end."""
        got = 0
        with memoryview(buffer) as view:
            while got < size:
                try:
                    n = self.ssl.recv_into(view[got:size], size - got)
                except _WANT:
                    if got:
                        break
                    raise BlockingIOError("TLS wants more bytes") from None
                except ssl.SSLZeroReturnError:
                    n = 0
                if not n:
                    break  # the end: reported now if nothing came first, else on the next call
                got += n
        return got

