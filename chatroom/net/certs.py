"""The TLS server's certificate: a self-signed pair made in the data dir on first use, its fingerprint, its context.

:func:`ensure_certificate` makes an ECDSA P-256 certificate and key (key file
mode 0600) with the ``cryptography`` library and reuses them after;
:func:`fingerprint` is the certificate's ``SHA256:AB:CD:...`` fingerprint, as
``openssl x509 -noout -fingerprint -sha256`` prints it (upper-case hex);
:func:`load_tls` is what ``chatroom-server --tls``/``--tls-cert`` use.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
from pathlib import Path
from typing import Any

__all__ = ["CERT_FILE", "KEY_FILE", "ensure_certificate", "fingerprint", "load_tls", "server_context"]

CERT_FILE = "tls-cert.pem"
KEY_FILE = "tls-key.pem"


def _alt_names(host: str) -> list[Any]:
    from cryptography import x509

    ips = {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    dns = ["localhost"]
    hostname = socket.gethostname()
    if hostname and hostname not in dns:
        dns.append(hostname)
    try:
        address = ipaddress.ip_address(host.strip("[]"))
        if not address.is_unspecified:
            ips.add(address)
    except ValueError:
        if host and host not in dns:
            dns.append(host)
    return [x509.DNSName(name) for name in dns] + [x509.IPAddress(ip) for ip in sorted(ips, key=str)]


def ensure_certificate(data_dir: Path, host: str = "") -> tuple[Path, Path, bool]:
    """``(cert_path, key_path, created)``: the self-signed pair in *data_dir*, made on first use.

    The certificate is ECDSA P-256, valid for ten years, with the subject
    alternative names ``DNS:localhost``, the host name, ``IP:127.0.0.1``,
    ``IP:::1`` and *host* (the address the server binds) unless it is a
    wildcard. The key file is created with mode 0600. Raises ValueError when
    only one of the two files exists, OSError when they cannot be written.
    """
    cert_path, key_path = data_dir / CERT_FILE, data_dir / KEY_FILE
    if cert_path.exists() or key_path.exists():
        if not (cert_path.exists() and key_path.exists()):
            have, missing = (cert_path, key_path) if cert_path.exists() else (key_path, cert_path)
            raise ValueError(f"{have} exists but {missing} does not (move {have} away to make a new pair)")
        return cert_path, key_path, False
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"chatroom-server {socket.gethostname()}"[:64])])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName(_alt_names(host)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    _write_new(key_path, key_pem, 0o600)
    _write_new(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path, key_path, True


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write *data* to a new file *path* with *mode* (never wider), through a temporary name."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def fingerprint(cert_path: Path) -> str:
    """``SHA256:AB:CD:...``: the SHA-256 of the first certificate in the PEM file *cert_path*.

    Raises ValueError if the file holds no PEM certificate, OSError if it cannot be read.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    certs = x509.load_pem_x509_certificates(Path(cert_path).read_bytes())
    return "SHA256:" + certs[0].fingerprint(hashes.SHA256()).hex(":").upper()


def load_tls(data_dir: Path, host: str, cert: Path | None = None, key: Path | None = None) -> tuple[ssl.SSLContext, str]:
    """``(context, fingerprint)`` for *cert* and *key*, or for the self-signed pair in *data_dir* (made if needed).

    Raises ValueError with one line to print when only one of *cert*, *key*
    is given or the pair cannot be made, read or used.
    """
    if bool(cert) != bool(key):
        raise ValueError("--tls-cert and --tls-key go together")
    try:
        if cert is None or key is None:
            cert, key, _ = ensure_certificate(data_dir, host)
        return server_context(cert, key), fingerprint(cert)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        reason = getattr(exc, "strerror", None) or exc
        if isinstance(exc, ssl.SSLError):
            reason = f"not a PEM certificate and its private key ({exc.reason or exc})"
        raise ValueError(f"cannot use TLS certificate {cert} with key {key}: {reason}") from None


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """A server-side context (TLS 1.2 or later) with this certificate chain and key; raises ssl.SSLError, OSError."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_RENEGOTIATION  # a TLS 1.2 client cannot make the loop redo handshakes
    context.load_cert_chain(cert_path, key_path)
    return context
