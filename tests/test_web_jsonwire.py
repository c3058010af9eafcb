"""Unit tests of the browser's wire without sockets: JSON events as WebSocket frames (:mod:`chatroom.wire.jsonwire`),
the room model's structured joins, parts, renames and private lines with a JSON member beside line members, and
the web connection's input parser (:mod:`chatroom.net.webproto`) fed bytes by hand."""

from __future__ import annotations

import json

import h11
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Ping, Request, TextMessage
from wsproto.frame_protocol import FrameProtocol

from chatroom.model.history import Entry
from chatroom.model.hub import Hub, Notice
from chatroom.model.member import Member
from chatroom.net.webproto import MAX_HEAD, HttpError, HttpRequest, WebParser, WsClosed, WsPing
from chatroom.wire.jsonwire import (
    binary_frame,
    binary_header,
    encode_entry,
    frame_header,
    line_event,
    line_kind,
    members_event,
    text_frame,
    you_event,
)
from chatroom.wire.lines import MAX_LINE, Frame, Line, Refused, TooLong

T0 = 1_790_000_000.25


def decode(frame: bytes) -> tuple[int, bytes]:
    """(opcode, payload) of one whole unmasked frame, read back by wsproto as a client would."""
    client = WSConnection(ConnectionType.CLIENT)
    proto = client._proto = FrameProtocol(client=True, extensions=[])  # noqa: SLF001 - a bare frame parser
    proto.receive_bytes(frame)
    frames = list(proto.received_frames())
    assert len(frames) == 1 and frames[0].message_finished
    payload = frames[0].payload
    return frames[0].opcode.value, payload.encode() if isinstance(payload, str) else bytes(payload)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 1 << 20])
def test_frames_are_the_bytes_wsproto_builds(size: int) -> None:
    proto = FrameProtocol(client=False, extensions=[])
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert frame_header(2, size) + payload == bytes(proto.send_data(payload))
    text = "é" * (size // 2)
    assert frame_header(1, len(text.encode())) + text.encode() == bytes(proto.send_data(text))
    assert binary_frame("file-data 7", payload) == bytes(proto.send_data(b"file-data 7\n" + payload))
    assert binary_header("file-data 7", size) + payload == binary_frame("file-data 7", payload)


def test_a_chat_line_is_one_json_text_frame_with_every_field() -> None:
    entry = Entry("#lobby", 42, T0, "msg", "alice", "alice", "<img src=x onerror=alert(1)>")
    opcode, payload = decode(encode_entry(entry, 0, True, False))
    assert opcode == 1
    assert json.loads(payload) == {"type": "msg", "room": "#lobby", "id": 42, "time": "2026-09-21T14:13:20.250Z",
                                   "nick": "alice", "account": "alice", "text": "<img src=x onerror=alert(1)>",
                                   "history": False}
    again = json.loads(decode(encode_entry(entry._replace(kind="me", account=None), 1, False, True))[1])
    assert (again["type"], again["account"], again["history"]) == ("me", None, True)  # tags/current change nothing
    assert encode_entry(entry, 0, True) == encode_entry(entry, 1, False)


def test_notices_joins_parts_renames_and_private_lines() -> None:
    def event(notice: Notice) -> dict[str, object]:
        return json.loads(decode(encode_entry(notice))[1])

    join = event(Notice("#den", 0, T0, "join", "bob", "bob", "bob joined den"))
    assert join == {"type": "join", "room": "#den", "time": "2026-09-21T14:13:20.250Z", "nick": "bob",
                    "account": "bob", "text": "bob joined den", "quiet": False}
    part = event(Notice("#den", 0, T0, "part", "bob", None, "bob left den (quit)", "quit", True))
    assert (part["type"], part["reason"], part["quiet"]) == ("part", "quit", True)
    nick = event(Notice("", 0, T0, "nick", "alice", None, "guest1 is now known as alice", "guest1"))
    assert (nick["type"], nick["old"], nick["nick"]) == ("nick", "guest1", "alice")
    private = event(Notice("", 0, T0, "private", "alice", None, "psst", "bob"))
    assert (private["type"], private["nick"], private["to"], private["text"]) == ("private", "alice", "bob", "psst")
    notice = event(Notice("#den", 0, T0, "notice", "", None, "alice kicked bob from den"))
    assert notice == {"type": "notice", "room": "#den", "time": "2026-09-21T14:13:20.250Z",
                      "text": "alice kicked bob from den"}


def test_lines_and_state_events() -> None:
    assert [line_kind(t) for t in ("OK", "OK join #x", "ERROR no", "OKAY", "* hi", "ERRORS")] == \
        ["ok", "ok", "error", "info", "info", "info"]
    assert json.loads(decode(line_event("ERROR line too long"))[1]) == {
        "type": "line", "kind": "error", "text": "ERROR line too long"}
    assert json.loads(decode(you_event("bob", None, "#x", ["#lobby", "#x"]))[1])["rooms"] == ["#lobby", "#x"]
    members = json.loads(decode(members_event("#x", ["a", "b"], "hi", "a", T0))[1])
    assert (members["nicks"], members["topic"], members["topic_time"]) == (["a", "b"], "hi", "2026-09-21T14:13:20.250Z")
    assert json.loads(decode(text_frame({"t": "é"}))[1]) == {"t": "é"}


# -- the room model with a JSON member beside line members ------------------------------------------
class Recorder(Member):
    __slots__ = ("buffers", "wire_index", "events")

    def __init__(self, mid: int, nick: str, wire: int = 0, tagged: int = 0) -> None:
        super().__init__(mid, nick)
        self.buffers: list[bytes] = []
        self.events: list[str] = []
        self.wire_index = wire  # type: ignore[misc]
        self.tagged = tagged

    def deliver(self, data: bytes | memoryview) -> None:
        self.buffers.append(bytes(data) if isinstance(data, memoryview) else data)

    def joined(self, room: object) -> None:
        self.events.append(f"joined {room.name}")  # type: ignore[attr-defined]

    def changed(self) -> None:
        self.events.append(f"changed {self.nick} {self.room.name if self.room else None}")

    def take(self) -> bytes:
        data = b"".join(self.buffers)
        self.buffers.clear()
        return data


def json_events(data: bytes) -> list[dict[str, object]]:
    """Every JSON text frame in *data* (several frames back to back)."""
    proto = FrameProtocol(client=True, extensions=[])
    proto.receive_bytes(data)
    return [json.loads(f.payload) for f in proto.received_frames()]


@pytest.fixture
def hub() -> Hub:
    return Hub(None, clock=lambda: T0, announce_limit=3)


def test_line_members_see_what_they_always_saw_and_json_members_see_structure(hub: Hub) -> None:
    web = hub.add_wire(encode_entry)
    line, tagged, browser = Recorder(1, "ann"), Recorder(2, "tim", tagged=1), Recorder(3, "web", wire=web)
    for member in (line, tagged, browser):
        hub.add(member)
        hub.join(member, hub.default_room)
    hub.flush()
    for member in (line, tagged, browser):
        member.take()
    bob = Recorder(4, "bob")
    hub.add(bob)
    hub.join(bob, hub.default_room)
    hub.rename(bob, "robert")
    hub.part(bob, hub.default_room, "bye")
    hub.flush()
    assert line.take() == b"* bob joined lobby\n* bob is now known as robert\n* robert left lobby (bye)\n"
    assert tagged.take().decode().splitlines() == [
        "@room=#lobby;time=2026-09-21T14:13:20.250Z;kind=notice * bob joined lobby",
        "@time=2026-09-21T14:13:20.250Z;kind=notice * bob is now known as robert",
        "@room=#lobby;time=2026-09-21T14:13:20.250Z;kind=notice * robert left lobby (bye)"]
    assert [(e["type"], e.get("nick"), e.get("old"), e.get("reason")) for e in json_events(browser.take())] == [
        ("join", "bob", None, None), ("nick", "robert", "bob", None), ("part", "robert", None, "bye")]
    assert bob.events == ["joined #lobby", "changed bob #lobby", "changed robert #lobby", "changed robert None"]
    hub.private("ann", None, browser, "psst")
    hub.private("web", None, line, "hi ann")
    assert json_events(browser.take())[0] == {"type": "private", "time": "2026-09-21T14:13:20.250Z", "nick": "ann",
                                              "account": None, "to": "web", "text": "psst"}
    assert line.take() == b"web (private): hi ann\n"


def test_one_encoding_for_every_json_member_and_quiet_joins_over_the_announce_limit(hub: Hub) -> None:
    calls: list[str] = []

    def counting(entry: Entry, tagged: int, current: bool, history: bool = False) -> bytes:
        calls.append(entry.kind)
        return encode_entry(entry, tagged, current, history)

    web = hub.add_wire(counting, variants=False)
    browsers = [Recorder(10 + i, f"web{i}", wire=web, tagged=i % 2) for i in range(5)]
    line = Recorder(1, "ann")
    for member in [line, *browsers]:
        hub.add(member)
        hub.join(member, hub.default_room)
    hub.flush()
    other = hub.open_room("#other")
    hub.join(browsers[4], other)  # #other is its current room now: a variant that changes no JSON byte
    hub.flush()
    for member in [line, *browsers]:
        member.take()
    calls.clear()
    hub.say(line, hub.default_room, "hello")
    hub.flush()
    sent = [b.buffers[0] for b in browsers]
    assert all(data is sent[0] for data in sent) and calls == ["msg"]  # one encoding, one buffer for all
    assert json_events(sent[0])[0]["text"] == "hello"
    newcomer = Recorder(99, "late")
    hub.add(newcomer)
    hub.join(newcomer, hub.default_room)  # 6 members already: over the limit of 3
    hub.flush()
    assert line.take() == b""  # its own line is not echoed, and the join is not announced over the limit
    quiet = json_events(browsers[0].take())[-1]
    assert (quiet["type"], quiet["nick"], quiet["quiet"]) == ("join", "late", True)


def test_a_room_of_line_members_over_the_limit_pends_nothing(hub: Hub) -> None:
    members = [Recorder(i, f"m{i}") for i in range(6)]
    for member in members:
        hub.add(member)
        hub.join(member, hub.default_room)
    hub.flush()
    assert hub.default_room.pending == []
    hub.part(members[0], hub.default_room)
    assert hub.default_room.pending == []


# -- the connection's input parser ---------------------------------------------------------------
def upgraded(messages: list[object]) -> tuple[WebParser, WSConnection]:
    """A parser past a WebSocket upgrade, and the client side; *messages* sent by the client at once."""
    parser, client = WebParser(), WSConnection(ConnectionType.CLIENT)
    parser.receive_data(client.send(Request(host="h", target="/ws")))
    request = parser.next_event()
    assert isinstance(request, HttpRequest) and request.target == b"/ws"
    client.receive_data(parser.upgrade(request))
    assert isinstance(next(client.events()), AcceptConnection)
    for message in messages:
        parser.receive_data(client.send(message))  # type: ignore[arg-type]
    return parser, client


def drain(parser: WebParser) -> list[object]:
    events = []
    for _ in range(1000):
        event = parser.next_event()
        if event is None:
            return events
        events.append(event)
    raise AssertionError("the parser never ran dry")


def test_requests_and_their_bounds() -> None:
    parser = WebParser()
    parser.receive_data(b"GET /app.js?v=1 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    first = parser.next_event()
    assert isinstance(first, HttpRequest) and (first.method, first.target) == (b"GET", b"/app.js?v=1")
    assert parser.next_event() is None  # pipelined: the next one waits for the answer
    assert parser.http is not None
    parser.http.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
    parser.http.send(h11.EndOfMessage())
    parser.answered()
    assert isinstance(parser.next_event(), HttpRequest)
    big = WebParser()
    big.receive_data(b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD)
    error = big.next_event()
    assert isinstance(error, HttpError) and error.status == 431
    many = WebParser()
    many.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(65)) + b"\r\n")
    error = many.next_event()
    assert isinstance(error, HttpError) and error.status == 431
    body = WebParser()
    body.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    with_body = body.next_event()  # handed on: the gate answers 400 but for an upload link (test_file_links.py)
    assert isinstance(with_body, HttpRequest) and with_body.body == 5
    garbage = WebParser()
    garbage.receive_data(b"\x00\x01 nonsense\r\n\r\n")
    assert isinstance(error := garbage.next_event(), HttpError) and error.status == 400


def test_a_first_line_that_is_no_request_line_is_answered_at_once() -> None:
    """``chatroom-client`` or ``nc`` pointed at the web port by mistake sends a chat line: it waited for a
    header block that never comes and got a 408 ten seconds later; a complete first line that cannot begin
    an HTTP request gets the 400 at once, saying which port they want. Requests still arrive in pieces."""
    for line in (b"/caps binary\n", b"hello everyone\r\n", b"NICK alice\r\n"):
        parser = WebParser()
        parser.receive_data(line)
        error = parser.next_event()
        assert isinstance(error, HttpError) and error.status == 400, line
        assert "web port" in error.reason and "listening on" in error.reason
    pieces = WebParser()
    for piece in (b"GET / HT", b"TP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
        assert pieces.next_event() is None
        pieces.receive_data(piece)
    assert isinstance(pieces.next_event(), HttpRequest)


def test_text_messages_are_lines_and_binary_messages_frames() -> None:
    parser, client = upgraded([TextMessage(data="hi\n/join #x\r\nlast\n"), TextMessage(data=""),
                               BytesMessage(data=b"file-data 7\n\x00\x01\x02"), Ping(payload=b"p"),
                               TextMessage(data="one line\r"), TextMessage(data="é" * 20000),
                               TextMessage(data="é" * 40000)])  # 40,000 characters, 80,000 bytes
    events = drain(parser)
    assert events[:5] == [Line("hi"), Line("/join #x"), Line("last"), Line(""), Frame("file-data 7", b"\x00\x01\x02")]
    assert events[6:] == [Line("one line"), Line("é" * 20000), TooLong("line", 80000)]
    assert isinstance(events[5], WsPing)
    client.receive_data(events[5].pong)
    assert [type(e).__name__ for e in client.events()] == ["Pong"]


def test_message_limits_and_refusals() -> None:
    refusals: list[tuple[str, int]] = []

    def check(meta: str, size: int) -> str | None:
        refusals.append((meta, size))
        return "no" if meta.startswith("bad") else None

    parser, client = upgraded([])
    parser.frame_filter = check
    for message in [TextMessage(data="x" * (MAX_LINE + 1)), TextMessage(data="after"),
                    BytesMessage(data=b"no newline here"), BytesMessage(data=b"bad 1\nxyz"),
                    BytesMessage(data=b"file-end 1 ab\n")]:
        parser.receive_data(client.send(message))
    events = drain(parser)
    assert events[0] == TooLong("line", MAX_LINE + 1) and events[1] == Line("after")
    assert isinstance(events[2], Refused) and isinstance(events[3], Refused) and events[3].reason == "no"
    assert events[4] == Frame("file-end 1 ab", b"") and refusals == [("bad 1", 3), ("file-end 1 ab", 0)]
    assert not parser.partial
    parser.receive_data(client.send(TextMessage(data="half", message_finished=False)))
    assert drain(parser) == [] and parser.partial and not parser.in_frame


def test_bad_utf8_and_closes_end_the_websocket_with_a_code() -> None:
    parser, _ = upgraded([])
    parser.receive_data(b"\x81\x82abcd" + bytes([0xFF ^ ord("a"), 0xFE ^ ord("b")]))  # masked text: 0xff 0xfe
    closed = drain(parser)[0]
    assert isinstance(closed, WsClosed) and closed.code == 1007 and closed.reply[:1] == b"\x88"  # a close frame
    parser, client = upgraded([CloseConnection(code=1000, reason="bye")])
    closed = drain(parser)[0]
    assert isinstance(closed, WsClosed) and (closed.code, closed.reason) == (1000, "bye") and closed.reply
