"""TLS for bench/fanout.py: the load generator's TLS clients and ngIRCd's TLS config.

:class:`TLSWorker` is the fan-out worker (``fanout_load._Worker``) with every
client socket wrapped by the stdlib :mod:`ssl` (certificate verification off:
the servers use fresh self-signed certificates). The handshake is done
blocking, right after ``connect`` and before the socket is switched to
non-blocking, during setup (not measured). In the steady state:

* ``recv`` reads until TLS wants more from the network (at most 64 KiB, plus
  whatever is left decrypted inside the SSL object, so no byte waits there
  while ``select`` sees an empty socket); ``SSLWantReadError`` (for example a
  TLS 1.3 session ticket with no application data) is "nothing yet";
* ``send``/``flush`` treat ``SSLWantWriteError``/``SSLWantReadError`` as
  "nothing written": the output buffer only grows by appending, so the retry
  passes the same bytes first, as OpenSSL requires (CPython sets
  ``SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER``).

The negotiated ``version cipher`` of the worker's first client is kept in
``self.cipher`` and reported with the worker's result.

ngIRCd: :func:`ngircd_tls_section` adds the ``[SSL]`` section its sample
config and ``SSL.md`` document (``CertFile``, ``KeyFile``, ``Ports``) to the
plain fan-out config; its certificate is an ECDSA P-256 self-signed one made
with ``openssl req``, the key type chatroom makes for ``--tls``
(``chatroom.net.certs``), so both servers sign the same kind of handshake.
"""

from __future__ import annotations

import os
import selectors
import socket
import ssl
import subprocess
from typing import Any

from fanout_load import HOST, _Client, _Worker

_WANT = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError)


def client_context() -> ssl.SSLContext:
    """A client context with the stdlib defaults (TLS 1.2+, TLS 1.3 preferred) and no verification."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class TLSWorker(_Worker):
    """A fan-out worker whose clients speak TLS (see the module docstring)."""

    BLOCKED = _WANT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ctx = client_context()
        self.cipher = ""

    def connect(self, c: _Client) -> None:
        raw = socket.create_connection((HOST, self.port), timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = self.ctx.wrap_socket(raw)  # blocking handshake, bounded by the 10 s timeout
        sock.setblocking(False)
        if not self.cipher:
            name, version, _ = sock.cipher()
            self.cipher = f"{version} {name}"
        c.sock = sock
        self.sel.register(sock, selectors.EVENT_READ, c)
        if self.irc:
            nick = c.nick.decode()
            self.send(c, f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())
            c.state = 1

    def recv(self, c: _Client) -> bytes | None:
        """Decrypted bytes of *c* (see the module docstring); None if nothing yet, b"" at its end."""
        sock = c.sock
        chunks: list[bytes] = []
        total = 0
        while total < 65536:
            try:
                data = sock.recv(65536 - total)
            except _WANT:
                break
            except OSError:
                data = b""
            if not data:
                if chunks:
                    break  # serve what came first; the end is read again on the next call
                return b""
            chunks.append(data)
            total += len(data)
        left = sock.pending()
        if left:
            chunks.append(sock.recv(left))
        return b"".join(chunks) if chunks else None


def make_certificate(tmp: str) -> tuple[str, str]:
    """Write a self-signed ECDSA P-256 certificate and key under *tmp*; return (cert, key) paths.

    Raises RuntimeError if ``openssl`` fails or is missing.
    """
    cert, key = os.path.join(tmp, "tls-cert.pem"), os.path.join(tmp, "tls-key.pem")
    cmd = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
           "-days", "2", "-subj", "/CN=bench.local", "-keyout", key, "-out", cert]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"openssl could not make a certificate: {exc}") from None
    return cert, key


def ngircd_tls_section(tmp: str, tls_port: int) -> str:
    """ngIRCd's ``[SSL]`` section serving TLS on *tls_port* with a fresh certificate (default ciphers)."""
    cert, key = make_certificate(tmp)
    return f"[SSL]\n  CertFile = {cert}\n  KeyFile = {key}\n  Ports = {tls_port}\n"
