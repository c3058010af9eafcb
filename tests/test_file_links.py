"""One-time file links' sans-I/O parts, without sockets: the link table (:class:`Links`: tokens bound to a member,
one use, 404/410, expiry), the HTTP rules for link paths (:class:`Gate`, :class:`WebParser` bodies) and the
answer's ``Content-Disposition``; the relay's consent for members that take links."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h11

from chatroom.net.consent import Consent
from chatroom.net.filelinks import ENDED_MEMORY, Links, link_base
from chatroom.net.transfer import Transfer
from chatroom.net.webfiles import content_disposition, link_target
from chatroom.net.webgate import Gate, Hosts
from chatroom.net.webhttp import StaticFiles
from chatroom.net.webproto import HttpBody, HttpRequest, WebParser


class Member:
    def __init__(self, cid: int, nick: str, *, links: bool = False) -> None:
        self.id, self.nick, self.closed, self.caps, self.room = cid, nick, False, frozenset(), None
        self.takes_links = links
        self.said: list[str] = []
        self.rooms: dict[str, Any] = {}

    def frame(self, meta: str, payload: bytes = b"") -> bytes:
        return meta.encode()


class Host:
    """The RelayHost the parts talk through, recording what each member is told."""

    def send_line(self, member: Member, text: str) -> None:
        member.said.append(text)

    def send_bytes(self, member: Member, data: bytes) -> None:
        member.said.append(data.decode())


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def _links(base: str | None = "http://127.0.0.1:8080") -> tuple[Links, Host, Clock]:
    host, clock = Host(), Clock()
    links = Links(host, clock=clock, upload_timeout=60)  # type: ignore[arg-type]
    links.base = lambda member: base
    return links, host, clock


def _transfer(sender: Member, tid: int = 7) -> Transfer:
    return Transfer(tid, sender, "notes.txt", 3, {}, 0.0, 0.0)  # type: ignore[arg-type]


def test_a_download_link_is_bound_to_its_member_used_once_and_gone_with_its_offer() -> None:
    links, _, _ = _links()
    bob, alice, carol = Member(1, "bob"), Member(2, "alice", links=True), Member(3, "carol", links=True)
    transfer = _transfer(bob)
    assert links.offer(transfer, alice, 60) and links.offer(transfer, carol, 60)  # type: ignore[arg-type]
    transfer.asked = {2: alice, 3: carol}  # type: ignore[dict-item]
    first = alice.said[-1].split("/f/")[1].split()[0]
    second = carol.said[-1].split("/f/")[1].split()[0]
    assert first != second and len(first) == 32 and links.owner(first) is alice and links.owner(second) is carol
    assert 'bob offers "notes.txt" (3 bytes)' in alice.said[-1] and "/quote decline 7" in alice.said[-1]
    link = links.fetch(first)
    assert not isinstance(link, int) and link.member is alice and link.transfer is transfer
    assert links.fetch(first) == 410  # one use
    assert links.fetch("x" * 32) == 404
    links.transfer_ended(transfer)  # the offer is over: carol's link with it
    assert links.fetch(second) == 410 and links.owner(second) is None


def test_upload_links_expire_one_per_member_and_without_a_web_listener_there_are_none() -> None:
    links, _, clock = _links()
    alice, room = Member(2, "alice", links=True), object()
    old = links.upload(alice, room)  # type: ignore[arg-type]
    new = links.upload(alice, room)  # type: ignore[arg-type]
    assert old and new and old.endswith("/") and old != new
    assert links.put(old.rsplit("/", 2)[1]) == 410  # the newer replaced it
    token = new.rsplit("/", 2)[1]
    clock.now += 61
    assert links.put(token) == 410  # expired
    again = links.upload(alice, room)  # type: ignore[arg-type]
    assert again is not None
    alice.closed = True
    assert links.put(again.rsplit("/", 2)[1]) == 410  # its member is gone
    bare, _, _ = _links(None)
    assert bare.upload(alice, room) is None  # type: ignore[arg-type]
    bob = Member(1, "bob")
    assert not bare.offer(_transfer(bob), alice, 60)  # type: ignore[arg-type]
    assert "web listener" in alice.said[-1] and "--web-port off" in alice.said[-1]


def test_spent_tokens_are_remembered_within_a_bound() -> None:
    links, _, _ = _links()
    alice = Member(2, "alice", links=True)
    for _ in range(ENDED_MEMORY + 10):
        links.upload(alice, object())  # type: ignore[arg-type]
    assert len(links.ended) == ENDED_MEMORY and len(links.open) == 1


def test_consent_asks_link_members_and_their_policy_none_declines() -> None:
    links, host, _ = _links()
    decided: list[Transfer] = []
    consent = Consent(host, decided.append, links=links)  # type: ignore[arg-type]
    bob, alice, carol, dave = Member(1, "bob"), Member(2, "alice", links=True), Member(3, "carol", links=True), \
        Member(4, "dave")
    consent.set_policy(carol, "none")  # type: ignore[arg-type]
    transfer = _transfer(bob)
    consent.offer(transfer, [alice, carol, dave])  # type: ignore[list-item]
    assert list(transfer.asked) == [2] and transfer.declined == ["carol"] and list(transfer.receivers) == [4]
    assert alice.said and not any("file-offer" in s for s in alice.said)  # a NOTICE with a link, not a frame
    token = alice.said[-1].split("/f/")[1].split()[0]
    try:
        consent.answer(alice, 7, True)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - the refusal's words are what matter
        assert "open the link" in str(exc)
    else:
        raise AssertionError("an IRC member accepts by fetching its link")
    download = Member(-5, "http5")
    link = links.fetch(token)
    assert not isinstance(link, int)
    consent.fetched(transfer, alice, download)  # type: ignore[arg-type]
    assert decided == [transfer] and -5 in transfer.receivers and transfer.accepted == ["dave", "alice"]


def test_link_paths_names_and_content_disposition() -> None:
    assert link_target(b"/f/abc_DEF-1") == ("get", "abc_DEF-1", "")
    assert link_target(b"/u/tok/photo%20one.bin") == ("put", "tok", "photo one.bin")
    assert link_target(b"/f/../etc") is None and link_target(b"/x/tok") is None
    assert content_disposition('a "b".txt') == b"attachment; filename=\"a _b_.txt\"; filename*=UTF-8''a%20%22b%22.txt"
    assert content_disposition("café.txt") == b"attachment; filename=\"caf_.txt\"; filename*=UTF-8''caf%C3%A9.txt"


def test_link_base_uses_the_address_the_member_came_in_on() -> None:
    class Sock:
        def __init__(self, address: str) -> None:
            self.address = address

        def getsockname(self) -> tuple[str, int]:
            return self.address, 6667

    member = Member(1, "a")
    for address, url in [("192.168.1.5", "https://192.168.1.5:8443"), ("::1", "https://[::1]:8443"),
                         ("::ffff:10.0.0.2", "https://10.0.0.2:8443")]:
        member.sock = Sock(address)  # type: ignore[attr-defined]
        assert link_base("https", 8443)(member) == url


def _request(method: str, target: str, body: int | None = None) -> HttpRequest:
    raw = [(b"host", b"localhost")] + ([(b"content-length", str(body).encode())] if body is not None else [])
    return HttpRequest(method.encode(), target.encode(), raw)


def test_the_gate_takes_gets_of_downloads_puts_of_uploads_and_no_other_body(tmp_path: Path) -> None:
    gate = Gate(StaticFiles(tmp_path), Hosts([]))
    assert gate.check(_request("GET", "/f/tok"), "127.0.0.1") is None
    assert gate.check(_request("PUT", "/u/tok/a.txt", 3), "127.0.0.1") is None
    assert gate.check(_request("POST", "/u/tok/a.txt", 3), "127.0.0.1") is None
    for method, target, body, status in [("POST", "/f/tok", None, 405), ("GET", "/u/tok/", None, 405),
                                         ("GET", "/f/tok", 3, 400), ("POST", "/", 3, 400), ("PUT", "/ws", 3, 400)]:
        refused = gate.check(_request(method, target, body), "127.0.0.1")
        assert refused is not None and refused.status == status, (method, target, refused)


def test_the_parser_hands_an_uploads_body_over_as_it_comes() -> None:
    parser = WebParser()
    parser.receive_data(b"PUT /u/tok/a.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 6\r\n\r\nabc")
    request = parser.next_event()
    assert isinstance(request, HttpRequest) and request.body == 6
    piece = parser.next_event()
    assert isinstance(piece, HttpBody) and (piece.data, piece.end) == (b"abc", False)
    assert parser.next_event() is None
    parser.receive_data(b"def")
    assert parser.next_event().data == b"def"  # type: ignore[union-attr]
    end = parser.next_event()
    assert isinstance(end, HttpBody) and end.end
    assert parser.http is not None and parser.http.their_state is h11.DONE
