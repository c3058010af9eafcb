"""``chatroom-client --tls``: which server certificate to trust. Trust never downgrades.

:func:`open_tls` decides, in this order:

1. ``--fingerprint SHA256:...`` given: the certificate must have that SHA-256
   fingerprint (nothing else is checked, nothing is stored).
2. Otherwise the certificate must verify against the system CAs, or only
   against ``--ca FILE`` when given, for the host name or address connected
   to. A verified certificate's fingerprint is recorded as CA-verified.
3. A certificate that fails that check is refused, except one that is
   *self-signed* (OpenSSL's ``X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT``: it names
   no CA, as ``chatroom-server --tls`` makes them) without ``--ca``: that one is
   trusted on first use, as SSH does, and a later connection must offer the
   same one; a different one is refused, naming both fingerprints. An unknown
   CA, an expired certificate or one for another name never falls back to
   trust on first use.
4. A host once seen with a CA-verified certificate that later offers a
   self-signed one is refused, naming both fingerprints (a CA-verified
   certificate later is accepted, and recorded: certificates are renewed).

The record is :func:`known_hosts_path` (``$XDG_CONFIG_HOME/chatroom/known_hosts``,
default ``~/.config/chatroom/known_hosts``, mode 0600), one line per ``host:port``:
``HOST:PORT SHA256:AB:CD:...`` for a certificate trusted on first use,
``HOST:PORT SHA256:AB:CD:... ca`` for one a CA verified. A line is replaced
when its host's record changes (written to a new file, then renamed over).

Every refusal is a :class:`TrustRefused` whose message is the one line to
print (the client exits with status 1). Fingerprints are written as OpenSSL
prints them: ``SHA256:`` and upper-case hex pairs joined by colons.
The TLS socket returned is a :class:`~chatroom.client.connection.TLSClientSocket`.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, TextIO

from chatroom.client.connection import TLSClientSocket

__all__ = ["Known", "TLSClientSocket", "TrustRefused", "known_hosts_path", "normalize_fingerprint", "open_tls",
           "read_known_hosts"]

_HEX = re.compile(r"[0-9A-F]{64}")
#: OpenSSL's verify code for a certificate that signed itself (X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT).
SELF_SIGNED = 18
#: The marker of a CA-verified line in known_hosts.
CA_MARK = "ca"


class TrustRefused(Exception):
    """The server's certificate is not trusted; the message is the line to print."""


class Known(NamedTuple):
    """What known_hosts says of one ``host:port``: its *fingerprint*, and whether a CA verified it."""

    fingerprint: str
    ca: bool


def known_hosts_path() -> Path:
    """Where the fingerprints of servers are kept (see the module docstring)."""
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


def read_known_hosts(path: Path) -> dict[str, Known]:
    """``HOST:PORT`` -> :class:`Known` from *path* (missing file: ``{}``; malformed lines are skipped)."""
    known: dict[str, Known] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return known
    for line in text.splitlines():
        parts = line.split()
        if len(parts) in (2, 3) and not line.startswith("#") and parts[2:] in ([], [CA_MARK]):
            try:
                known[parts[0]] = Known(normalize_fingerprint(parts[1]), len(parts) == 3)
            except ValueError:
                continue
    return known


def _record(path: Path, key: str, entry: Known) -> None:
    """Set *key*'s line in *path* to *entry*: appended when new, else the file is rewritten (then renamed
    over the old one). Other lines, comments included, are kept. Raises OSError."""
    line = f"{key} {entry.fingerprint}" + (f" {CA_MARK}" if entry.ca else "") + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        old = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except FileNotFoundError:
        old = []
    kept = [text for text in old if text.split()[:1] != [key]]
    if len(kept) == len(old):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(line)
        return
    fresh = path.with_name(path.name + ".new")
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.writelines([*kept, line])
    os.replace(fresh, path)


def _remember(path: Path, where: str, entry: Known) -> None:
    try:
        _record(path, where, entry)
    except OSError as exc:
        raise TrustRefused(f"cannot record the certificate of {where} in {path}: {exc.strerror or exc}") from None


def open_tls(connect: Callable[[], socket.socket], host: str, port: int, *, ca: Path | None = None,
             pin: str | None = None, known_hosts: Path | None = None, err: TextIO | None = None) -> TLSClientSocket:
    """A TLS connection to *host*:*port* whose certificate is trusted (see the module docstring).

    *connect* returns a new connected TCP socket (called twice when the certificate is self-signed:
    the second handshake reads it without verifying); *pin* is a fingerprint in any form
    :func:`normalize_fingerprint` takes; *err* gets the notice of a first-use trust. Raises
    :class:`TrustRefused`, ValueError for a malformed *pin*, ``ssl.SSLError``/OSError when the
    connection or handshake fails.
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
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise TrustRefused(f"cannot use --ca {ca}: {reason}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    path = known_hosts or known_hosts_path()
    known = read_known_hosts(path).get(where)
    try:
        verified = context.wrap_socket(connect(), server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        why = (exc.verify_message or str(exc)).rstrip(".")
        if ca is not None:
            raise TrustRefused(f"REFUSED: the certificate of {where} does not verify against {ca}: {why}") from None
        if exc.verify_code != SELF_SIGNED:
            raise TrustRefused(f"REFUSED: the certificate of {where} does not verify: {why} (only a self-signed "
                               f"certificate is trusted on first use)") from None
        return _self_signed(connect, host, where, path, known, err)
    offered = _fingerprint(verified)
    if known != Known(offered, True):
        try:
            _remember(path, where, Known(offered, True))
        except TrustRefused:
            verified.close()
            raise
        if known is not None and err is not None and known.fingerprint != offered:
            err.write(f"chatroom-client: {where} has a new certificate {offered}, verified by a CA "
                      f"(was {known.fingerprint}; {path} updated)\n")
            err.flush()
    return TLSClientSocket(verified)


def _self_signed(connect: Callable[[], socket.socket], host: str, where: str, path: Path, known: Known | None,
                 err: TextIO | None) -> TLSClientSocket:
    """Trust on first use of a self-signed certificate, or the refusal (see the module docstring)."""
    sock = _unverified().wrap_socket(connect(), server_hostname=host)
    offered = _fingerprint(sock)
    if known is not None and (known.ca or known.fingerprint != offered):
        sock.close()
        if known.ca:
            raise TrustRefused(f"REFUSED: {where} offers a self-signed certificate {offered}, but a CA verified "
                               f"its certificate {known.fingerprint} before ({path}); if the server really "
                               f"dropped its CA, delete its line from {path}")
        raise TrustRefused(f"REFUSED: the certificate of {where} CHANGED: {path} has {known.fingerprint}, the "
                           f"server now offers {offered}; if the server really has a new certificate, delete its "
                           f"line from {path}")
    if known is None:
        try:
            _remember(path, where, Known(offered, False))
        except TrustRefused:
            sock.close()
            raise
        if err is not None:
            err.write(f"chatroom-client: trusting {where} on first use: certificate {offered} (no known CA signed "
                      f"it; compare with the server's start-up line; saved in {path})\n")
            err.flush()
    return TLSClientSocket(sock)
