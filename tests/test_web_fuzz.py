"""Property-based fuzzing of the web door with hostile input (hypothesis), in the style of tests/test_fuzz.py.

A browser sends the server HTTP requests (h11) and, after the upgrade, WebSocket messages (wsproto): text
messages are lines of the line protocol, binary ones file frames (``META\\n`` + payload); the server answers
with JSON events (:mod:`chatroom.wire.jsonwire`). Targets:

* :class:`chatroom.net.webproto.WebParser` fed arbitrary HTTP bytes, then arbitrary WebSocket frames built by
  hand (every opcode, RSV bits, FIN or not, masked or not, lengths in every form and lying ones, fragmented
  and oversized control frames, invalid UTF-8, close codes of every kind), in arbitrary splits: no exception
  escapes, every event is one the transport handles, and what it holds stays bounded.
* The web door in-process (a real :class:`~chatroom.server.app.Server` on the kit's fake I/O, its web listener a
  fake too): the same frames, carrying hostile lines (commands, unicode digits, huge numbers) and file frames
  out of order, sent after a real upgrade. Then: no internal error was logged, no plugin fault recorded, every
  server frame is well formed (each text frame one JSON object with a ``type``, nothing after a Close frame),
  and two other members still chat.
* Raw HTTP bytes to the in-process web door: the same checks, and every answer is an HTTP response.

Searches are derandomized and bounded (``max_examples``); one server serves every example of a test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_irc_fuzz import FakePeer
from web_kit import server_frames
from wsproto import ConnectionType, WSConnection
from wsproto.events import Request

from chatroom.fakeio import FakeListener
from chatroom.net.web import WebConnection, WebTransport
from chatroom.net.webproto import (MAX_HEAD, MAX_META, HttpBody, HttpError, HttpRequest, PeerClosed, WebParser,
                                   WsClosed, WsPing)
from chatroom.server import claim as claim_module
from chatroom.testing import InProcessRoom
from chatroom.wire.lines import Frame, Line, Refused, TooLong

EVENTS = (HttpRequest, HttpBody, HttpError, PeerClosed, WsPing, WsClosed, Line, Frame, TooLong, Refused)


# -- WebSocket frames as a hostile client writes them -----------------------------------------------------------
def ws_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, masked: bool = True,
             form: int = 0, lie: int = 0, key: bytes = b"\x01\x02\x03\x04") -> bytes:
    """One client frame (RFC 6455 5.2) built by hand: *form* 0 the shortest length encoding, 16 or 64 a longer
    one; *lie* is added to the length announced."""
    size = max(0, len(payload) + lie)
    head = bytes([(0x80 if fin else 0) | (rsv & 7) << 4 | opcode & 0x0F])
    mask = 0x80 if masked else 0
    if form == 64 or size > 0xFFFF:
        head += bytes([mask | 127]) + (size & (2**64 - 1)).to_bytes(8, "big")
    elif form == 16 or size > 125:
        head += bytes([mask | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([mask | size])
    if not masked:
        return head + payload
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


#: Lines a hostile page sends (the line protocol): commands with unicode digits, huge numbers, junk.
LINES = [
    "/nick mallory", "/join #safe", "/join #x", "/part #safe", "/read \u00b2", "/read 99999999999999999999",
    "/tweets \u00b2", "/sendfile x " + "9" * 5000, "/history #safe before \u00b2 \u0663", "/history #safe since 1",
    "/files ask", "/files all", "/caps resume", "/caps tags binary", "/msg alice hi", "/who", "/rooms \u00b2",
    "/search \u00b2", "/topic #safe x", "/me waves", "/upper \u00e9", "/quit", "/login x", "/help", "//x", "hello",
    "", "\r", "\x00", "\x1b[2J", "\u202e", "x" * 3000, "/accept \u00b2", "/reject 1", "/resume 1 2",
]
#: Frame metas, in and out of order (no transfer started, unknown ids, unicode digits, huge numbers).
METAS = [
    "file-data 1", "file-end 1 " + "0" * 64, "file-abort 1 because", "file-begin 1 3 x", "file-data \u00b2",
    "file-data " + "1" * 5000, "file-announce 1 3 x.txt " + "a" * 64, "file-resume 1 0", "file-cancel 1",
    "file-received 1", "file-offer 1 3 bob x", "x", "", "file-data", "file-end", "file-resume \u00b2 \u00b2",
    "file-announce 99999999999999999999 -1 ../../x \u00b2",
]
text_payload = st.one_of(
    st.lists(st.sampled_from(LINES), min_size=1, max_size=4).map(lambda ls: "\n".join(ls).encode()),
    st.text(max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"\xff\xfe", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\x80", b"/nick \xf0\x9f\x98"]),
)
binary_payload = st.builds(lambda meta, data: meta.encode() + b"\n" + data,
                           st.sampled_from(METAS), st.binary(max_size=40)) | st.binary(max_size=40)
close_payload = st.one_of(
    st.just(b""), st.just(b"\x03"),
    st.builds(lambda code, reason: code.to_bytes(2, "big") + reason,
              st.sampled_from([1000, 1001, 1002, 1005, 1006, 1007, 1015, 999, 2999, 3000, 4999, 5000, 65535]),
              st.sampled_from([b"", b"bye", b"\xff", b"x" * 200])),
)
#: Well-formed data frames: what carries hostile lines and file frames to the server's commands.
good_frames = st.one_of(
    st.builds(lambda data: ws_frame(1, data), text_payload), st.builds(lambda data: ws_frame(2, data), binary_payload),
    st.builds(lambda a, b: ws_frame(1, a, fin=False) + ws_frame(0, b), text_payload, text_payload),
    st.builds(lambda data: ws_frame(9, data), st.binary(max_size=20)),
)
#: Frames that break RFC 6455 in some way, or end the WebSocket.
odd_parts = st.one_of(
    st.tuples(st.just(0), text_payload), st.tuples(st.just(8), close_payload),
    st.tuples(st.sampled_from([9, 10]), st.binary(max_size=130)),
    st.tuples(st.integers(min_value=0, max_value=15), st.binary(max_size=20)),
    st.tuples(st.sampled_from([1, 2]), binary_payload),
)
odd_frames = st.builds(
    lambda part, fin, rsv, masked, form, lie: ws_frame(part[0], part[1], fin=fin, rsv=rsv, masked=masked,
                                                       form=form, lie=lie),
    odd_parts,
    st.sampled_from([True, True, False]),
    st.sampled_from([0, 0, 0, 1, 4, 7]),
    st.sampled_from([True] * 6 + [False]),
    st.sampled_from([0] * 4 + [16, 64]),
    st.sampled_from([0] * 6 + [-1, 1, 70_000, 2**63]),
)
ws_stream = st.lists(st.one_of(good_frames, good_frames, good_frames, good_frames, odd_frames), min_size=1,
                     max_size=10).map(b"".join)
cut_points = st.lists(st.integers(min_value=0, max_value=3000), max_size=4)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(bounds, bounds[1:])] or [b""]


def _drain(parser: WebParser) -> list[Any]:
    events = []
    for _ in range(10_000):
        event = parser.next_event()
        if event is None:
            return events
        assert isinstance(event, EVENTS), event
        events.append(event)
        if isinstance(event, (HttpRequest, WsClosed, HttpError, PeerClosed)):
            return events  # the transport answers (or closes) before it reads on
    raise AssertionError("the parser never ran dry")


def _upgraded_parser() -> WebParser:
    parser = WebParser(max_text=256, max_frame=512)  # small limits, so the fuzzer reaches them
    client = WSConnection(ConnectionType.CLIENT)
    parser.receive_data(client.send(Request(host="h", target="/ws")))
    request = parser.next_event()
    assert isinstance(request, HttpRequest)
    parser.upgrade(request)
    return parser


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(data=ws_stream, cuts=cut_points)
@example(data=ws_frame(9, b"x" * 126), cuts=[])  # a control frame over 125 bytes
@example(data=ws_frame(9, b"p", fin=False), cuts=[])  # a fragmented control frame
@example(data=ws_frame(1, b"a", fin=False) + ws_frame(9, b"p") + ws_frame(0, b"b"), cuts=[3])  # ping inside
@example(data=ws_frame(0, b"continuation with nothing to continue"), cuts=[])
@example(data=ws_frame(1, b"x", lie=2**63), cuts=[])  # a 64-bit length with its top bit set
@example(data=ws_frame(8, b"\x03\xe8") + ws_frame(1, b"after the close"), cuts=[])
def test_web_parser_survives_any_websocket_frames(data: bytes, cuts: list[int]) -> None:
    parser = _upgraded_parser()
    for piece in _split(data, cuts):
        parser.receive_data(piece)
        events = _drain(parser)
        if any(isinstance(e, WsClosed) for e in events):
            break  # the transport closes the connection: nothing more is read
        kept = sum(len(p) for p in parser._parts)  # the message being received, bounded by its limit
        assert kept <= max(parser.max_text * 4, parser.max_frame + MAX_META)
        assert len(parser.events) <= parser.max_text + 1


#: Pieces of HTTP requests: methods, targets, headers with junk values, bodies.
HTTP_PIECES = [
    b"GET / HTTP/1.1\r\n", b"GET /ws HTTP/1.1\r\n", b"PUT /u/tok/x HTTP/1.1\r\n", b"POST / HTTP/1.0\r\n",
    b"HEAD /app.js HTTP/1.1\r\n", b"BREW /pot HTTP/1.1\r\n", b"GET " + b"/a" * 3000 + b" HTTP/1.1\r\n",
    b"Host: 127.0.0.1\r\n", b"Host: evil.example\r\n", b"Host: \xff\r\n", b"Connection: Upgrade\r\n",
    b"Upgrade: websocket\r\n", b"Sec-WebSocket-Version: 13\r\n", b"Sec-WebSocket-Version: \xc2\xb2\r\n",
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b"Sec-WebSocket-Key: x\r\n", b"Origin: null\r\n",
    b"Content-Length: 5\r\n", b"Content-Length: \xc2\xb2\r\n", b"Content-Length: " + b"9" * 5000 + b"\r\n",
    b"Content-Length: -1\r\n", b"Transfer-Encoding: chunked\r\n", b"Expect: 100-continue\r\n",
    b"If-None-Match: \"x\"\r\n", b"X: " + b"y" * 9000 + b"\r\n", b"X-A: 1\r\n" * 70, b"\r\n", b"hello",
    b"5\r\nhello\r\n0\r\n\r\n", b"\x00", b"\n", b" folded\r\n",
]
http_bytes = st.lists(st.one_of(st.sampled_from(HTTP_PIECES), st.binary(min_size=1, max_size=30)),
                      max_size=14).map(b"".join)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(data=http_bytes, cuts=cut_points)
def test_web_parser_survives_any_http_bytes(data: bytes, cuts: list[int]) -> None:
    parser = WebParser()
    for piece in _split(data, cuts):
        parser.receive_data(piece)
        events = _drain(parser)
        if any(isinstance(e, (HttpRequest, HttpError, PeerClosed)) for e in events):
            break  # answered and closed, or answered before the next request is read
        assert parser.http is None or len(parser.http.trailing_data[0]) <= MAX_HEAD + 64 * 1024


# -- the web door, in-process -----------------------------------------------------------------------------------
@contextmanager
def web_room(data_dir: Path) -> Iterator[InProcessRoom]:
    """An in-process room whose server also has its web door (its listener a :class:`FakeListener`)."""
    real = claim_module._bind

    def bind(host: str, port: Any, last: Any, what: str, notes: list[str], reuse: bool = False) -> Any:
        return FakeListener() if what == "web port" else real(host, port, last, what, notes, reuse)

    with mock.patch.object(claim_module, "_bind", bind):
        room = InProcessRoom(data_dir=data_dir, web=True, web_port=0)
    try:
        yield room
    finally:
        room.close()


def web_transport(room: InProcessRoom) -> WebTransport:
    return next(t for t in room.server.transports if isinstance(t, WebTransport))


class WebFake(FakePeer):
    """One connection to the in-process web door: ``out`` holds every byte the server sent it."""

    conn: WebConnection

    def __init__(self, room: InProcessRoom) -> None:
        self.out = bytearray()
        super().__init__(room, room.server.claim.web_listener, web_transport(room).http,  # type: ignore[arg-type]
                         self.out.extend)

    def upgrade(self) -> None:
        client = WSConnection(ConnectionType.CLIENT)
        self.send(client.send(Request(host="127.0.0.1", target="/ws")))
        assert self.out.startswith(b"HTTP/1.1 101 "), bytes(self.out[:200])

    def frames(self) -> list[tuple[int, bytes]]:
        """The server's frames after its 101 answer (checked: whole frames, nothing after a Close)."""
        head, _, rest = bytes(self.out).partition(b"\r\n\r\n")
        frames = server_frames(rest)
        ops = [op for op, _ in frames]
        assert 8 not in ops or ops.index(8) == len(ops) - 1, f"frames after the Close frame: {ops}"
        return frames


class Scene:
    """Two line-protocol members, ``alice`` and ``bob``, in ``#safe``: they must keep chatting."""

    def __init__(self, room: InProcessRoom) -> None:
        self.room = room
        self.alice, self.bob = room.join("alice"), room.join("bob")
        for member in (self.alice, self.bob):
            member.say("/join #safe")
        self.rounds = 0

    def still_chat(self) -> None:
        self.rounds += 1
        self.bob.clear()
        self.alice.say(f"still here {self.rounds}")
        assert self.bob.received[-1:] == [f"alice: still here {self.rounds}"], self.bob.received[-3:]


def check_room(room: InProcessRoom) -> None:
    assert room.faults == [], f"client input caused plugin faults: {[p for p, _ in room.faults]}"
    internal = [line for line in room.errors if "internal error" in line]
    assert not internal, internal[0]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    with web_room(tmp_path_factory.mktemp("web-fuzz")) as room:
        yield Scene(room)


SETTINGS = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@SETTINGS
@given(data=ws_stream, cuts=cut_points)
@example(data=ws_frame(8, b"\x03\xe8") + ws_frame(1, b"after the close"), cuts=[])
@example(data=ws_frame(8, b"\x03\xe8"), cuts=[])
@example(data=ws_frame(2, b"file-data \xc2\xb2\nabc"), cuts=[])
def test_the_web_door_survives_any_websocket_frames(scene: Scene, data: bytes, cuts: list[int]) -> None:
    room = scene.room
    mallory = WebFake(room)
    try:
        mallory.upgrade()
        conn = mallory.conn
        for piece in _split(data, cuts):
            mallory.send(piece)
            assert sum(len(p) for p in conn.parser._parts) <= 4 * conn.parser.max_text + MAX_META
        check_room(room)
        for op, payload in mallory.frames():
            assert op in (1, 2, 8, 10), op  # text, binary, close, pong
            if op == 1:
                event = json.loads(payload)
                assert isinstance(event, dict) and "type" in event, event
                assert not (event["type"] == "line" and "internal error" in event["text"]), event
    finally:
        mallory.leave()
    scene.still_chat()
    check_room(room)


@SETTINGS
@given(data=http_bytes, cuts=cut_points)
def test_the_web_door_survives_any_http_bytes(scene: Scene, data: bytes, cuts: list[int]) -> None:
    room = scene.room
    mallory = WebFake(room)
    try:
        for piece in _split(data, cuts):
            mallory.send(piece)
        check_room(room)
        assert not mallory.out or mallory.out.startswith(b"HTTP/1.1 "), bytes(mallory.out[:100])
    finally:
        mallory.leave()
    scene.still_chat()
    check_room(room)
