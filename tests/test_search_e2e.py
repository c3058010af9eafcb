"""``/search`` end to end: the real ``chatroom-server`` over TCP, clients speaking the line protocol as ``nc``
does. Keys and bans (rooms the asker may not read are never in the hits, on any page), paging with
``/search --more``, diacritics, message tags, retention applied at a restart, ``/history #room around ID``
to jump to a hit, and a third-party plugin's ``ctx.search`` under the same rule.

The model and the query language without sockets: tests/test_search.py, tests/test_search_query.py.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from test_access_e2e import KEYED, guest, registered

#: Flood control off: the tests say their set-up lines in bursts (the default is 2 lines a second after 20).
FAST = ("--flood-rate", "0")
HIT = re.compile(r"\[(#[a-z0-9_-]+) (\d+) \d{4}-\d\d-\d\d \d\d:\d\d\] (.*)")

FINDER = '''
from chatroom import Command, hookimpl


def find(ctx, args):
    page = ctx.search(ctx.text, limit=50)
    for entry in page.hits:
        ctx.reply(f"found {entry.room} {entry.id} {entry.nick}: {entry.text}")
    ctx.reply(f"OK find {len(page.hits)}")


@hookimpl
def register_commands():
    return [Command("find", find, raw=True, min_args=1)]
'''


def hits(client, summary: str) -> list[tuple[str, int, str]]:  # type: ignore[no-untyped-def]
    """The hits before the reply *summary*, as ``(room, id, line)``; every line before it must be a hit."""
    got = client.expect(summary)
    parsed = [HIT.fullmatch(line.partition(" ")[2] if line.startswith("@") else line) for line in got]
    assert all(parsed), got
    return [(m.group(1), int(m.group(2)), m.group(3)) for m in parsed if m]


def test_keys_and_bans_keep_rooms_out_of_every_page(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(*FAST)
    alice = registered(server, "alice")
    for line in ("/join #secret", "/key door", "the launch plan is secret"):
        alice.send(line)
    for line in ("/join #den", "den launch notes", "/join #lobby", "lobby launch party"):
        alice.send(line)
    alice.sync()
    bob = guest(server, "bob", "127.0.0.2")
    bob.send("/search launch")
    assert hits(bob, "OK search 2 hits") == [("#lobby", 1, "alice: lobby launch party"),
                                             ("#den", 1, "alice: den launch notes")]
    bob.send("/search #secret launch")
    assert bob.expect(f"ERROR {KEYED}") == []
    bob.send("/join #secret door")  # a member reads it
    bob.expect_prefix("OK join #secret")
    bob.send("/search launch")
    assert [room for room, _, _ in hits(bob, "OK search 3 hits")] == ["#lobby", "#den", "#secret"]
    alice.send("/join #den")
    alice.send("/ban bob")  # a guest: banned by address, also from what is said after the ban
    alice.expect("OK ban bob")
    alice.send("after the ban: launch moved")
    alice.sync()
    bob.send("/search launch")
    assert [room for room, _, _ in hits(bob, "OK search 2 hits")] == ["#lobby", "#secret"]
    bob.send("/search #den launch")
    bob.expect("ERROR you are banned from #den")
    carol = guest(server, "carol", "127.0.0.3")  # not banned, not a member: the unkeyed room is hers to read
    carol.send("/search launch moved")
    assert hits(carol, "OK search 1 hit") == [("#den", 2, "alice: after the ban: launch moved")]


def test_pages_diacritics_tags_and_errors(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(*FAST)
    alice = server.connect("alice")
    for i in range(45):
        alice.send(f"needle number {i}")
    alice.send("I love the Café downtown")
    alice.sync()
    bob = server.connect("bob")
    bob.send("/search needle")
    first = hits(bob, "OK search 20 hits (more: /search --more)")
    bob.send("/search --more")
    second = hits(bob, "OK search 20 hits (more: /search --more)")
    bob.send("/search --more")
    third = hits(bob, "OK search 5 hits")
    assert [line for _, _, line in first + second + third] == [f"alice: needle number {i}" for i in range(44, -1, -1)]
    assert [i for _, i, _ in first + second + third] == list(range(45, 0, -1))
    bob.send("/search --more")
    bob.expect("ERROR no search to go on with: /search WORDS")
    bob.send("/search CAFE")
    assert hits(bob, "OK search 1 hit") == [("#lobby", 46, "alice: I love the Café downtown")]
    bob.send("/caps tags")
    bob.expect("OK caps tags")
    bob.send("/search from:ALICE cafe")
    tagged = bob.expect("OK search 1 hit")
    assert len(tagged) == 1 and tagged[0].startswith("@msgid=46;room=#lobby;time=")
    tags, _, text = tagged[0].partition(" ")
    assert tags.endswith(";kind=msg;nick=alice;search") and HIT.fullmatch(text)
    for query, error in (("", "ERROR usage: /search [#room] [from:NICK] [before:ID|DATE] [after:ID|DATE] WORDS "
                                  "| /search --more"),
                         ("before:3 needle", "ERROR before:ID and after:ID need a #room (ids count per room); "
                                             "before:DATE works across rooms"),
                         ("-needle", 'ERROR nothing to search for: give a word, a "phrase" or from:NICK'),
                         ("#nowhere needle", "ERROR no such room: #nowhere")):
        bob.send(f"/search {query}")
        assert bob.expect(error) == []
    bob.send("/search #lobby after:40 before:43 needle")
    assert [i for _, i, _ in hits(bob, "OK search 2 hits")] == [42, 41]


def test_a_hit_opens_with_the_lines_around_it(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(*FAST)
    alice = server.connect("alice")
    for line in ("/join #design", *[f"design line {i}" for i in range(1, 31)], "/join #lobby"):
        alice.send(line)
    alice.sync()
    bob = server.connect("bob")  # never joined #design: it has no key, so bob reads it
    bob.send('/search "line 17"')
    assert hits(bob, "OK search 1 hit") == [("#design", 17, "alice: design line 17")]
    bob.send("/history #design around 17 6")
    around = bob.expect("OK history #design 6 lines")
    assert around[0].startswith("[#design] [")  # history of a room that is not bob's current one
    assert [re.sub(r"^\[#design\] \[[^]]+\] ", "", line) for line in around] == [
        f"alice: design line {i}" for i in range(14, 20)]
    bob.send("/history #design around 1 4")
    assert len(bob.expect("OK history #design 4 lines")) == 4  # nothing before the first line: 4 from it on
    bob.send("/history #design around x")
    bob.expect_prefix("ERROR usage: /history")


def test_retention_at_a_restart_takes_lines_out_of_search(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(*FAST, data_dir=tmp_path / "data")
    alice = server.connect("alice")
    for i in range(10):
        alice.send(f"retained word {i}")
    alice.sync()
    server.stop()
    again = server_factory(*FAST, "--history-keep", "3", data_dir=tmp_path / "data")
    bob = again.connect("bob")
    bob.send("/search retained")
    assert [line for _, _, line in hits(bob, "OK search 3 hits")] == [f"alice: retained word {i}" for i in (9, 8, 7)]


def test_a_plugins_search_follows_the_same_rule(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "finder.py").write_text(textwrap.dedent(FINDER))
    server = server_factory(*FAST, "--plugin-dir", str(folder))
    alice = registered(server, "alice")
    for line in ("/join #secret", "/key door", "the hidden treasure", "/join #lobby", "the public treasure"):
        alice.send(line)
    alice.sync()
    bob = guest(server, "bob", "127.0.0.4")
    bob.send("/find treasure")
    assert bob.expect("OK find 1") == ["found #lobby 1 alice: the public treasure"]
    alice.send("/find treasure")
    assert [line for line in alice.expect("OK find 2") if line.startswith("found")] == ["found #lobby 1 alice: the public treasure",
                                         "found #secret 1 alice: the hidden treasure"]
    bob.send("/find #secret treasure")
    bob.expect(f"ERROR {KEYED}")


def test_the_terminal_client_prints_hits_and_stays_in_its_room(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from test_e2e_transfer import ClientProcess

    server = server_factory(*FAST)
    alice = server.connect("alice")
    for line in ("/join #design", "the café sketches", "/join #lobby"):
        alice.send(line)
    alice.sync()
    carol = ClientProcess(server.port, tmp_path / "carol", "--name", "carol")
    try:
        carol.send("/upper ready")  # named (the client asks for message tags itself)
        carol.expect("READY")
        carol.send("/search cafe")
        hit = carol.expect(lambda line: "the café sketches" in line)
        assert HIT.fullmatch(hit) and hit.startswith("[#design 1 ")  # no tags, no room bookkeeping
        carol.expect("OK search 1 hit")
        carol.send("still in the lobby")  # a hit from #design did not make #design current
        alice.expect("carol: still in the lobby")
    finally:
        carol.kill()
