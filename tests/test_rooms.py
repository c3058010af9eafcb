"""End-to-end tests of rooms and history (issue 9) over TCP, against the real ``chatroom-server``.

Clients are raw line clients, as a person with ``nc`` (``LineClient`` from
``conftest.py``), and in one test the real ``chatroom-client`` in pipe mode.
Every wait is on a line the programs print, with a deadline; ``sync()``
(``/upper TAG``) marks "everything sent before this has been handled", so a
test can also check that a line did NOT arrive.
"""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest
from test_e2e_transfer import ClientProcess

DEADLINE = 10.0
STAMP = r"\[\d\d:\d\d\] "  # the history marker of a line from today
TAGS = re.compile(r"^@(\S+) (.*)$")


def stamped(line: str, text: str, room_prefix: str = "") -> bool:
    """Is *line* the history line *text* (``[HH:MM] text``, after an optional ``[#room] `` prefix)?"""
    return re.fullmatch(re.escape(room_prefix) + STAMP + re.escape(text), line) is not None


def parse_tags(line: str) -> tuple[dict[str, str | bool], str]:
    """``@k=v;k;... text`` -> ({k: v or True}, text)."""
    match = TAGS.match(line)
    assert match, line
    out: dict[str, str | bool] = {}
    for part in match.group(1).split(";"):
        key, eq, value = part.partition("=")
        out[key] = value if eq else True
    return out, match.group(2)


def drain(*clients) -> None:  # type: ignore[no-untyped-def]
    """Read what each client got so far (join notices...), up to a ``/upper`` reply."""
    for client in clients:
        client.sync("drained")


# -- rooms --------------------------------------------------------------------------------
def test_two_rooms_formats_and_notices(server) -> None:  # type: ignore[no-untyped-def]
    alice = server.connect("alice")
    bob = server.connect("bob")
    carol = server.connect("carol")  # never leaves #lobby
    drain(alice, bob, carol)
    bob.send("/join #design")
    assert bob.expect("OK join #design (1 member)") == []
    alice.send("/join #Design")
    assert alice.expect("OK join #design (2 members)") == []
    assert bob.expect("* alice joined design") == []
    alice.send("/j lobby")
    alice.expect("OK current room #lobby")
    alice.send("hello lobby")
    assert bob.expect("[#lobby] alice: hello lobby") == []
    carol.expect("alice: hello lobby")
    alice.send("/join #design")
    alice.expect("OK current room #design")
    alice.send("about design")
    bob.expect("alice: about design")
    bob.send("reply in design")
    alice.expect("bob: reply in design")
    bob.send("/part #design off to lunch")
    bob.expect("OK part #design; current room #lobby")
    assert alice.expect("* bob left design (off to lunch)") == []
    bob.send("back in lobby")
    alice.expect("[#lobby] bob: back in lobby")
    carol.expect("bob: back in lobby")
    carol.sync()
    assert not [line for line in carol.seen if "design" in line]  # #design's lines and notices stay there


def test_a_lobby_only_client_sees_what_it_always_saw(server) -> None:  # type: ignore[no-untyped-def]
    nc = server.raw_client()
    assert re.fullmatch(r"\* Welcome to chatroom, room lobby\. You are guest\d+\. "
                        r"Type /nick NAME to choose a name, /help for commands\.", nc.next_line())
    nc.send("/nick watcher")
    assert nc.next_line() == "OK nick watcher"
    alice = server.raw_client()
    guest = re.search(r"You are (guest\d+)\.", alice.next_line()).group(1)  # type: ignore[union-attr]
    alice.send("/nick alice")
    alice.expect("OK nick alice")
    alice.send("hi all")
    alice.send("/join #elsewhere")
    alice.expect_prefix("OK join #elsewhere")
    alice.send("not for the lobby")
    alice.send("/topic elsewhere topic")
    alice.expect("OK topic")
    alice.send("/quit")
    alice.expect("OK")
    lines = [nc.next_line() for _ in range(4)]
    assert lines == [f"* {guest} joined lobby", f"* {guest} is now known as alice", "alice: hi all",
                     "* alice left lobby (quit)"]
    assert nc.sync() == []


def test_rooms_lists_live_and_owned_rooms_and_topics(server) -> None:  # type: ignore[no-untyped-def]
    alice = server.connect("alice")
    alice.send("/rooms")
    assert alice.expect("OK 1 room") == ["* #lobby (1)"]
    alice.send("/join #empty")
    alice.expect("OK join #empty (1 member)")
    alice.send("/part")
    alice.expect("OK part #empty; current room #lobby")  # a guest's room: gone with its last member
    alice.send("/join #design")
    alice.expect_prefix("OK join #design")
    alice.send("/topic the plan")
    alice.expect("OK topic")
    carol = server.connect("carol")
    carol.send("/register sesame-seeds")
    carol.expect("OK registered carol; you are logged in")
    carol.send("/join #owned")
    carol.expect("OK join #owned (1 member)")
    carol.send("/part")
    carol.expect("OK part #owned; current room #lobby")  # an owner's room persists empty
    bob = server.connect("bob")
    bob.send("/rooms")
    assert bob.expect("OK 3 rooms") == ["* #design (1): the plan", "* #lobby (3)", "* #owned (0)"]


def test_topic_set_show_clear_and_restart(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "topicdata"
    server = server_factory(data_dir=data)
    alice, bob = server.connect("alice"), server.connect("bob")
    drain(alice, bob)
    alice.send("/topic")
    assert alice.expect("* lobby has no topic") == []
    alice.send("/topic release on friday")
    assert alice.expect("* alice set the topic of lobby: release on friday") == []
    alice.expect("OK topic")
    bob.expect("* alice set the topic of lobby: release on friday")
    bob.send("/topic")
    line = bob.expect_prefix("* topic of lobby: release on friday (set by alice, ")
    assert re.fullmatch(r".*\(set by alice, \d{4}-\d\d-\d\d \d\d:\d\d\)", line)
    bob.send("/topic --clear")
    bob.expect("* bob cleared the topic of lobby")
    bob.expect("OK topic")
    alice.expect("* bob cleared the topic of lobby")
    alice.send("/join #design")
    alice.expect_prefix("OK join #design")
    alice.send("/topic kept across restarts")
    alice.expect("OK topic")
    assert server.stop(signal.SIGTERM) == 0
    again = server_factory(data_dir=data)
    carol = again.connect("carol")
    carol.send("/rooms")  # alice's #design has no owner: it lingers after the restart, not listed
    assert carol.expect("OK 1 room") == ["* #lobby (1)"]
    carol.send("/topic")
    carol.expect("* lobby has no topic")
    carol.send("/join #design")
    before = carol.expect("OK join #design (1 member)")
    assert before[0] == "* topic of design: kept across restarts"
    assert stamped(before[-1], "* alice set the topic of design: kept across restarts")
    carol.send("/topic")
    carol.expect_prefix("* topic of design: kept across restarts (set by alice, ")


def test_me_who_and_part(server) -> None:  # type: ignore[no-untyped-def]
    alice, bob = server.connect("alice"), server.connect("bob")
    drain(alice, bob)
    alice.send("/me waves")
    assert bob.expect("* alice waves") == []
    assert alice.sync() == []  # the sender does not get its own /me
    bob.send("/join #design")
    bob.expect_prefix("OK join #design")
    bob.send("/who")
    assert bob.expect("* 1 in design: bob") == []
    bob.send("/who #lobby")
    bob.expect("* 2 in lobby: alice, bob")
    alice.send("/who #design")
    alice.expect("* 1 in design: bob")
    alice.send("/part #design")
    alice.expect("ERROR you are not in #design")
    alice.send("/part")
    alice.expect("OK part #lobby; you are in no room: /join #room")
    bob.expect("[#lobby] * alice left lobby")
    alice.send("anyone?")
    alice.expect("ERROR you are in no room: /join #room first")
    alice.send("/topic")
    alice.expect("ERROR you are in no room: /join #room first")
    alice.send("/join #BAD!")
    alice.expect("ERROR '#BAD!' is not a room name: # and 1-32 of a-z 0-9 _ -")
    alice.send("/leave")
    alice.expect_prefix("ERROR ")
    alice.send("/join lobby")
    alice.expect("OK join #lobby (2 members)")
    bob.expect("[#lobby] * alice joined lobby")
    bob.send("/leave #lobby see you")
    bob.expect("OK part #lobby; current room #design")
    alice.expect("* bob left lobby (see you)")


# -- history ---------------------------------------------------------------------------------
def test_history_on_join_and_history_commands(server) -> None:  # type: ignore[no-untyped-def]
    alice = server.connect("alice")
    for i in range(1, 6):
        alice.send(f"line {i}")
    alice.send("/me stretches")
    alice.sync()
    bob = server.raw_client()
    bob.expect_prefix("* Welcome")
    replay = [bob.next_line() for _ in range(6)]
    assert [stamped(line, text) for line, text in zip(replay, [f"alice: line {i}" for i in range(1, 6)]
                                                     + ["* alice stretches"])] == [True] * 6
    assert bob.sync() == []
    bob.send("/history 2")
    got = bob.expect("OK history #lobby 2 lines")
    assert stamped(got[0], "alice: line 5") and stamped(got[1], "* alice stretches")
    bob.send("/history 1")
    assert len(bob.expect("OK history #lobby 1 line")) == 1
    for bad in ("/history 0", "/history 501", "/history x", "/history since", "/history since x",
                "/history before 1 2 3", "/history 1 2"):
        bob.send(bad)
        assert bob.next_line().startswith("ERROR usage: /history"), bad
    bob.send("/history #nowhere")
    bob.expect("ERROR no such room: #nowhere")
    bob.send("/join #design")
    assert bob.expect("OK join #design (1 member)") == []  # no history, no topic
    bob.send("/history #lobby 1")
    got = bob.expect("OK history #lobby 1 line")
    assert stamped(got[0], "* alice stretches", "[#lobby] ")


def test_history_since_and_before_with_tags(server) -> None:  # type: ignore[no-untyped-def]
    alice = server.connect("alice")
    bob = server.connect("bob")
    bob.send("/caps tags")
    assert bob.expect("OK caps tags") == []
    bob.send("/caps binary")
    bob.expect("OK caps binary tags")
    ids = []
    for i in range(1, 6):
        alice.send(f"msg {i}")
        tags, text = parse_tags(bob.next_line())
        assert text == f"alice: msg {i}"
        assert tags["room"] == "#lobby" and tags["kind"] == "msg" and tags["nick"] == "alice"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(tags["time"]))
        assert "history" not in tags
        ids.append(int(str(tags["msgid"])))
    assert ids == sorted(ids) and len(set(ids)) == 5 and ids[0] >= 1
    bob.send(f"/history since {ids[1]}")
    got = bob.expect("OK history #lobby 3 lines")
    assert [parse_tags(line)[0]["msgid"] for line in got] == [str(i) for i in ids[2:]]
    assert all(parse_tags(line)[0]["history"] is True for line in got)
    assert re.fullmatch(STAMP + "alice: msg 3", parse_tags(got[0])[1])
    bob.send(f"/history since {ids[1]} 1")
    got = bob.expect("OK history #lobby 1 line")
    assert parse_tags(got[0])[0]["msgid"] == str(ids[2])
    bob.send(f"/history before {ids[3]} 2")
    got = bob.expect("OK history #lobby 2 lines")
    assert [parse_tags(line)[0]["msgid"] for line in got] == [str(ids[1]), str(ids[2])]
    bob.send(f"/history since {ids[-1]}")
    assert bob.expect("OK history #lobby 0 lines") == []
    carol = server.connect("carol")
    carol.sync()
    tags, text = parse_tags(bob.next_line())
    assert "msgid" not in tags and tags["kind"] == "notice" and tags["room"] == "#lobby"
    assert re.fullmatch(r"\* guest\d+ joined lobby", text)
    alice.send("plain for nc")
    assert carol.expect("alice: plain for nc") == []  # no tags for a client that did not ask


def test_history_survives_restart_and_sigkill(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "durable"
    server = server_factory(data_dir=data)
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.send("/join #design")
    alice.expect_prefix("OK join #design")
    alice.send("said before SIGTERM")
    alice.sync()
    assert server.stop(signal.SIGTERM) == 0
    server = server_factory(data_dir=data)
    alice, bob = server.connect("alice"), server.connect("bob")
    bob.send("/caps tags")
    bob.expect("OK caps tags")
    for i in range(20):
        alice.send(f"/me counts {i}" if i == 0 else f"lobby {i}")
    line = bob.expect_prefix("@msgid=")  # the /me
    first_id = int(str(parse_tags(line)[0]["msgid"]))
    bob.expect_where(lambda line: line.endswith(" alice: lobby 19"), "lobby 19")
    last_id = int(str(parse_tags(bob.seen[-1])[0]["msgid"]))
    assert last_id == first_id + 19
    alice.send("/topic saved")  # OK topic comes once the topic is committed, and every line said before it
    alice.expect("OK topic")    # (docs/protocol.md, "Durability")
    server.proc.kill()  # SIGKILL
    server.proc.wait(DEADLINE)
    server = server_factory(data_dir=data)
    carol = server.connect("carol")
    carol.send("/history 50")
    got = carol.expect("OK history #lobby 21 lines")
    assert stamped(got[0], "* alice counts 0") and stamped(got[-2], "alice: lobby 19")
    assert stamped(got[-1], "* alice set the topic of lobby: saved")
    carol.send("/join #design")
    got = carol.expect("OK join #design (1 member)")
    assert len(got) == 1 and stamped(got[0], "alice: said before SIGTERM")
    carol.send("/caps tags")
    carol.expect("OK caps tags")
    carol.send("/join #lobby")
    carol.expect("OK current room #lobby")
    dave = server.connect("dave")
    dave.send("after the kill")
    line = carol.expect_prefix("@msgid=")
    # ids go on, never reused: after a kill they continue above every id the server may have handed out
    # (docs/protocol.md, "Durability"), so a client catching up by id sees a gap, never a known id again
    assert int(str(parse_tags(line)[0]["msgid"])) > last_id + 1


def test_new_rooms_and_topics_survive_sigkill(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "killed"
    server = server_factory(data_dir=data)
    alice = server.connect("alice")
    alice.send("/register sesame-seeds")  # alice's new room is hers: it persists (a guest's would linger)
    alice.expect("OK registered alice; you are logged in")
    alice.send("/join #brandnew")
    alice.expect("OK join #brandnew (1 member)")
    alice.send("/topic set just before the kill")
    alice.expect("OK topic")
    server.proc.kill()
    server.proc.wait(DEADLINE)
    server = server_factory(data_dir=data)
    bob = server.connect("bob")
    bob.send("/rooms")
    assert bob.expect("OK 2 rooms") == ["* #brandnew (0): set just before the kill", "* #lobby (1)"]


def test_history_on_join_zero(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("--history-on-join", "0")
    alice = server.connect("alice")
    alice.send("remember me")
    alice.sync()
    bob = server.raw_client()
    bob.expect_prefix("* Welcome")
    assert bob.sync() == []
    bob.send("/join #lobby")
    bob.expect("OK current room #lobby")
    bob.send("/history")
    got = bob.expect("OK history #lobby 1 line")
    assert stamped(got[0], "alice: remember me")


def test_history_on_join_above_the_fetch_limit(server_factory) -> None:  # type: ignore[no-untyped-def]
    """--history-on-join above /history's 500 is either refused at start or served (capped), never a crash."""
    try:
        server = server_factory("--history-on-join", "501")
    except RuntimeError as exc:
        assert "--history-on-join" in str(exc)
        return
    alice = server.raw_client()
    assert alice.next_line(timeout=5).startswith("* Welcome")
    alice.send("/nick alice")
    alice.expect("OK nick alice", timeout=5)
    alice.send("one line")
    alice.sync()
    bob = server.raw_client()
    assert bob.next_line(timeout=5).startswith("* Welcome")
    assert stamped(bob.next_line(timeout=5), "alice: one line")


def test_no_history_records_nothing_but_rooms_persist(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "nohist"
    server = server_factory("--no-history", data_dir=data)
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.send("/caps tags")
    alice.expect("OK caps tags")
    bob.send("not recorded")
    tags, text = parse_tags(alice.next_line())
    assert text == "bob: not recorded" and "msgid" not in tags
    bob.send("/join #kept")
    bob.expect_prefix("OK join #kept")
    bob.send("/topic still persists")
    bob.expect("OK topic")
    bob.send("/history")
    assert bob.expect("OK history #kept 0 lines") == []
    server.stop()
    server = server_factory("--no-history", data_dir=data)
    carol = server.connect("carol")
    assert carol.sync() == []
    carol.send("/rooms")  # bob's #kept has no owner: it lingers, unlisted, with its topic
    assert carol.expect("OK 1 room") == ["* #lobby (1)"]
    carol.send("/join #kept")
    assert carol.expect("OK join #kept (1 member)") == ["* topic of kept: still persists"]


@pytest.mark.parametrize("spec", ["3", "3,30d"])
def test_history_keep_lines_after_restart(server_factory, tmp_path: Path, spec: str) -> None:  # type: ignore[no-untyped-def]
    """--history-keep 3: after a restart only the 3 newest lines of each room remain, for the very
    first client too (retention runs at start-up, then every 60 s)."""
    data = tmp_path / "keep"
    server = server_factory(data_dir=data)
    alice = server.connect("alice")
    for i in range(1, 8):
        alice.send(f"old {i}")
    alice.send("/join #other")
    alice.expect_prefix("OK join #other")
    for i in range(1, 3):
        alice.send(f"other {i}")
    alice.sync()
    server.stop()
    server = server_factory("--history-keep", spec, data_dir=data)
    first = server.raw_client()
    first.expect_prefix("* Welcome")
    replay = first.sync()  # retention ran at start-up, before anyone joined
    assert [stamped(line, f"alice: old {i}") for line, i in zip(replay, (5, 6, 7))] == [True] * 3
    assert len(replay) == 3
    bob = server.connect("bob")
    bob.send("/history 50")
    got = bob.expect("OK history #lobby 3 lines")
    assert [stamped(line, f"alice: old {i}") for line, i in zip(got, (5, 6, 7))] == [True] * 3
    bob.send("/history #other 50")
    assert len(bob.expect("OK history #other 2 lines")) == 2
    bob.send("new line")
    bob.sync()
    bob.send("/history 50")  # lines said since start-up stay until the next retention pass (60 s)
    assert len(bob.expect("OK history #lobby 4 lines")) == 4


@pytest.mark.parametrize("flag", [("--history-keep", "lots"), ("--history-keep", "-3"), ("--default-room", "#no!"),
                                  ("--history-on-join", "-1")])
def test_bad_room_flags_are_refused(tmp_path: Path, flag: tuple[str, str]) -> None:
    done = subprocess.run(["chatroom-server", "--port", "0", "--data-dir", str(tmp_path / "d"), *flag],
                          capture_output=True, text=True, timeout=DEADLINE)
    assert done.returncode == 2 and flag[0] in done.stderr and not done.stdout


def test_default_room_flag(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("--default-room", "#Main")
    alice = server.raw_client()
    assert alice.next_line().startswith("* Welcome to chatroom, room main. You are guest")
    alice.send("/who")
    alice.expect_prefix("* 1 in main: guest")
    alice.send("/rooms")
    assert alice.expect("OK 1 room") == ["* #main (1)"]
    bob = server.connect("bob")
    bob.send("/join #lobby")
    bob.expect("OK join #lobby (1 member)")


# -- chatroom-client and the "Done when" ------------------------------------------------
class PipeClient(ClientProcess):
    """The real ``chatroom-client`` in pipe mode (see tests/test_e2e_transfer.py); ``expect`` returns
    the lines read before the one that matched."""

    def __init__(self, port: int, cwd: Path, nick: str) -> None:
        super().__init__(port, cwd, "--name", nick)

    expect = ClientProcess.lines_until  # type: ignore[assignment]


@pytest.fixture
def pipe_clients(tmp_path: Path):  # type: ignore[no-untyped-def]
    started: list[PipeClient] = []

    def start(port: int, nick: str) -> PipeClient:
        client = PipeClient(port, tmp_path / f"client-{nick}-{len(started)}", nick)
        started.append(client)
        client.expect(lambda line: line.startswith("* Welcome"))
        return client

    yield start
    for client in started:
        client.kill()


def test_chatroom_client_and_nc_talk_in_two_rooms(server, pipe_clients) -> None:  # type: ignore[no-untyped-def]
    nc = server.connect("alice")
    nc.send("/join #design")
    nc.expect("OK join #design (1 member)")
    nc.send("/join #lobby")
    nc.expect("OK current room #lobby")
    dana = pipe_clients(server.port, "dana")
    nc.expect_where(lambda line: re.fullmatch(r"\* guest\d+ is now known as dana", line) is not None, "dana")
    dana.send("/join #design")
    dana.expect("OK join #design (2 members)")
    nc.expect("[#design] * dana joined design")
    dana.send("hello design")
    nc.expect("[#design] dana: hello design")
    nc.send("hello lobby")
    dana.expect("[#lobby] alice: hello lobby")
    nc.send("/join #design")
    nc.expect("OK current room #design")
    nc.send("design reply")
    dana.expect("alice: design reply")
    dana.send("/join #lobby")
    dana.expect("OK current room #lobby")
    dana.send("back in lobby")
    nc.expect("[#lobby] dana: back in lobby")


def test_leave_come_back_and_see_what_was_said(server, pipe_clients) -> None:  # type: ignore[no-untyped-def]
    """Issue 9, "Done when": join #lobby and #design from chatroom-client and nc, talk in both,
    leave, come back and see what was said while away."""
    nc = server.connect("alice")
    nc.send("/join #design")
    nc.expect_prefix("OK join #design")
    dana = pipe_clients(server.port, "dana")
    dana.send("/join #design")
    dana.expect("OK join #design (2 members)")
    dana.send("hi alice")
    nc.expect("dana: hi alice")
    dana.send("/quit")
    dana.expect("OK")
    nc.expect("* dana left design (quit)")
    nc.send("missed in design")
    nc.send("/join #lobby")
    nc.expect("OK current room #lobby")
    nc.send("missed in lobby")
    nc.sync()
    dana = pipe_clients(server.port, "dana")
    dana.send("/join #design")
    before = dana.expect("OK join #design (2 members)")  # lobby's replay (on connect), then design's
    assert any(stamped(line, "alice: missed in lobby") for line in before)
    design = [line for line in before if "design" in line and "missed" in line]
    assert [stamped(line, "alice: missed in design") for line in design] == [True]
    assert any(stamped(line, "dana: hi alice") for line in before)
    # the nc person leaves and comes back the same way, fetching exactly what it missed by id
    nc.send("/caps tags")
    nc.expect("OK caps tags")
    nc.send("/history #design 1")
    last_id = int(str(parse_tags(nc.expect("OK history #design 1 line")[0])[0]["msgid"]))
    nc.send("/quit")
    nc.expect("OK")
    dana.send("while alice was away")
    dana.send("/upper handled")
    dana.expect("HANDLED")
    back = server.connect("alice")
    back.send(f"/history #design since {last_id}")
    got = back.expect("OK history #design 1 line")
    assert stamped(got[0], "dana: while alice was away", "[#design] ")


def test_one_senders_lines_in_two_rooms_arrive_in_order(server) -> None:  # type: ignore[no-untyped-def]
    """Lines a person sends in one write, switching rooms, reach a reader of both rooms in order."""
    alice, bob = server.connect("alice"), server.connect("bob")
    for client in (alice, bob):
        client.send("/join #design")
        client.expect_prefix("OK join #design")
    bob.send("/join #lobby")
    bob.expect("OK current room #lobby")
    drain(alice, bob)
    alice.send_raw(b"first, in design\n/join #lobby\nsecond, in lobby\n/join #design\nthird, in design\n")
    got = [bob.next_line() for _ in range(3)]
    assert got == ["[#design] alice: first, in design", "alice: second, in lobby", "[#design] alice: third, in design"]


def test_one_senders_parts_of_two_rooms_arrive_in_order(server) -> None:  # type: ignore[no-untyped-def]
    """``/part #design`` then ``/part`` (lobby) in one write: a member of both rooms hears them in that order."""
    alice, bob = server.connect("alice"), server.connect("bob")
    for client in (alice, bob):
        client.send("/join #design")
        client.expect_prefix("OK join #design")
    bob.send("/join #lobby")
    bob.expect("OK current room #lobby")
    drain(alice, bob)
    alice.send_raw(b"/part #design bye\n/part #lobby\n")
    alice.expect("OK part #lobby; you are in no room: /join #room")
    got = [bob.next_line() for _ in range(2)]
    assert got == ["[#design] * alice left design (bye)", "* alice left lobby"]
