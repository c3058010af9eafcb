"""Each part of the client on its own, without sockets or threads (issue 18): the reply queue, the
handshake, rooms and catch-up, the transfers, typed input, quitting, reconnecting, ``/help`` and the
session that routes between them. Time is passed in where a part reads the clock.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from chatroom.client.catchup import PAGE, CatchUp
from chatroom.client.commands import BARRIER, BARRIER_REPLY, Help
from chatroom.client.files import Transfers
from chatroom.client.handshake import PASS_ASK, Handshake
from chatroom.client.inputs import Inbox, Quit
from chatroom.client.reconnect import Backoff, Reconnector
from chatroom.client.replies import Replies
from chatroom.client.session import Session
from chatroom.wire.lines import Frame, Line, TooLong


class Console:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.errors: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)

    def error(self, text: str) -> None:
        self.errors.append(text)


class Wire:
    """The Link: what a part queued for the server."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.bytes: list[bytes] = []

    def send(self, text: str) -> None:
        self.sent.append(text)

    def write(self, data: bytes) -> None:
        self.bytes.append(data)

    def queued(self) -> int:
        return sum(map(len, self.bytes))

    def take(self) -> list[str]:
        out, self.sent = self.sent, []
        return out


# ---- Replies --------------------------------------------------------------------------------------


def test_replies_go_to_the_oldest_own_line_and_stale_ones_are_swallowed() -> None:
    wire, got = Wire(), []
    replies = Replies(wire.send)
    replies.ask("/caps binary", "caps", lambda label, text: got.append((label, text)))
    replies.ask("/nick a", "nick", lambda label, text: got.append((label, text)))
    assert wire.sent == ["/caps binary", "/nick a"] and replies.head == "caps" and "nick" in replies
    assert replies.take("bob: hi") is None  # not a reply: not taken
    assert replies.take("OK caps binary") == "caps"
    replies.forget()  # the server wants /pass first: the /nick reply will be a refusal
    assert not replies and replies.take("ERROR send /pass PASSWORD first") == ""
    assert replies.take("OK") is None  # nothing of ours is outstanding: a typed line's reply
    assert got == [("caps", "OK caps binary")]


# ---- Handshake ------------------------------------------------------------------------------------


def handshake(**kw: Any) -> tuple[Handshake, Replies, Wire, Console, list[Any]]:
    wire, console, events = Wire(), Console(), []
    replies = Replies(wire.send)
    options: dict[str, Any] = dict(name="alice", interactive=False, password=None, server_password=None,
                                   binary=True, accept_files="ask", tags=True)
    options.update(kw)
    part = Handshake(replies, console, changed=lambda: events.append("changed"),
                     end=lambda status: events.append(("end", status)),
                     on_tags=lambda ok: events.append(("tags", ok)),
                     on_resume=lambda ok: events.append(("resume", ok)), **options)
    part.start()
    return part, replies, wire, console, events


def test_the_handshake_is_pipelined_and_its_replies_are_not_shown() -> None:
    part, replies, wire, console, events = handshake(password="s3cret-pw")
    assert wire.take() == ["/caps binary", "/caps resume", "/files ask", "/caps tags", "/nick alice",
                           "/login alice s3cret-pw"]
    assert not part.greeting("* Welcome to chatroom, room lobby.")
    for reply in ("OK caps binary", "ERROR unknown capability: resume (known: binary tags)",  # an older server
                  "OK files ask", "OK caps tags", "ERROR nick alice is registered"):
        replies.take(reply)
    assert not part.named and not part.settled  # the refused nick waits for the login, which takes a registered nick
    replies.take("OK logged in as alice")
    assert part.named and part.confirmed and part.settled and events == [("resume", False), ("tags", True)]
    assert console.lines == [] and console.errors == []  # line mode: no "* you are alice"
    part.learn("OK nick alice2")
    assert part.name == "alice2"


def test_a_refused_name_ends_line_mode_and_asks_again_on_a_terminal() -> None:
    part, replies, _wire, console, events = handshake(binary=False, tags=False)
    replies.take("ERROR nick alice is taken")
    assert events == [("end", 2)] and part.refused == "nick" and console.errors == ["ERROR nick alice is taken"]

    part, replies, wire, console, events = handshake(binary=False, tags=False, interactive=True)
    wire.take()
    replies.take("ERROR nick alice is taken")
    assert part.naming and part.wants_input and events == ["changed"]
    part.typed(" ")
    part.typed("alice2")
    assert wire.take() == ["/nick alice2"] and not part.naming
    replies.take("OK nick alice2")
    assert console.lines[-1] == "* you are alice2" and console.errors[-1] == "a name is needed"


def test_at_the_name_prompt_login_logs_in_and_other_commands_are_not_taken_for_a_name() -> None:
    """The server answers a registered nick with ``ERROR carol is registered; /login carol PASSWORD``; typed at
    the name prompt, that line used to go out as ``/nick /login carol PASSWORD`` and come back printed,
    password and all, as a refused name."""
    part, replies, wire, console, events = handshake(name="carol", binary=False, tags=False, interactive=True)
    wire.take()
    replies.take("ERROR carol is registered; /login carol PASSWORD")
    assert part.naming
    part.typed("/accept 2")
    assert wire.take() == [] and part.naming
    assert console.errors[-1] == "type a name first (or /login NICK PASSWORD, or /quit)"
    part.typed("/login carol")
    assert wire.take() == [] and part.naming and console.errors[-1] == "usage: /login NICK PASSWORD"
    part.typed("/login carol s3cret-pw")
    assert wire.take() == ["/login carol s3cret-pw"] and not part.naming
    replies.take("OK logged in as carol")
    assert part.named and console.lines[-1] == "* you are carol"
    assert not any("s3cret-pw" in line for line in console.lines + console.errors)
    part.start()  # a reconnect logs in again
    assert wire.take() == ["/nick carol", "/login carol s3cret-pw"]


@pytest.mark.parametrize("first, door", [("HTTP/1.1 408 Request Timeout", "HTTP (the web page's port: open it in a browser)"),
                                         (":vm 451 * /CAPS :You have not registered", "IRC"),
                                         ("ERROR :Closing Link: 127.0.0.1 (Registration timeout)", "IRC")])
def test_a_port_of_another_door_is_named_and_ends_the_client(first: str, door: str) -> None:
    """``chatroom-client --port`` given the web or the IRC port (the server prints three): it hung on the IRC
    port, and printed an HTTP response after 10 s on the web port; now one line says which port to use."""
    for interactive in (False, True):
        part, _replies, wire, console, events = handshake(binary=False, tags=False, interactive=interactive)
        wire.take()
        assert part.greeting(first)
        assert events == [("end", 2)] and part.refused == "port" and wire.take() == []
        assert console.errors == [f"chatroom-client: this port speaks {door}, not chatroom's line protocol: "
                                  f"give --port the port of the 'chatroom-server listening on' line"]
    part, _replies, _wire, _console, events = handshake(binary=False, tags=False)
    assert not part.greeting("* Welcome to chatroom, room lobby.") and events == []


def test_a_server_asking_for_its_password_gets_it_and_the_handshake_again() -> None:
    part, replies, wire, _console, _events = handshake(binary=False, tags=False, server_password="door")
    wire.take()
    assert part.greeting(f"{PASS_ASK}: /pass PASSWORD")
    assert wire.take() == ["/pass door", "/nick alice"]
    assert replies.take("ERROR send /pass PASSWORD first") == ""  # the first /nick's reply: stale
    replies.take("OK pass")
    replies.take("OK nick alice")
    assert part.named

    part, replies, wire, console, events = handshake(binary=False, tags=False, interactive=True)
    wire.take()
    part.greeting(f"{PASS_ASK}: /pass PASSWORD")
    assert part.asking_password and wire.take() == []
    part.typed("door")
    assert wire.take() == ["/pass door", "/nick alice"] and not part.asking_password


# ---- CatchUp --------------------------------------------------------------------------------------


def tag(msgid: int, room: str, nick: str, text: str, *, history: bool = False) -> str:
    return f"@msgid={msgid};room={room};kind=msg;nick={nick}" + (";history" if history else "") + " " + text


def test_rooms_are_learnt_from_tags_and_replies_and_a_rejoin_fetches_what_was_missed() -> None:
    wire, console, caught = Wire(), Console(), []
    replies = Replies(wire.send)
    rooms = CatchUp(replies, console, me=lambda: "alice", sync_ids=True, on_caught_up=lambda: caught.append(1))
    rooms.tags_answered(True)
    rooms.after_reply("nick", named=True)
    assert wire.take() == ["/history 1"]
    assert rooms.line(tag(4, "#lobby", "bob", "[00:01] bob: old", history=True))  # the sync's answer: not shown
    replies.take("OK history #lobby 1 line")
    rooms.typed("/join", "#den key1")
    rooms.reply("OK join #den (2 members)")
    assert rooms.line(tag(2, "#den", "bob", "bob: hi"))
    assert console.lines == ["bob: hi"] and rooms.last_ids == {"#lobby": 4, "#den": 2}
    assert rooms.current_room == "#den"

    rooms.begin_rejoin(lost_at=1.0)
    assert rooms.line("* Welcome to chatroom, room lobby. You are guest2.")  # muted until the handshake is through
    rooms.tags_answered(True)  # the new handshake's /caps tags
    rooms.after_reply("nick", named=True)
    assert wire.take() == ["/join #lobby", "/join #den key1", f"/history #lobby since 4 {PAGE}",
                           f"/history #den since 2 {PAGE}"]
    for text in ("OK join #lobby (1 member)", "OK join #den (2 members)"):
        rooms.after_reply(replies.take(text) or "", named=True)
    assert rooms.line(tag(3, "#den", "carol", "carol: live"))  # held until the catch-up is through
    assert rooms.line(tag(5, "#lobby", "carol", "[00:02] carol: missed", history=True))
    rooms.after_reply(replies.take("OK history #lobby 1 line") or "", named=True)
    rooms.after_reply(replies.take("OK history #den 0 lines") or "", named=True)
    assert caught == [1] and console.lines[1].endswith("; 1 missed line in #lobby")
    assert console.lines[2:] == ["[#lobby] [00:02] carol: missed", "carol: live"]


# ---- Transfers ------------------------------------------------------------------------------------


class Manager:
    """The TransferManager contract, recording."""

    made: list[Manager] = []

    def __init__(self, send_dir: Path, received_dir: Path, write: Any, queued: Any, emit: Any, *,
                 journal: Any = None) -> None:
        Manager.made.append(self)
        self.write, self.out_queued, self.emit, self.journal = write, queued, emit, journal
        self.frames: list[Frame] = []
        self.resumes, self.presented = False, 0
        self.busy = self.receiving = False
        self.closed: list[str] = []

    def server_resumes(self) -> None:
        self.resumes = True

    def present_all(self) -> None:
        self.presented += 1

    def running(self, token: str) -> bool:
        return False

    def handle_frame(self, frame: Frame) -> None:
        self.frames.append(frame)

    def handle_line(self, text: str) -> bool:
        return text.startswith("OK sendfile ")

    def cancel(self, what: str) -> bool:
        return False

    def progress(self) -> list[Any]:
        return ["p"] if self.busy else []

    def offered(self) -> list[str]:
        return []

    def queued(self) -> list[str]:
        return []

    def sent_before(self, name: str) -> bool:
        return False

    def close(self, reason: str = "cancelled") -> None:
        self.closed.append(reason)

    def pump(self) -> None:
        self.write(b"chunk")


def test_transfers_ask_for_consent_answer_offers_and_end_with_the_connection(tmp_path: Path) -> None:
    wire, console, changes = Wire(), Console(), []
    files = Transfers(wire, console, manager=Manager, watcher=None, send_dir=tmp_path / "s",
                      received_dir=tmp_path / "r", auto_send=False, accept_files="ask", wake=lambda: None,
                      changed=lambda: changes.append(1))
    assert files.available and (tmp_path / "r").is_dir()
    files.frame(Frame("file-offer 7 10 bob a.txt", b""))
    files.frame(Frame("file-offer 8 20 bob b.txt", b""))
    assert console.lines == ['bob offers "a.txt" (10 bytes): /accept 7 or /decline 7',
                             'bob offers "b.txt" (20 bytes): /accept 8 or /decline 8']
    assert files.command("/accept", "")
    assert console.errors == ["2 file offers are waiting for your answer (7, 8): /accept ID"]
    assert files.command("/decline", "8") and files.command("/accept", "")
    assert wire.take() == ["/decline 8", "/accept 7"]
    files.frame(Frame("file-begin 7 10 bob a.txt", b""))
    manager = Manager.made[-1]
    assert manager.frames == [Frame("file-begin 7 10 bob a.txt", b"")]
    assert files.line("OK sendfile 3 c.txt") and not files.command("/who", "")
    files.pump()
    assert wire.bytes == [b"chunk"]
    manager.busy = True
    files.refresh()
    assert files.progress == ["p"] and changes == [1]
    files.resume_answered(True)
    files.ready()
    files.ready()
    assert manager.resumes and manager.presented == 1 and manager.journal is files.journal  # once per connection
    files.lost()
    assert manager.closed == ["connection to server lost"] and files.progress == [] and not files.busy
    files.connected()
    assert Manager.made[-1] is not manager  # a new manager for the new connection
    files.ready()
    assert Manager.made[-1].presented == 0  # not before the new connection's server took /caps resume
    assert Manager.made[-1].journal is manager.journal  # the records outlive the connection


# ---- Inbox and Quit -------------------------------------------------------------------------------


class Handler:
    def __init__(self) -> None:
        self.hold = False
        self.lost = False
        self.done: list[Any] = []

    def holding(self) -> bool:
        return self.hold

    def recovering(self) -> bool:
        return self.lost

    def running(self) -> bool:
        return True

    def typed(self, text: str) -> None:
        self.done.append(text)

    def end_of_input(self) -> None:
        self.done.append("EOF")

    def interrupt(self, force: bool) -> None:
        self.done.append(("C", force))

    def give_up(self, unsent: int) -> None:
        self.done.append(("give up", unsent))


def test_typed_input_waits_while_held_and_ends_at_once_while_reconnecting() -> None:
    wakes: list[int] = []
    inbox, handler = Inbox(lambda: wakes.append(1)), Handler()
    handler.hold = True
    inbox.put("line", "early")
    inbox.drain(handler)
    assert handler.done == [] and wakes == [1]
    inbox.put("quit", False)
    inbox.drain(handler)
    assert handler.done == [("C", True)]  # only Ctrl-C acts while held
    handler.hold, handler.done = False, []
    inbox.drain(handler)
    assert handler.done == ["early", ("C", False)]
    handler.lost, handler.done = True, []
    for item in (("line", "one"), ("line", " "), ("line", "two"), ("eof", None)):
        inbox.put(*item)
    inbox.drain(handler)
    assert handler.done == [("give up", 2)]


class Files:
    def __init__(self) -> None:
        self.busy = self.receiving = True
        self.discarded: list[str] = []

    def discard_incoming(self, reason: str) -> None:
        self.discarded.append(reason)
        self.busy = self.receiving = False


def test_quitting_gives_files_arriving_quit_wait_seconds_then_sends_quit() -> None:
    """Issue 17 row 7 as a state machine: a trickle cannot hold the client past quit_wait."""
    errors, sent, files = [], [], Files()
    quit = Quit(quit_wait=30, quit_timeout=5, error=errors.append)
    quit.want(files, now=100.0)
    assert errors == ["waiting for file transfers to finish before quitting (files arriving get 30 s at most)"]
    assert quit.advance(files, False, sent.append, now=129.9) is None and sent == [] and files.discarded == []
    assert quit.advance(files, False, sent.append, now=130.0) is None
    assert files.discarded == ["still arriving 30 s after quitting"] and sent == ["/quit"]
    assert quit.wait(131.0) == 4.0
    quit.reply("OK")
    assert quit.state == "ok" and quit.advance(files, False, sent.append, now=135.0) == 0

    own = Files()
    own.receiving = False  # an own send: waited for however long it takes
    quit = Quit(quit_wait=0, error=errors.append)
    quit.want(own, now=0.0)
    assert quit.advance(own, False, sent.append, now=1e6) is None and own.discarded == []
    own.busy = False
    quit.advance(own, True, sent.append, now=1e6)  # a reply of the handshake is still due: not yet
    assert quit.state == "wanted"
    quit.advance(own, False, sent.append, now=1e6)
    assert quit.advance(own, False, sent.append, now=1e6 + 5) == 1
    assert errors[-1] == "no reply to /quit from the server; closing"


# ---- Reconnector ----------------------------------------------------------------------------------


class TrustRefused(Exception):
    pass


def test_the_reconnector_backs_off_retries_and_stops_on_a_refused_certificate() -> None:
    console, ends, outcomes = Console(), [], []
    woken = threading.Event()

    def connect() -> socket.socket:
        result = outcomes.pop(0)
        if isinstance(result, BaseException):
            raise result
        return result

    def attempt(recon: Reconnector) -> socket.socket | None:
        """Start the due attempt, wait for the dialer thread's wake-up, take its result."""
        woken.clear()
        before = len(console.errors), len(ends)
        got = recon.poll()  # the dialer may answer before this poll looks
        if got is None and (len(console.errors), len(ends)) == before:
            assert woken.wait(5.0), "the dialer never answered"
            got = recon.poll()
        return got

    recon = Reconnector(connect, console, wake=woken.set, end=ends.append, backoff=Backoff(first=0.0))
    assert recon.enabled
    recon.lost(now=50.0)
    assert recon.offline and recon.lost_at == 50.0 and recon.wait(50.0) == 0.0
    assert console.errors == ["connection to server lost; reconnecting in 0.0 s (/quit or Ctrl-D gives up)"]
    outcomes.append(ConnectionRefusedError(111, "Connection refused"))
    assert attempt(recon) is None
    assert console.errors[1] == "cannot reconnect yet (Connection refused); next try in 0.0 s"
    ours, theirs = socket.socketpair()
    outcomes.append(theirs)
    assert attempt(recon) is theirs and not recon.offline and recon.lost_at == 50.0
    recon.recovered()
    assert recon.lost_at == 0.0
    ours.close()
    theirs.close()

    recon.lost(now=60.0)
    outcomes.append(TrustRefused("REFUSED: the certificate of h:1 CHANGED"))
    assert attempt(recon) is None
    assert ends == [1] and console.errors[-1] == "chatroom-client: REFUSED: the certificate of h:1 CHANGED"
    assert not Reconnector(None, console, wake=woken.set, end=ends.append).enabled


# ---- Help -----------------------------------------------------------------------------------------


def test_help_shows_the_clients_commands_after_the_servers_list() -> None:
    wire, console = Wire(), Console()
    help_list = Help(console, wire.send, terminal=False)
    assert help_list.typed("")
    assert wire.take() == ["/help", BARRIER]
    assert not help_list.reply("/who [#ROOM], /names - List the names in your room (or in #ROOM)")
    # the server's lines for commands the client lists in its own words are not shown twice
    assert help_list.reply("/accept ID - Accept the file offered as ID")
    assert help_list.reply("/quit - Leave the room and close the connection")
    assert help_list.reply("/sendfile NAME SIZE - Offer a file of SIZE bytes to the room")
    assert not help_list.reply("/quitters - a plugin's command")
    assert help_list.reply(BARRIER_REPLY)
    assert console.lines[0] == "* chatroom-client's own commands:"
    assert [line.split()[0] for line in console.lines[1:]] == ["/sendfile", "/transfers", "/resume", "/cancel",
                                                               "/accept", "/decline", "/quit"]
    assert not help_list.reply(BARRIER_REPLY)  # only as many as were asked for
    assert not help_list.reply("/accept ID - Accept the file offered as ID")  # (no /help asked: shown as sent)
    assert help_list.typed("/transfers") and console.lines[-1].startswith("/transfers - ")
    assert not help_list.typed("join") and not help_list.typed("switch")  # /switch: the terminal UI's
    assert Help(console, wire.send, terminal=True).typed("switch")
    assert console.lines[-1].startswith("/switch #ROOM - ")


def test_help_sendfile_is_the_clients_own_usage_not_the_servers() -> None:
    """In chatroom-client ``/sendfile NAME`` is the command; the server's ``/sendfile NAME SIZE`` is what a
    program sends, so ``/help sendfile`` must not show that to a person."""
    wire, console = Wire(), Console()
    assert Help(console, wire.send, terminal=True).typed("sendfile")
    assert wire.take() == [] and console.lines == [
        "/sendfile NAME - Send NAME from the send folder to the room (quote a name with spaces)"]


# ---- Session --------------------------------------------------------------------------------------


class Recovery:
    enabled = False
    lost_at = 0.0

    def recovered(self) -> None:
        pass

    def stop(self) -> None:
        pass


def session(tmp_path: Path, **kw: Any) -> tuple[Session, Wire, Console]:
    wire, console, ends = Wire(), Console(), []
    replies = Replies(wire.send)
    files = Transfers(wire, console, manager=None, watcher=None, send_dir=tmp_path / "s", received_dir=tmp_path / "r",
                      auto_send=False, accept_files="all", wake=lambda: None, changed=lambda: None)
    rooms = CatchUp(replies, console, me=lambda: "alice", sync_ids=False, on_caught_up=lambda: None)
    shake = Handshake(replies, console, name="alice", interactive=False, password=None, server_password=None,
                      binary=False, accept_files="all", tags=False, changed=lambda: None, end=ends.append,
                      on_tags=rooms.tags_answered)
    part = Session(wire, console, replies=replies, handshake=shake, rooms=rooms, transfers=files,
                   quitting=Quit(error=console.error, **kw), recovery=Recovery(), help_list=Help(console, wire.send,
                                                                                              terminal=False))
    return part, wire, console


def test_the_session_routes_a_whole_conversation_without_a_socket(tmp_path: Path) -> None:
    part, wire, console = session(tmp_path)
    part.connected()
    assert wire.take() == ["/nick alice"]
    assert part.holding()
    part.typed("early")  # the Inbox holds typed lines; the session sends what it is handed
    part.event(Line("* Welcome to chatroom, room lobby. You are guest1."))
    part.event(Line("OK nick alice"))
    assert not part.holding()
    part.event(Frame("file-data 1", b"x"))  # no transfers installed: ignored
    part.event(TooLong("line", 99999))
    part.typed("/help")
    part.event(Line("/who - List the names"))
    part.event(Line(BARRIER_REPLY))
    part.event(Line("bob: hi"))
    part.typed("/QUIT please")
    part.typed("too late")
    part.advance_quit()
    assert wire.take() == ["early", "/help", BARRIER, "/quit"]
    part.event(Line("OK"))
    assert not part.closed([]) and part.status == 0
    assert console.lines[:2] == ["* Welcome to chatroom, room lobby. You are guest1.", "/who - List the names"]
    assert console.lines[2] == "* chatroom-client's own commands:" and console.lines[-2:] == ["bob: hi", "OK"]
    assert console.errors == ["discarded an over-long line from the server (99999 bytes)"]

    part, wire, console = session(tmp_path)
    part.connected()
    part.event(Line("OK nick alice"))
    assert not part.closed([Line("* server shutting down")]) and part.status == 1
    assert console.lines == ["* server shutting down"] and console.errors == ["connection to server lost"]
