"""TLS trust never downgrades (issue 17 row 9): the real ``chatroom-server --tls`` with certificates from
throwaway CAs (trustme) and the real ``chatroom-client --tls``.

The client's "system CAs" are the test CA: ``SSL_CERT_FILE`` names it (OpenSSL's default verify paths
honour it), so a server certificate the CA signed verifies as a public one would. Every client run ends
on its own (piped stdin), bounded by a timeout.
"""

from __future__ import annotations

import datetime
import os
import subprocess
from pathlib import Path
from typing import Any

import trustme
from conftest import DEADLINE
from test_tls import start_tls, tls_client


def issue(ca: trustme.CA, path: Path, *names: str, **kw: Any) -> Path:
    """A certificate (chain and key in one PEM file) for *names*, signed by *ca*."""
    ca.issue_cert(*names, **kw).private_key_and_cert_chain_pem.write_to_path(str(path))
    return path


def serve(server_factory: Any, data_dir: Path, *args: str) -> tuple[Any, int, str]:
    """A ``chatroom-server --tls`` (main port TLS) with *args*: (server, port, printed fingerprint)."""
    return start_tls(server_factory, "--tls", *args, data_dir=data_dir)


def run_client(port: int, home: Path, cafile: Path, stdin: str = "/who\n") -> subprocess.CompletedProcess[str]:
    """``chatroom-client --tls`` in pipe mode, trusting the CAs in *cafile* as its system CAs."""
    (home / "cwd").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "SSL_CERT_FILE": str(cafile)}
    env.pop("SSL_CERT_DIR", None)
    return subprocess.run(["chatroom-client", "--port", str(port), "--tls", "--name", "carol"], cwd=home / "cwd",
                          input=stdin, env=env, capture_output=True, text=True, timeout=DEADLINE)


def test_a_host_seen_with_a_ca_verified_certificate_never_falls_back_to_a_self_signed_one(
        server_factory: Any, tmp_path: Path) -> None:
    ca = trustme.CA()
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    home = tmp_path / "home"
    known = home / ".config" / "chatroom" / "known_hosts"

    selfsigned, port, own = serve(server_factory, tmp_path / "d1")
    first = run_client(port, home, cafile)
    assert first.returncode == 0 and f"trusting 127.0.0.1:{port} on first use: certificate {own}" in first.stderr
    assert known.read_text() == f"127.0.0.1:{port} {own}\n"
    selfsigned.stop()

    cert = issue(ca, tmp_path / "c1.pem", "127.0.0.1", "localhost")
    verified, _, by_ca = serve(server_factory, tmp_path / "d2", "--port", str(port), "--tls-cert", str(cert),
                               "--tls-key", str(cert))
    upgraded = run_client(port, home, cafile, stdin="said over a verified connection\n")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "trusting" not in upgraded.stderr and f"has a new certificate {by_ca}, verified by a CA" in upgraded.stderr
    assert known.read_text() == f"127.0.0.1:{port} {by_ca} ca\n"  # recorded, and marked as a CA's
    again = run_client(port, home, cafile)
    assert again.returncode == 0 and again.stderr == "" and "carol: said over a verified connection" in again.stdout
    verified.stop()

    back, _, same = serve(server_factory, tmp_path / "d1", "--port", str(port))  # the self-signed one again
    assert same == own
    refused = run_client(port, home, cafile, stdin="secret\n")
    assert refused.returncode == 1 and refused.stdout == ""
    line = refused.stderr.strip()
    assert line.startswith(f"chatroom-client: REFUSED: 127.0.0.1:{port} offers a self-signed certificate {own}")
    assert f"but a CA verified its certificate {by_ca} before" in line and "\n" not in line
    assert known.read_text() == f"127.0.0.1:{port} {by_ca} ca\n"
    watcher = tls_client(back, port)
    watcher.send("/history 20")
    assert not any("secret" in text for text in watcher.sync())
    back.stop()

    renewed = issue(ca, tmp_path / "c2.pem", "127.0.0.1")
    _, _, new = serve(server_factory, tmp_path / "d3", "--port", str(port), "--tls-cert", str(renewed),
                      "--tls-key", str(renewed))
    assert new != by_ca
    accepted = run_client(port, home, cafile)
    assert accepted.returncode == 0, accepted.stderr
    assert known.read_text() == f"127.0.0.1:{port} {new} ca\n"


def test_a_failed_ca_check_is_a_refusal_not_trust_on_first_use(server_factory: Any, tmp_path: Path) -> None:
    trusted, stranger = trustme.CA(), trustme.CA()
    cafile = tmp_path / "ca.pem"
    trusted.cert_pem.write_to_path(str(cafile))
    home = tmp_path / "home"
    known = home / ".config" / "chatroom" / "known_hosts"
    yesterday = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
    cases = [
        ("an unknown CA", issue(stranger, tmp_path / "u.pem", "127.0.0.1"), "unable to get local issuer certificate"),
        ("another name", issue(trusted, tmp_path / "n.pem", "chat.example.org"), "IP address mismatch, certificate is not valid for '127.0.0.1'"),
        ("an expired one", issue(trusted, tmp_path / "e.pem", "127.0.0.1", not_before=yesterday - datetime.timedelta(
            days=30), not_after=yesterday), "certificate has expired"),
    ]
    for n, (what, cert, why) in enumerate(cases):
        server, port, _ = serve(server_factory, tmp_path / f"d{n}", "--tls-cert", str(cert), "--tls-key", str(cert))
        run = run_client(port, home, cafile, stdin="secret\n")
        assert run.returncode == 1 and run.stdout == "", what
        assert run.stderr == (f"chatroom-client: REFUSED: the certificate of 127.0.0.1:{port} does not verify: {why} "
                              "(only a self-signed certificate is trusted on first use)\n"), what
        assert not known.exists(), what
        server.stop()
