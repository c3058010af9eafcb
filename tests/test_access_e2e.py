"""The room access rule over every read path, end to end (issue 17 row 1): the real ``chatroom-server`` over
TCP (raw line clients as ``nc``), its WebSocket door, and a third-party plugin reading with ``ctx.history``.

Paths tried for a keyed room, a ban (by account and, for guests, by address, also after the ban) and private
lines: ``/history`` (last, since, before), ``/who``, ``/rooms``, replay on join and on connecting, the web
page's ``hello`` and its ``/history`` requests, and a plugin's ``ctx.history`` / ``ctx.may_read``. The rule
itself is unit-tested in tests/test_access.py.
"""

from __future__ import annotations

import signal
import sqlite3
import textwrap
from pathlib import Path
from typing import Iterator

import pytest
from web_kit import WSClient, close_all, web_url

PW = "sesame-seeds"
KEYED = "#secret has a key: only its members can read it (/join #secret KEY)"

PEEK = '''
from chatroom import Command, CommandError, hookimpl


def peek(ctx, args):
    room = ctx.find_room(args[0])
    if room is None:
        raise CommandError("no such room")
    lines = ctx.history(room, last=50)
    for entry in lines:
        ctx.reply(f"peek {entry.nick}: {entry.text}")
    ctx.reply(f"OK peek {len(lines)}")


def readable(ctx, args):
    ctx.reply("OK readable " + " ".join(r.name for r in ctx.rooms() if ctx.may_read(r)))


@hookimpl
def register_commands():
    return [Command("peek", peek, min_args=1, max_args=1), Command("readable", readable, max_args=0)]
'''


@pytest.fixture(autouse=True)
def _close_websockets() -> Iterator[None]:
    yield
    close_all()


@pytest.fixture
def started(server_factory, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A server with the web door and the ``peek`` plugin: ``started(*args) -> (server, web host, web port)``.
    Flood control refills at 20 lines a second (not 2): these tests send every read path in bursts, and what
    they check is who may read, not the pace."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "peek.py").write_text(textwrap.dedent(PEEK))

    def start(*args: str):  # type: ignore[no-untyped-def]
        server = server_factory("--web-port", "0", "--plugin-dir", str(folder), "--flood-rate", "20", *args)
        _, host, port = web_url(server)
        return server, host, port

    return start


def registered(server, nick: str, source: str | None = None):  # type: ignore[no-untyped-def]
    client = server.silent_client(source=source) if source else server.raw_client()
    client.expect_prefix("* Welcome")
    client.send(f"/nick {nick}")
    client.expect(f"OK nick {nick}")
    client.send(f"/register {PW}")
    client.expect(f"OK registered {nick}; you are logged in")
    return client


def guest(server, nick: str, source: str):  # type: ignore[no-untyped-def]
    """A guest connecting from its own loopback address (address bans catch guests by address)."""
    client = server.silent_client(source=source)
    client.expect_prefix("* Welcome")
    client.send(f"/nick {nick}")
    client.expect(f"OK nick {nick}")
    return client


def refused_everywhere(client, room: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    """Every line-protocol read path of *room* answers ``ERROR reason`` and nothing before it."""
    for command in (f"/history {room}", f"/history {room} 500", f"/history {room} since 0",
                    f"/history {room} before 999999", f"/who {room}", f"/peek {room}"):
        client.send(command)
        assert client.expect(f"ERROR {reason}") == [], command


def test_a_keyed_room_is_read_only_by_its_members_on_every_path(started) -> None:  # type: ignore[no-untyped-def]
    server, host, port = started()
    alice = registered(server, "alice")
    for line in ("/join #secret", "/topic the plans", "/key door"):
        alice.send(line)
    alice.send("the secret line")
    alice.sync()
    bob = guest(server, "bob", "127.0.0.2")
    refused_everywhere(bob, "#secret", KEYED)
    bob.send("/rooms")  # listed, with its member count and key, without its topic
    assert bob.expect("OK 2 rooms") == ["* #lobby (2)", "* #secret (1) [key]"]
    bob.send("/readable")
    bob.expect("OK readable #lobby")
    bob.send("/join #secret")
    assert bob.expect("ERROR #secret needs a key: /join #secret KEY") == []  # nothing replayed before it
    page = WSClient(host, port)  # the web page: hello lists names only; its history requests are /history
    hello = page.expect("hello")
    assert sorted(hello["rooms"]) == ["#lobby", "#secret"]
    page.send("/history #secret since 0 50")
    assert page.expect_line("ERROR")["text"] == f"ERROR {KEYED}"
    page.send("/who #secret")
    assert page.expect_line("ERROR")["text"] == f"ERROR {KEYED}"
    page.sync()
    assert not [e for e in page.seen if "secret line" in str(e) or "the plans" in str(e)]
    bob.send("/join #secret door")  # a member reads
    got = bob.expect("OK join #secret (2 members)")
    got = [line for line in got if "joined lobby" not in line]  # the page came in meanwhile
    assert got[0] == "* topic of secret: the plans" and got[-1].endswith("alice: the secret line")
    bob.send("/peek #secret")
    assert bob.expect("OK peek 2")[-1] == "peek alice: the secret line"
    bob.send("/who #secret")
    bob.expect("* 2 in secret: alice, bob")
    bob.send("/rooms")
    assert bob.expect("OK 2 rooms") == ["* #lobby (3)", "* #secret (2) [key]: the plans"]  # the page is in #lobby
    bob.send("/part #secret")
    bob.expect_prefix("OK part #secret")
    refused_everywhere(bob, "#secret", KEYED)  # a member no more


def test_a_ban_keeps_an_account_and_a_guests_address_from_reading_also_what_is_said_after_it(
        started, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, host, port = started()
    alice = registered(server, "alice")
    bob = registered(server, "bob", source="127.0.0.3")
    carol = guest(server, "carol", "127.0.0.4")
    for client in (alice, bob, carol):
        client.send("/join #den")
        client.expect_prefix("OK join #den")
    alice.send("/topic den business")
    alice.send("before the bans")
    alice.sync()
    alice.send("/ban bob")
    alice.expect("OK ban bob")
    bob.expect("* bob is banned from den")
    alice.send("/ban carol")
    alice.expect("OK ban carol")
    carol.expect("* carol is banned from den")
    alice.send("after the bans")
    alice.sync()
    refused_everywhere(bob, "#den", "you are banned from #den")
    refused_everywhere(carol, "#den", "you are banned from #den")
    for client in (bob, carol):
        client.send("/rooms")  # listed, but not its topic
        assert client.expect("OK 2 rooms") == ["* #den (1)", "* #lobby (3)"]
        client.send("/join #den")
        client.expect("ERROR you are banned from #den")
    again = server.silent_client(source="127.0.0.5")  # bob from another address: banned by account
    again.expect_prefix("* Welcome")
    again.send(f"/login bob {PW}")
    again.expect("OK logged in as bob")
    refused_everywhere(again, "#den", "you are banned from #den")
    dave = guest(server, "dave", "127.0.0.6")  # another guest: the room has no key, dave reads it
    dave.send("/history #den")
    got = dave.expect("OK history #den 3 lines")
    assert got[-1].endswith("alice: after the bans")
    carol_page = WSClient(host, port)  # carol's browser (127.0.0.1: not her banned address)... and bob's:
    carol_page.expect("hello")
    carol_page.send(f"/login bob {PW}")
    carol_page.expect_line("OK logged in as bob")
    carol_page.send("/history #den since 0")
    assert carol_page.expect_line("ERROR")["text"] == "ERROR you are banned from #den"
    server.stop(signal.SIGTERM)
    db = sqlite3.connect(tmp_path / "data0" / "rooms.sqlite3")  # bans persist with the room (alice owns it)
    assert '"value":"bob"' in db.execute("SELECT rules FROM rooms WHERE name = '#den'").fetchone()[0]
    db.close()


def test_a_guest_banned_from_the_default_room_reads_nothing_of_it(started, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "admins.toml"
    config.write_text('admins = ["root"]\n')
    server, _, _ = started("--config", str(config))
    root = registered(server, "root")
    eve = guest(server, "eve", "127.0.0.7")
    root.send("said in the lobby")
    root.send("/ban eve")
    root.expect("OK ban eve")
    eve.expect("* eve is banned from lobby")
    root.send("said after the ban")
    root.sync()
    refused_everywhere(eve, "#lobby", "you are banned from #lobby")
    eve.send("/who")  # in no room: /who is about the default room
    eve.expect("ERROR you are banned from #lobby")
    back = server.silent_client(source="127.0.0.7")  # a new connection from the banned address
    assert back.next_line().startswith("* Welcome")
    assert back.next_line() == "* you are banned from #lobby: /join another room"
    assert back.sync() == []  # no replay on connecting
    root.send("/unban eve")
    root.expect("OK unban eve")
    root.send("/key door")  # connecting enters the default room under its rules (Hub.enter), a key too
    root.expect_prefix("OK key")
    keyed = server.silent_client(source="127.0.0.8")
    assert keyed.next_line().startswith("* Welcome")
    assert keyed.next_line() == "* #lobby needs a key: /join #lobby KEY"
    assert keyed.sync() == []
    keyed.send("/join #lobby door")
    keyed.expect_prefix("OK join #lobby")
    again = server.silent_client(source="127.0.0.7")  # unbanned, with no key: refused for the key alone
    again.expect_prefix("* Welcome")
    assert again.next_line() == "* #lobby needs a key: /join #lobby KEY"


def test_private_lines_are_never_stored_replayed_or_listed(started, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, host, port = started()
    alice, bob = registered(server, "alice"), registered(server, "bob")
    carol = guest(server, "carol", "127.0.0.8")
    alice.send("/msg bob psst-not-for-the-room")
    bob.expect("alice (private): psst-not-for-the-room")
    alice.send("a public line")
    carol.expect("alice: a public line")
    page = WSClient(host, port)
    page.expect("hello")
    page.send("/history since 0")
    page.expect_line("OK history #lobby")
    for client in (alice, bob, carol):
        for command in ("/history 500", "/history since 0", "/peek #lobby"):
            client.send(command)
            got = client.expect_where(lambda line: line.startswith("OK "), "OK")
            assert not [line for line in got if "psst" in line], command
    dave = server.raw_client()  # the replay on connecting
    dave.expect_prefix("* Welcome")
    assert not [line for line in dave.sync() if "psst" in line]
    assert not [e for e in page.seen if "psst" in str(e)]
    server.stop(signal.SIGTERM)
    stored = b"".join(p.read_bytes() for p in (tmp_path / "data0").glob("rooms.sqlite3*"))
    assert b"a public line" in stored and b"psst" not in stored
