"""Unit tests of the connection's life: backoff, the Ctrl-C rule, and a whole reconnect of
:class:`chatroom.client.loop.ClientLoop` played over socketpairs (the test is both servers), so every
line the client sends and every line it shows is checked exactly, with deadlines and no sleeps.
"""

from __future__ import annotations

import socket
import threading
import time

from chatroom.client.catchup import PAGE, away_text
from chatroom.client.inputs import CtrlC
from chatroom.client.loop import ClientLoop
from chatroom.client.reconnect import CAP, Backoff
from chatroom.wire.lines import Line, Parser

DEADLINE = 5.0


def test_backoff_doubles_with_jitter_up_to_the_cap_and_resets() -> None:
    low = Backoff(rng=lambda: 0.0)
    high = Backoff(rng=lambda: 1.0)
    assert [low.next() for _ in range(3)] == [0.25, 0.5, 1.0]
    assert [high.next() for _ in range(3)] == [0.5, 1.0, 2.0]
    for _ in range(20):
        low.next(), high.next()
    assert (low.next(), high.next()) == (CAP / 2, CAP)  # 0.5 s doubled, never past 30 s
    high.reset()
    assert high.next() == 0.5


def test_ctrl_c_first_hints_then_quits_then_aborts() -> None:
    rule = CtrlC(window=2.0)
    assert rule.press(100.0) == "hint"
    assert rule.press(103.0) == "hint"  # too late for the first: a new first press
    assert rule.press(104.5) == "quit"
    assert rule.press(200.0) == "abort"


def test_away_text() -> None:
    assert (away_text(12.9), away_text(185), away_text(7500)) == ("12 s", "3 min 5 s", "2 h 5 min")


class Console:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.cond = threading.Condition()

    def line(self, text: str) -> None:
        with self.cond:
            self.lines.append(text)
            self.cond.notify_all()

    def error(self, text: str) -> None:
        with self.cond:
            self.errors.append(text)
            self.cond.notify_all()

    def wait(self, pred, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + DEADLINE
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                assert left > 0, f"timed out waiting for {what}: lines={self.lines[-5:]} errors={self.errors}"
                self.cond.wait(left)


class Peer:
    """The test's end of a socketpair: the server."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.settimeout(DEADLINE)
        self.parser = Parser()
        self.events: list = []

    def expect(self, text: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while not self.events:
            assert time.monotonic() < deadline, f"client never sent {text!r}"
            data = self.sock.recv(65536)
            assert data, f"client closed before {text!r}"
            self.events.extend(self.parser.feed(data))
        assert self.events.pop(0) == Line(text)

    def say(self, *lines: str) -> None:
        self.sock.sendall(b"".join(line.encode() + b"\n" for line in lines))


WELCOME = "* Welcome to chatroom, room lobby. You are guest1. Type /nick NAME to choose a name, /help for commands."


def tag(msgid: int | None, room: str, nick: str | None, text: str, *, history: bool = False,
        kind: str = "msg") -> str:
    parts = ([f"msgid={msgid}"] if msgid is not None else []) + [f"room={room}", f"kind={kind}"]
    parts += [f"nick={nick}"] if nick else []
    parts += ["history"] if history else []
    return "@" + ";".join(parts) + " " + text


def test_a_reconnect_rejoins_fetches_pages_and_shows_each_line_once() -> None:
    first_ours, first_theirs = socket.socketpair()
    second_ours, second_theirs = socket.socketpair()
    dialled: list[socket.socket] = [second_theirs]
    console = Console()
    loop = ClientLoop(first_theirs, "alice", console, tags=True, connect=dialled.pop,
                      backoff=Backoff(first=0.02))
    status: list[int] = []
    thread = threading.Thread(target=lambda: status.append(loop.run()), daemon=True)
    thread.start()
    try:
        one = Peer(first_ours)
        one.expect("/caps tags")
        one.expect("/nick alice")
        one.say(WELCOME, "[00:01] bob: old", "OK caps tags", "OK nick alice")
        one.expect("/history 1")  # the default room's last id (its replay came untagged)
        one.say(tag(7, "#lobby", "bob", "[00:01] bob: old", history=True), "OK history #lobby 1 line")
        loop.submit("/join #den key1")
        one.expect("/join #den key1")
        one.say(tag(3, "#den", "carol", "[00:02] carol: den old", history=True), "OK join #den (2 members)")
        loop.submit("/join #lobby")
        one.expect("/join #lobby")
        one.say("OK current room #lobby", tag(8, "#lobby", "bob", "bob: live"))
        console.wait(lambda: "bob: live" in console.lines, "the live line")
        shown_before = list(console.lines)
        assert shown_before == [WELCOME, "[00:01] bob: old", "[00:02] carol: den old", "OK join #den (2 members)",
                                "OK current room #lobby", "bob: live"]
        first_ours.close()

        console.wait(lambda: console.errors, "the loss")
        assert console.errors[0].startswith("connection to server lost; reconnecting in ")
        loop.submit("typed while away")
        two = Peer(second_ours)
        two.expect("/caps tags")
        two.expect("/nick alice")
        two.say(WELCOME, "[00:01] bob: old", "[00:04] bob: live", "OK caps tags", "OK nick alice")
        two.expect("/join #den key1")  # the current room last
        two.expect("/join #lobby")
        two.expect(f"/history #den since 3 {PAGE}")
        two.expect(f"/history #lobby since 8 {PAGE}")
        two.say("* topic of den: plans", tag(3, "#den", "carol", "[00:02] carol: den old", history=True),
                tag(None, "#den", None, "[#den] * bob joined den", kind="notice"),  # live: held
                "OK join #den (2 members)", "OK current room #lobby",
                tag(10, "#lobby", "bob", "bob: live during"),  # held, and in the history page below
                "bob (private): psst")  # no room: shown at once
        two.say(tag(4, "#den", "carol", "[00:05] carol: den missed", history=True), "OK history #den 1 line")
        page = [tag(i, "#lobby", "alice" if i == 9 else "bob", f"[00:06] {'alice' if i == 9 else 'bob'}: n{i}",
                    history=True) for i in range(9, 9 + PAGE)]
        two.say(*page, f"OK history #lobby {PAGE} lines")
        two.expect(f"/history #lobby since {8 + PAGE} {PAGE}")  # the page was full: the next one
        two.say("OK history #lobby 0 lines")
        two.expect("typed while away")  # held until the rejoin was through

        console.wait(lambda: console.lines[-1] == "[#den] * bob joined den", "the held live line")
        after = console.lines[len(shown_before):]
        assert after[0] == "bob (private): psst"
        assert after[1].startswith("* reconnected after ") and after[1].endswith(
            f"; 1 missed line in #den, {PAGE - 1} in #lobby")
        assert after[2] == "[#den] [00:05] carol: den missed"
        assert after[3:3 + PAGE - 1] == [f"[00:06] bob: n{i}" for i in range(10, 9 + PAGE)]  # not alice's own
        assert after[3 + PAGE - 1:] == ["[#den] * bob joined den"]  # "bob: live during" was in the page
        assert loop.last_ids == {"#den": 4, "#lobby": 8 + PAGE} and loop.current_room == "#lobby"

        loop.submit("/quit")
        two.expect("/quit")
        two.say("OK")
        second_ours.close()
        thread.join(DEADLINE)
        assert status == [0]
    finally:
        for sock in (first_ours, second_ours):
            sock.close()
