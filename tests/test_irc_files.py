"""Files for IRC clients, end to end, without DCC: the real ``chatroom-server`` offers a file to an IRC member as
a ``NOTICE`` with a one-time link on its web listener, serves that link once (streamed from the sender, with
the relay's consent and backpressure), and takes a file from an IRC member through a one-time upload link."""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import ssl
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from chatroom.wire import lines as protocol
from conftest import LineClient
from irc_kit import IrcClient, start_irc

LINK = re.compile(r"(https?://\S+/[fu]/[A-Za-z0-9_-]+/?)")


def _irc_member(server: Any, nick: str, room: str = "#team") -> IrcClient:
    client = IrcClient(server.irc_port)
    server.clients.append(client)  # closed at teardown
    client.register(nick)
    client.send(f"JOIN {room}")
    client.expect("366")
    return client


def _team(server_factory: Any, *args: str) -> tuple[Any, Any, IrcClient]:
    """A server (*args* added), with bob (a frame-capable line client) and alice (IRC) in #team."""
    server = start_irc(server_factory, *args)
    bob = server.connect("bob", binary=True)
    bob.send("/join #team")
    bob.expect_prefix("OK join #team")
    return server, bob, _irc_member(server, "alice")


def _notice(client: IrcClient, test: Any) -> str:
    return client.expect("NOTICE", lambda m: bool(test(m.params[-1]))).params[-1]


def _next_frame(client: Any) -> protocol.Frame:
    deadline = time.monotonic() + 10
    while True:
        event = client.next_event(max(0.01, deadline - time.monotonic()))
        if isinstance(event, protocol.Frame):
            return event
        client.seen.append(event.text)


def _get(url: str) -> socket.socket:
    """Send ``GET`` of *url* on a raw socket (the answer may wait for the sender's bytes); return the socket."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    sock.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
    return sock


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the answer on *sock*, read until the server closes it."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def test_a_file_offered_in_a_room_reaches_irc_as_a_one_time_link(server_factory: Any) -> None:
    server, bob, alice = _team(server_factory)
    content = b"hello, irc\n" * 1000
    bob.send(f"/sendfile notes.txt {len(content)}")
    offer = _notice(alice, lambda t: "bob offers" in t)
    assert f'bob offers "notes.txt" ({len(content)} bytes) in #team: ' in offer, offer
    url = LINK.search(offer)[1]  # type: ignore[index]
    assert url.startswith(server.web_url + "/f/") and len(url.rsplit("/", 1)[1]) >= 32, url
    bob.expect_prefix('* offering "notes.txt"')  # alice is asked, as a /files ask member is
    sock = _get(url)
    tid = int(bob.expect_prefix("OK sendfile ").split()[2])  # her fetch was her answer
    assert any('"notes.txt": accepted by alice' in line for line in bob.seen), bob.seen
    bob.send_raw(protocol.encode_frame(f"file-data {tid}", content[:6000]))
    bob.send_raw(protocol.encode_frame(f"file-data {tid}", content[6000:]))
    bob.send_raw(protocol.encode_frame(f"file-end {tid} {hashlib.sha256(content).hexdigest()}", b""))
    status, headers, body = _answer(sock)
    assert (status, body) == (200, content)
    assert headers["content-disposition"] == "attachment; filename=\"notes.txt\"; filename*=UTF-8''notes.txt"
    assert headers["cache-control"] == "no-store" and headers["content-type"] == "application/octet-stream"
    assert int(headers["content-length"]) == len(content)
    assert _next_frame(bob).meta == f"file-done {tid} alice"  # the sender sees who fetched it
    digest = _notice(alice, lambda t: "downloaded" in t)
    assert digest == f'* "notes.txt" downloaded: SHA-256 {hashlib.sha256(content).hexdigest()}'
    assert _answer(_get(url))[0] == 410  # one use
    assert _answer(_get(url.rsplit("/", 1)[0] + "/" + "A" * 32))[0] == 404  # an unknown token


def test_irc_consent_timeout_and_no_web_listener(server_factory: Any) -> None:
    server, bob, alice = _team(server_factory, "--file-offer-timeout", "1")
    bob.send("/sendfile late.txt 3")
    url = LINK.search(_notice(alice, lambda t: "bob offers" in t))[1]  # type: ignore[index]
    assert "nobody accepted the file (no answer from alice)" in bob.expect_prefix("ERROR sendfile late.txt")
    assert _notice(alice, lambda t: "no longer offered" in t).endswith("no answer in 1 s: declined")
    assert _answer(_get(url))[0] == 410  # the offer ended: the link with it
    alice.send("SENDFILE")  # the link's answer to a decline: consent holds for IRC members as for others
    _notice(alice, lambda t: "curl -T FILE" in t)
    alice.send("FILES none")
    _notice(alice, lambda t: t == "OK files none")
    bob.send("/sendfile no.txt 3")
    assert "declined by alice" in bob.expect_prefix("ERROR sendfile no.txt")
    plain = start_irc(server_factory, "--web-port", "off")
    assert plain.web_url is None
    carol = plain.connect("carol", binary=True)
    carol.send("/join #team")
    carol.expect_prefix("OK join #team")
    dave = _irc_member(plain, "dave")
    carol.send("/sendfile x.txt 3")
    told = _notice(dave, lambda t: "carol offers" in t)
    assert "web listener, which this server does not run" in told and "--web-port off" in told, told
    dave.send("SENDFILE #team")
    assert "web listener" in _notice(dave, lambda t: "web listener" in t)


def test_an_irc_member_shares_a_file_through_an_upload_link(server_factory: Any) -> None:
    server, bob, alice = _team(server_factory)
    alice.send("SENDFILE #nowhere")
    alice.expect("442")
    alice.send("SENDFILE #team")
    url = LINK.search(_notice(alice, lambda t: "send a file to #team: curl -T FILE" in t))[1]  # type: ignore[index]
    assert url.endswith("/")
    content = bytes(range(256)) * 400
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("PUT", parts.path + "photo%20one.bin", body=content, headers={"Expect": "100-continue"})
    begin = _next_frame(bob)
    assert begin.meta.startswith("file-begin ") and begin.meta.endswith(f" {len(content)} alice photo one.bin")
    assert any('* alice is sending "photo one.bin"' in line for line in bob.seen), bob.seen
    got = b""
    while True:
        frame = _next_frame(bob)
        if not frame.meta.startswith("file-data "):
            break
        got += frame.payload
    assert got == content and frame.meta.split()[2] == hashlib.sha256(content).hexdigest()
    answer = conn.getresponse()
    assert (answer.status, answer.read()) == (200, b"sent to bob\n")
    assert "sent to bob" in _notice(alice, lambda t: "sent to bob" in t)
    conn.close()
    again = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    again.request("PUT", parts.path + "x", body=b"abc")
    assert again.getresponse().status == 410  # one upload per link
    again.close()


def test_a_download_is_streamed_with_the_relays_backpressure(server_factory: Any) -> None:
    """A link fetched by a client that does not read holds the sender back (the server stops reading it);
    the file never piles up in the server's memory; once the client reads, every byte arrives."""
    server, bob, alice = _team(server_factory)
    chunk, count = os.urandom(1 << 20), 64
    bob.send(f"/sendfile big.bin {len(chunk) * count}")
    url = LINK.search(_notice(alice, lambda t: "bob offers" in t))[1]  # type: ignore[index]
    parts = urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # a small window: it reads nothing yet
    sock.settimeout(10)
    sock.connect((parts.hostname, parts.port))
    sock.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
    tid = int(bob.expect_prefix("OK sendfile ").split()[2])
    before = server.rss_kib()
    frame = protocol.encode_frame(f"file-data {tid}", chunk)
    pushed, sent = 0, len(frame)
    while pushed < count:  # push until the server stops taking bob's bytes
        sent = bob.send_some(frame, timeout=1.0)
        pushed += 1
        if sent < len(frame):
            break
    assert pushed < count // 2, pushed  # the server stopped reading bob: the reader holds it back
    assert server.rss_kib() - before < 24 * 1024  # a few chunks at most, never the file
    received = bytearray()

    def read() -> None:
        while data := sock.recv(1 << 20):
            received.extend(data)

    reader = threading.Thread(target=read)
    reader.start()
    bob.sock.settimeout(30)
    bob.sock.sendall(frame[sent:] + frame * (count - pushed))
    whole = hashlib.sha256(chunk * count).hexdigest()
    bob.sock.sendall(protocol.encode_frame(f"file-end {tid} {whole}", b""))
    reader.join(timeout=30)
    assert not reader.is_alive()
    sock.close()
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and len(body) == len(chunk) * count
    assert hashlib.sha256(body).hexdigest() == whole
    assert _next_frame(bob).meta == f"file-done {tid} alice"


def test_with_tls_the_link_is_https_on_the_same_certificate(server_factory: Any) -> None:
    server = start_irc(server_factory, "--tls")
    assert server.web_url.startswith("https://")
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the server's self-signed certificate
    bob = LineClient.from_socket(context.wrap_socket(socket.create_connection((server.host, server.port),
                                                                              timeout=10)))
    server.clients.append(bob)  # the main port speaks TLS
    bob.expect_prefix("* Welcome")
    bob.send("/caps binary")
    bob.expect("OK caps binary")
    bob.send("/nick bob")
    bob.expect("OK nick bob")
    bob.send("/join #team")
    bob.expect_prefix("OK join #team")
    alice = _irc_member(server, "alice")
    bob.send("/sendfile s.txt 6")
    url = LINK.search(_notice(alice, lambda t: "bob offers" in t))[1]  # type: ignore[index]
    assert url.startswith(server.web_url + "/f/")
    parts = urlsplit(url)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=10, context=context)
    conn.request("GET", parts.path)  # sent; the answer waits for bob's bytes
    tid = int(bob.expect_prefix("OK sendfile ").split()[2])
    bob.send_raw(protocol.encode_frame(f"file-data {tid}", b"secret"))
    bob.send_raw(protocol.encode_frame(f"file-end {tid} {hashlib.sha256(b'secret').hexdigest()}", b""))
    answer = conn.getresponse()
    assert (answer.status, answer.read()) == (200, b"secret")
    conn.close()
