"""What a person sees in ``chatroom-client``'s terminal UI: paste, completion, colours, notifications, rooms.

Each test starts the real ``chatroom-server`` (port 0) and the real
``chatroom-client`` on a pseudo-terminal (:class:`tests.screen.Term`: pexpect
plus the pyte terminal emulator), plays the other people with plain TCP line
clients, and checks the rendered screen. Every wait is bounded and
synchronised on what the screen or a peer shows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from screen import Term

ALT_LEFT = "\x1b[1;3D"
ALT_RIGHT = "\x1b[1;3C"
UP = "\x1b[A"


@pytest.fixture
def server(server_factory):  # type: ignore[no-untyped-def]
    """The screen tests type and receive lines faster than people do: no flood budget (issue 17: 20 at once)."""
    return server_factory("--flood-rate", "0")


@pytest.fixture
def term(server, tmp_path: Path) -> Iterator[Callable[..., Term]]:  # type: ignore[no-untyped-def]
    started: list[Term] = []

    def start(name: str = "alice", *extra: str, cols: int = 80, rows: int = 24, env: dict[str, str] | None = None,
              home: Path | None = None, prompt: str = r"^#lobby>") -> Term:
        t = Term(["--name", name, "--port", str(server.port), *extra], home or tmp_path / name, cols=cols,
                 rows=rows, env=env)
        started.append(t)
        t.wait_for(prompt, "the prompt")
        return t

    yield start
    for t in started:
        t.close()


def joined(nick: str) -> Callable[[str], bool]:
    return lambda line: line.endswith(f"* {nick} joined lobby") or line.endswith(f"is now known as {nick}")


# ---- paste ---------------------------------------------------------------------------


def test_a_pasted_block_is_sent_line_by_line_and_a_post_block_arrives_whole(server, term) -> None:
    bob = server.connect("bob")
    alice = term()
    bob.expect_where(joined("alice"), "alice's nick")
    alice.paste("pasted line one\npasted line two\npasted line three\n")
    assert bob.expect("alice: pasted line three") == ["alice: pasted line one", "alice: pasted line two"]
    alice.wait_for(r"alice: pasted line one\n.*alice: pasted line two\n.*alice: pasted line three$", "the echo")

    alice.paste("/post\nnotes for today\nbring coffee\n#")
    alice.wait_for(r"> #\n.*OK$", "the post's OK")
    assert "> notes for today" in alice.text()  # a post's lines are not shown as chat
    bob.send("/read")
    assert bob.expect("#")[-2:] == ["notes for today", "bring coffee"]


def test_a_long_paste_asks_first_and_n_drops_it_y_sends_it(server, term) -> None:
    bob = server.connect("bob")
    alice = term()
    bob.expect_where(joined("alice"), "alice's nick")
    block = "".join(f"line {i}\n" for i in range(1, 9))
    alice.type("typed ")
    alice.paste(block)
    alice.wait_for(r"^paste 8 lines into #lobby\? \(y/n\)", "the question")
    alice.type("x")  # any other key is ignored while asking
    alice.type("n")
    alice.wait_for(r"paste of 8 lines dropped", "the drop")
    alice.type("after the drop\r")
    assert bob.expect("alice: after the drop") == []  # nothing of the paste went out

    alice.paste(block)
    alice.wait_for(r"^paste 8 lines into #lobby\? \(y/n\)", "the question again")
    alice.type("y")
    assert bob.expect("alice: line 8") == [f"alice: line {i}" for i in range(1, 8)]
    alice.wait_for(r"^#lobby>", "the normal prompt back")


# ---- typing comfort ----------------------------------------------------------------------


def test_tab_completes_commands_nicks_and_rooms(server, term) -> None:
    bob = server.connect("bob")
    alice = term()
    bob.expect_where(joined("alice"), "alice's nick")
    bob.send("hi there")
    alice.wait_for(r"bob: hi there", "bob's line")
    alice.type("/jo\t")
    alice.wait_for(r"^#lobby> /join$", "the completed command")
    alice.type("#lo\t")
    alice.wait_for(r"^#lobby> /join #lobby$", "the completed room")
    alice.type("\x15bo\t")  # Ctrl-U clears the line
    alice.wait_for(r"^#lobby> bob:$", "the completed nick, addressed")
    alice.type("see you\r")
    bob.expect("alice: bob: see you")


def test_input_history_is_kept_across_sessions_without_passwords(server, term, tmp_path: Path) -> None:
    home = tmp_path / "alice"
    alice = term(home=home)
    alice.type("remember this line\r")
    alice.type("/login alice secretpassword\r")
    alice.wait_for(r"ERROR no account alice", "the refused login")
    alice.type("\x04")  # Ctrl-D quits
    assert alice.exit_status() == 0
    saved = (home / "data" / "chatroom" / "history").read_text()
    assert "remember this line" in saved and "secretpassword" not in saved

    again = term(home=home)
    again.type(UP)
    again.wait_for(r"^#lobby> remember this line$", "the line from the last session")


# ---- reading comfort ----------------------------------------------------------------


def _cells_plain(t: Term) -> bool:
    return all(c.fg == "default" and c.bg == "default" for row in t.screen.buffer.values() for c in row.values())


def test_nicks_have_stable_colours_and_no_colour_with_no_color(server, term, tmp_path: Path) -> None:
    bob = server.connect("bob")
    alice = term()
    bob.send("colourful")
    alice.wait_for(r"^\d\d:\d\d bob: colourful$", "bob's line with a timestamp")
    colour = {c.fg for c in alice.chars("bob: colourful")[:3]}
    assert len(colour) == 1 and colour != {"default"}
    alice.type("mine\r")
    alice.wait_for(r"alice: mine$", "the echo")
    assert all(c.bold for c in alice.chars("alice: mine"))  # your own lines stand out

    plain = term("carol", env={"NO_COLOR": "1"}, home=tmp_path / "carol")
    bob.send("no colours please")
    plain.wait_for(r"bob: no colours please$", "the line")
    assert _cells_plain(plain), [(y, x, c) for y, r in plain.screen.buffer.items() for x, c in r.items() if c.fg != "default" or c.bg != "default"][:5]
    assert not re.search(rb"\x1b\[[0-9;]*(3[0-9]|9[0-7]|38;5;)", plain.raw)

    dumb = term("dave", env={"TERM": "dumb"}, home=tmp_path / "dave", prompt=r"Welcome")
    bob.send("dumb terminal")
    dumb.wait_for(r"bob: dumb terminal$", "the line")
    assert _cells_plain(dumb), (dumb.raw[-800:], [(y, x, c) for y, r in dumb.screen.buffer.items() for x, c in r.items() if c.fg != "default" or c.bg != "default"][:5])


def test_history_lines_differ_from_live_ones_and_timestamps_follow_the_format(server, term) -> None:
    bob = server.connect("bob")
    bob.send("said before alice came")
    bob.sync()
    alice = term("alice", "--timestamps", "%H:%M:%S")
    # History replayed on connecting comes before the client's /caps tags: the server's own [HH:MM].
    alice.wait_for(r"^\[\d\d:\d\d\] bob: said before alice came$", "the history line, bracketed")
    assert {c.fg for c in alice.chars("bob: said before")} == {"808080"}  # grey
    alice.type("/history\r")
    alice.wait_for(r"^\[\d\d:\d\d:\d\d\] bob: said before alice came$", "the history of a join, tagged")
    bob.send("live now")
    alice.wait_for(r"^\d\d:\d\d:\d\d bob: live now$", "the live line")
    none = term("carol", "--no-timestamps")
    bob.send("no time")
    none.wait_for(r"^bob: no time$", "a line without a timestamp")


def test_a_mention_or_private_message_rings_the_bell_and_sets_the_title(server, term) -> None:
    bob = server.connect("bob")
    alice = term()
    bob.expect_where(joined("alice"), "alice's nick")
    mark = len(alice.raw)
    bob.send("nothing for you")
    alice.wait_for(r"bob: nothing for you$", "a plain line")
    assert b"\a" not in alice.raw[mark:]
    bob.send("hey Alice, look")
    alice.wait_for(r"bob: hey Alice, look$", "the mention")
    alice.wait(lambda: "mentioned by bob in #lobby" in alice.screen.title, "the title")
    assert b"\a" in alice.raw[mark:]
    assert [c.reverse for c in alice.chars("Alice, look")][:5] == [True] * 5  # the mention stands out
    bob.send("/msg alice psst")
    alice.wait(lambda: "2 new - private message from bob" in alice.screen.title, "the title for the private line")
    alice.type("seen\r")
    alice.wait(lambda: alice.screen.title == "chatroom", "the title back after alice spoke")

    quiet = term("carol", "--no-bell", "--no-title")
    mark = len(quiet.raw)
    bob.send("carol: ping")
    quiet.wait_for(r"bob: carol: ping$", "the mention")
    assert b"\a" not in quiet.raw[mark:] and b"\x1b]2;" not in quiet.raw[mark:]


# ---- rooms ----------------------------------------------------------------------------


def test_rooms_show_in_prompt_and_toolbar_and_keys_switch(server, term) -> None:
    bob = server.connect("bob")
    alice = term()
    bob.expect_where(joined("alice"), "alice's nick")
    alice.type("/join #design\r")
    alice.wait_for(r"^#design>", "the prompt in #design")
    alice.wait_for(r"^#lobby #design$", "both rooms in the toolbar")
    bob.send("over in the lobby")
    bob.send("alice: are you there?")
    alice.wait_for(r"^\d\d:\d\d \[#lobby\] bob: over in the lobby$", "a line marked with its room")
    alice.wait_for(r"^#lobby \(2, @1\) #design$", "unread counts and the mention in the toolbar")
    alice.type(ALT_LEFT)
    alice.wait_for(r"^#lobby>", "back in #lobby")
    alice.wait_for(r"^#lobby #design$", "the count cleared")
    alice.type("here\r")
    bob.expect("alice: here")
    alice.type("\x0e")  # Ctrl-N: the next room
    alice.wait_for(r"^#design>", "in #design by Ctrl-N")
    alice.type("/switch #lobby\r")
    alice.wait_for(r"^#lobby>", "in #lobby by /switch")
    alice.type(ALT_RIGHT)
    alice.wait_for(r"^#design>", "in #design by Alt-Right")


# ---- narrow terminals, resizing, fast typing ------------------------------------------------


def test_a_50_column_terminal_and_a_resize_leave_one_prompt(server, term) -> None:
    bob = server.connect("bob")
    alice = term(cols=50)
    alice.type("/join #a-room-with-a-long-name\r")
    alice.wait_for(r"^#lobby #a-room-with-a-long-name$", "the toolbar within 50 columns")
    bob.send("x" * 120)
    # wrapped by the client, the rows after the first indented under the text (issue 17 row 15)
    alice.wait_for(r"^\d\d:\d\d \[#lobby\] bob: x{30}\n( {20}x{30}\n){2} {20}x{30}$", "a long line, wrapped")
    alice.type("half")
    alice.wait_for(r"^#a-room-with-a-long-name> half$", "the half-typed line")
    alice.resize(40, 24)  # narrower only: pyte drops rows at the top on a lower height, but not the cursor
    alice.type(" typed")
    alice.wait_for(r"^#a-room-with-a-long-name> half typed$", "the prompt after the resize")
    prompts = [line for line in alice.lines() if line.startswith("#a-room-with-a-long-name>")]
    assert prompts == ["#a-room-with-a-long-name> half typed"], alice.text()


def test_fast_typing_during_incoming_chat_leaves_no_stray_copy(server, term) -> None:
    bob = server.connect("bob")
    alice = term()
    bob.expect_where(joined("alice"), "alice's nick")
    # Keys that arrive while incoming lines are printed were echoed by the terminal itself when the
    # client switched it to cooked mode to print (patch_stdout): stray letters inside the chat.
    pad = "-" * 1000
    for i in range(80):  # ~80 KiB, more than a pty holds: the client is still writing when the keys come
        bob.send(f"bulk {i} {pad}")
    alice.wait_for(r"bob: bulk 0 -", "the first bulk line")
    alice.type("QQQ")
    alice.wait_for(r"bob: bulk 79 -+$", "the last bulk line")
    alice.wait(lambda: alice.cursor_row().endswith("QQQ"), "QQQ in the prompt")
    alice.type("\x15")  # Ctrl-U
    bulk = [line for line in alice.lines() if "bulk" in line or "Q" in line]
    assert [line for line in bulk if "Q" in line] == ["#lobby> QQQ"], "\n".join(bulk[-20:])
    for i in range(40):
        bob.send(f"more {i}")
        alice.type(f"typed {i}\r")
    bob.expect("alice: typed 39")
    alice.wait_for(r"bob: more 39$", "the last incoming line")
    alice.wait_for(r"alice: typed 39$", "the last typed line, echoed")
    alice.wait_for(r"^#lobby>$", "an empty prompt")
    lines = alice.lines()
    chat = [line for line in lines if " bob: " in line and "bulk" not in line]
    assert chat == [f"{line[:5]} bob: more {i}" for i, line in enumerate(chat)], "\n".join(lines)
    assert len(chat) == 40
    for i in range(40):
        assert sum(1 for line in lines if line.endswith(f"alice: typed {i}")) == 1, "\n".join(lines)
    assert sum(1 for line in lines if line.startswith("#lobby>")) == 1, "\n".join(lines)
