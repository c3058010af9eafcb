"""Units of the terminal UI's display side: tag parsing, line formatting, room state, completion, paste."""

from __future__ import annotations

import argparse
import calendar

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from chatroom.client.complete import ChatCompleter
from chatroom.client.display import (
    DISPLAY_DEFAULTS,
    Look,
    add_display_options,
    color_depth,
    format_event,
    format_own,
    nick_sgr,
)
from chatroom.client.events import parse, parse_tags, parse_time
from chatroom.client.keys import keep_in_history, split_paste
from chatroom.client.resize import extra_rows, terminal_rewraps
from chatroom.client.rooms import Rooms
from chatroom.wire.render import iso_time, render, tags

PLAIN = Look(depth=0, timestamps="")


def tagged(kind: str, room: str, nick: str, text: str, *, current: bool = True, history: bool = False,
           msgid: int | None = 1, ts: float = 1_700_000_000.0) -> str:
    line = render(kind, room, nick, text)
    if history:
        line = "[12:00] " + line
    if not current:
        line = f"[{room}] {line}"
    return tags(msgid=msgid, room=room, time=iso_time(ts), kind=kind, nick=nick or None, history=history) + line


# ---- events -----------------------------------------------------------------------------


def test_tags_round_trip_with_the_servers_escaping() -> None:
    raw = tags(msgid=42, room="#lobby", nick="a;b c\\d", history=True)[1:-1]
    assert parse_tags(raw) == {"msgid": "42", "room": "#lobby", "nick": "a;b c\\d", "history": True}
    assert parse_tags(";=x;k=;j=v\\") == {"k": True, "j": "v"}  # empty keys skipped, a lone \ dropped


def test_parse_gives_room_nick_kind_id_time_and_the_bare_body() -> None:
    ts = calendar.timegm((2026, 12, 1, 23, 14, 5, 0, 0, 0)) + 0.123
    ev = parse(tagged("msg", "#design", "bob", "hi", current=False, history=True, msgid=7, ts=ts))
    assert (ev.room, ev.nick, ev.kind, ev.msgid, ev.history) == ("#design", "bob", "msg", 7, True)
    assert ev.time == pytest.approx(ts, abs=0.001)
    assert ev.text == "[#design] [12:00] bob: hi" and ev.body == "bob: hi"
    plain = parse("OK join #design (2 members)")
    assert plain.tags == {} and plain.body == plain.text and plain.room is None and plain.msgid is None
    assert parse("@no-space-here").text == "@no-space-here"
    assert parse_time("yesterday") is None


# ---- display ----------------------------------------------------------------------------


def test_colour_depth_follows_no_color_term_and_the_option() -> None:
    assert color_depth("auto", {"TERM": "xterm-256color"}) == 256
    assert color_depth("auto", {"TERM": "xterm"}) == 16
    assert color_depth("auto", {"TERM": "xterm", "COLORTERM": "truecolor"}) == 256
    assert color_depth("auto", {"TERM": "xterm-256color", "NO_COLOR": "1"}) == 0
    assert color_depth("auto", {"TERM": "dumb"}) == 0
    assert color_depth("never", {"TERM": "xterm-256color"}) == 0
    assert color_depth("always", {"TERM": "dumb", "NO_COLOR": "1"}) == 16


def test_a_nick_keeps_its_colour_everywhere() -> None:
    assert nick_sgr("Bob", 256) == nick_sgr("bob", 256) == "38;5;33"  # CRC-32, not Python's salted hash
    assert nick_sgr("bob", 0) == ""
    assert len({nick_sgr(f"user{i}", 256) for i in range(100)}) > 8


def test_plain_lines_are_the_servers_text_with_room_markers_of_the_ui() -> None:
    ev = parse(tagged("msg", "#design", "bob", "hi", current=False))
    assert format_event(ev, me="alice", current="#lobby", look=PLAIN).text == "[#design] bob: hi"
    assert format_event(ev, me="alice", current="#design", look=PLAIN).text == "bob: hi"
    me_line = parse(tagged("me", "#lobby", "bob", "waves"))
    assert format_event(me_line, me="alice", current="#lobby", look=PLAIN).text == "* bob waves"
    stamped = format_event(ev, me="alice", current="#design", look=Look(0, "%H:%M"), now=0)
    assert stamped.text.endswith(" bob: hi") and stamped.text[2] == ":"


def test_mentions_private_lines_and_history_are_told_apart() -> None:
    look = Look(depth=256, timestamps="")
    mention = format_event(parse(tagged("msg", "#lobby", "bob", "hey ALICE!")), me="alice", current="#lobby", look=look)
    assert mention.mention and "\x1b[7mALICE\x1b[27m" in mention.text
    assert not format_event(parse(tagged("msg", "#lobby", "bob", "malice aforethought")), me="alice",
                            current="#lobby", look=look).mention
    old = format_event(parse(tagged("msg", "#lobby", "bob", "alice?", history=True)), me="alice",
                       current="#lobby", look=Look(256, "%H:%M"))
    assert not old.mention and old.text.startswith("\x1b[38;5;244m[") and "\x1b[7m" not in old.text
    for untagged in ("[12:01] bob: before the tags", "[#design] [2026-12-01 12:01] bob: missed"):
        shown = format_event(parse(untagged), me="alice", current="#lobby", look=Look(256, "%H:%M")).text
        assert shown == f"\x1b[38;5;244m{untagged}\x1b[0m"  # grey, the server's own time
    private = format_event(parse("bob (private): psst"), me="alice", current="#lobby", look=PLAIN)
    assert private.private and private.text == "bob (private): psst"
    assert format_own("hello", me="alice", current="#lobby", look=PLAIN) == "alice: hello"
    assert format_own("/join #x", me="alice", current="#lobby", look=PLAIN) == "> /join #x"
    assert format_own("//slash", me="alice", current="#lobby", look=PLAIN) == "alice: /slash"


def test_display_options_and_their_defaults() -> None:
    p = argparse.ArgumentParser()
    add_display_options(p)
    args = p.parse_args([])
    assert {k: getattr(args, k) for k in DISPLAY_DEFAULTS} == DISPLAY_DEFAULTS
    args = p.parse_args(["--no-timestamps", "--no-bell", "--no-title", "--paste-confirm", "0", "--color", "never"])
    assert (args.timestamps, args.bell, args.title, args.paste_confirm, args.color) == ("", False, False, 0, "never")
    with pytest.raises(SystemExit):
        p.parse_args(["--paste-confirm", "-1"])


# ---- rooms and completion -------------------------------------------------------------------


def test_rooms_follow_the_servers_replies_and_count_unread_lines() -> None:
    rooms = Rooms()
    rooms.seen(parse("* Welcome to chatroom, room lobby. You are guest1. Type /nick NAME ..."))
    rooms.seen(parse("OK join #design (2 members)"))
    assert rooms.current == "#design" and [t.name for t in rooms.tabs()] == ["#lobby", "#design"]
    rooms.seen(parse(tagged("msg", "#lobby", "bob", "hi alice", current=False)), me="alice", mention=True)
    rooms.seen(parse(tagged("msg", "#lobby", "carol", "hi", current=False, history=True)))
    rooms.seen(parse(tagged("notice", "#lobby", "", "dave joined lobby", current=False, msgid=None)))
    (lobby, design) = rooms.tabs()
    assert (lobby.unread, lobby.mentions, design.current) == (1, 1, True)
    assert rooms.nicks()[:3] == ["dave", "carol", "bob"]
    assert rooms.neighbour(1) == "#lobby" and rooms.neighbour(-1) == "#lobby" and rooms.nth(3) is None
    rooms.seen(parse("OK current room #lobby"))
    assert rooms.tabs()[0].unread == 0 and rooms.current == "#lobby"
    rooms.seen(parse("OK part #lobby; current room #design"))
    assert rooms.current == "#design" and [t.name for t in rooms.tabs()] == ["#design"]
    rooms.seen(parse("OK part #design; you are in no room: /join #room"))
    assert rooms.current is None and rooms.tabs() == []


def _complete(completer: ChatCompleter, text: str) -> list[str]:
    return [c.text for c in completer.get_completions(Document(text), CompleteEvent(completion_requested=True))]


def test_completion_of_commands_rooms_and_nicks() -> None:
    rooms = Rooms()
    rooms.seen(parse("OK join #design (1 member)"))
    rooms.seen(parse("* 2 in lobby: bob, Bea"))
    completer = ChatCompleter(rooms)
    assert _complete(completer, "/jo") == ["/join "]
    assert "/rooms " in _complete(completer, "/ro")
    assert _complete(completer, "/join #d") == ["#design "]
    assert sorted(_complete(completer, "b")) == ["Bea: ", "bob: "]
    assert _complete(completer, "hi be") == ["Bea "]
    completer.learn_help("/dice [N], /roll - Roll dice")
    assert _complete(completer, "/di") == ["/dice "] and _complete(completer, "/rol") == ["/roll "]


# ---- typing ------------------------------------------------------------------------------------


def test_pasted_lines_and_what_the_history_file_may_keep() -> None:
    assert split_paste("a\r\nb\rc\n") == ["a", "b", "c"]
    assert split_paste("one line") == ["one line"]
    assert split_paste("a\n\nb") == ["a", "", "b"]
    assert keep_in_history("hello") and keep_in_history("/join #x")
    for secret in ("/login alice pw", "/IDENTIFY alice pw", "/register pw", "/password a b", "/pass pw",
                   "/key k", "/join #x key", "   "):
        assert not keep_in_history(secret)


def test_rows_a_rewrapping_terminal_adds_above_the_cursor() -> None:
    assert extra_rows([], 71, 50) == 1  # an 80-column prompt row, cursor at 71, now 50 columns wide
    assert extra_rows([70, 10], 3, 40) == 1
    assert extra_rows([40], 39, 40) == 0
    assert terminal_rewraps({"TERM": "xterm-256color"}) and terminal_rewraps({"TMUX": "x", "XTERM_VERSION": "1"})
    assert not terminal_rewraps({"XTERM_VERSION": "XTerm(390)"}) and not terminal_rewraps({"TERM": "linux"})


# ---- issue 17 row 15: own /me, masked secrets, wrapped rows, transfer rates ---------------------------


def test_own_me_lines_secrets_and_rates_read_as_a_person_expects() -> None:
    from chatroom.client.display import own_line
    from chatroom.client.keys import mask_secrets, secret_spans
    from chatroom.client.offers import human_rate, took

    assert format_own("/me waves", me="alice", current="#lobby", look=PLAIN) == "* alice waves"
    assert own_line("/ME waves", me="alice", current=None, look=PLAIN).indent == len("* alice ")
    assert format_own("/me", me="alice", current="#lobby", look=PLAIN) == "> /me"  # nothing to say: the command
    assert format_own("//me too", me="alice", current="#lobby", look=PLAIN) == "alice: /me too"
    assert mask_secrets("/login alice pw") == "/login alice ********"
    assert mask_secrets("/password old new") == "/password ******** ********"
    assert mask_secrets("/join #den door") == "/join #den ********" and mask_secrets("/join #den") == "/join #den"
    assert mask_secrets("/REGISTER  s3cr3t ") == "/REGISTER  ******** "
    assert mask_secrets("the /register command") == "the /register command"
    assert secret_spans("/pass a b") == [(6, 7), (8, 9)]
    assert [took(5, 0.003), took(5, 0.0), took(40, 2.04), took(6 << 20, 0.091)] == ["in 3 ms", "in 1 ms", "in 2.0 s",
                                                                                 "69.1 MB/s"]
    assert [human_rate(12_500, 1.0), human_rate(446_100_000, 1.0), human_rate(8 << 20, 0.0)] == [
        "12.5 kB/s", "446.1 MB/s", "8388608.0 MB/s"]


def test_long_lines_wrap_between_words_with_every_later_row_indented() -> None:
    from chatroom.client.display import hang, width

    assert hang("short", 80, 6) == "short"
    assert hang("12:00 bob: the quick brown fox jumps over", 24, 11) == (
        "12:00 bob: the quick\n           brown fox\n           jumps over")
    assert hang("bob: " + "x" * 30, 20, 5) == "bob: " + "x" * 15 + "\n     " + "x" * 15
    padded = hang("mallory: hi" + " " * 149 + "bob: not bob", 80, 9)
    assert padded == "mallory: hi\n         bob: not bob"  # the padding went with the break
    assert hang("abc\tdefg", 10, 2) == "abc\n  defg" and hang("x" * 10, 9, 2) == "x" * 10  # tabs count; too narrow: as it is
    wide = hang("表" * 10, 12, 2)
    assert [width(row) for row in wide.split("\n")] == [12, 10]
    coloured = hang("\x1b[1mbold words that wrap\x1b[0m end", 12, 2)
    assert coloured == "\x1b[1mbold words\x1b[0m\n  \x1b[1mthat wrap\x1b[0m\n  end"
