"""A real IRC client in the rooms: irssi (Debian's package; scripts/install-test-packages.sh installs it) on a
pseudo-terminal, drawn by pyte (tests/screen.py), logged in with SASL PLAIN to a chatroom account, in a room
with a line-protocol member (what ``nc`` speaks), a real ``chatroom-client`` on a pseudo-terminal and the web
page in real Chromium: lines, ``/me``, the topic, kicks, private lines and files (one-time links, fetched and
given with curl as an irssi user would) both ways."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from browser_kit import Pages, log, pages, say  # noqa: F401
from irc_kit import start_irc
from screen import Term

pytestmark = pytest.mark.skipif(shutil.which("irssi") is None or shutil.which("curl") is None,
                                reason="irssi or curl is missing: scripts/install-test-packages.sh installs them")
#: A one-time file link in a NOTICE on irssi's screen (a download's, or an upload's ending in /).
LINK = r"(https?://[0-9.]+:[0-9]+/{kind}/[A-Za-z0-9_-]{{32}}/?)"

CONFIG = """
servers = ( {{ address = "127.0.0.1"; port = "{port}"; chatnet = "chatroom"; autoconnect = "yes"; }} );
chatnets = {{ chatroom = {{ type = "IRC"; sasl_mechanism = "PLAIN"; sasl_username = "alice";
                           sasl_password = "{password}"; }}; }};
settings = {{
  core = {{ real_name = "Alice"; user_name = "alice"; nick = "alice"; }};
  "fe-common/core" = {{ autocreate_query_level = "none"; theme = "default"; }};
  "fe-text" = {{ actlist_sort = "refnum"; }};
}};
"""


def _irssi(tmp_path: Path, port: int, password: str) -> Term:
    home = tmp_path / "irssi"
    home.mkdir()
    (home / "config").write_text(CONFIG.format(port=port, password=password))
    return Term([f"--home={home}"], tmp_path / "cwd", cols=120, rows=40, command="irssi")


def _curl(*args: str, fail: bool = True) -> subprocess.Popen[str]:
    """curl, as an irssi user fetches or gives a file by link (*fail*: an HTTP error is a failure); it waits
    while the room answers the offer."""
    return subprocess.Popen(["curl", "-sS", *(["--fail"] if fail else []), "--max-time", "30", *args],
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _done(curl: subprocess.Popen[str]) -> str:
    """What *curl* printed, once it ended well (AssertionError with its complaint otherwise)."""
    out, err = curl.communicate(timeout=30)
    assert curl.returncode == 0, err
    return out


def test_irssi_talks_with_nc_terminal_and_web_members(server_factory: Any, pages: Pages, tmp_path: Path) -> None:
    server = start_irc(server_factory)
    owner = server.connect("alice")  # the account irssi logs in to
    owner.send("/register correct-horse")
    owner.expect_prefix("OK registered alice")
    owner.send("/quit")
    owner.expect("OK")
    bob = server.connect("bob")  # what nc speaks
    bob.send("/join #team")
    bob.expect_prefix("OK join #team")
    dave = Term(["--name", "dave", "--port", str(server.port), "--no-timestamps"], tmp_path / "dave", cols=120,
                rows=40)  # the terminal client on a pseudo-terminal
    dave.wait_for(r"^#lobby>", "dave's prompt")
    dave.type("/join #team\r")
    dave.wait_for(r"^#team>", "dave in #team")
    erin = pages.open(server.web_url + "/", "erin")  # the web page
    say(erin, "/join #team")
    expect(erin.locator("#member-list")).to_contain_text("dave")
    term = _irssi(tmp_path, server.irc_port, "correct-horse")
    try:
        term.wait_for(r"Welcome to the chatroom IRC door alice!", "irssi registered")
        assert re.search(r"authenticat", term.text(), re.IGNORECASE), term.text()  # SASL, before the welcome
        term.type("/join #team\r")
        bob.expect("* alice joined team")
        term.wait_for(r"alice.*has joined #team", "irssi in #team")
        term.type("hello from irssi\r")
        bob.expect("alice: hello from irssi")
        dave.wait(lambda: dave.shows("alice: hello from irssi"), "irssi's line in the terminal client")
        expect(log(erin, "#team")).to_contain_text(re.compile(r"alice.*hello from irssi"))
        dave.type("hi from the terminal client\r")
        term.wait_for(r"dave> hi from the terminal client", "the terminal client's line in irssi")
        say(erin, "hi from the web page")
        term.wait_for(r"erin> hi from the web page", "the web page's line in irssi")
        bob.send("hi irssi")
        term.wait_for(r"bob> hi irssi", "bob's line in irssi")
        term.type("/me waves\r")
        bob.expect("* alice waves")
        dave.wait(lambda: dave.shows("* alice waves"), "irssi's /me in the terminal client")
        expect(log(erin, "#team")).to_contain_text(re.compile(r"alice waves"))
        bob.send("/me nods")
        term.wait_for(r"\* bob nods", "bob's /me in irssi")
        say(erin, "/me smiles")
        term.wait_for(r"\* erin smiles", "the web page's /me in irssi")
        term.type("/topic a topic from irssi\r")
        bob.expect("* alice set the topic of team: a topic from irssi")
        expect(erin.locator("body")).to_contain_text("a topic from irssi")
        bob.send("/topic set from nc")
        term.wait_for(r"changed the topic of #team to: set from nc", "the topic in irssi")
        term.type("/msg bob psst\r")
        bob.expect("alice (private): psst")
        term.type("/msg erin psst web\r")
        expect(erin.locator("body")).to_contain_text("psst web")
        bob.send("/msg alice secret reply")
        bob.expect("OK sent to alice")
        say(erin, "/msg alice from the web page")
        term.type("/window 1\r")
        term.wait_for(r"bob.*secret reply", "the private line in irssi")
        term.wait_for(r"erin.*from the web page", "the web page's private line in irssi")
        term.type("/window 2\r")

        # a file from the terminal client: irssi gets a one-time link (and the page asks, as it always does)
        notes = os.urandom(300_000)
        (tmp_path / "dave" / "send").mkdir(exist_ok=True)
        (tmp_path / "dave" / "send" / "notes.bin").write_bytes(notes)
        dave.type("/sendfile notes.bin\r")
        term.type("/window 1\r")  # server notices go to irssi's status window
        url = term.wait_for(LINK.format(kind="f"), "the download link in irssi").group(1)
        fetch = _curl("-o", str(tmp_path / "fetched.bin"), url)
        card = erin.locator("li.transfer.in", has_text="dave offers notes.bin")
        card.get_by_role("button", name="Accept").click()
        _done(fetch)
        assert (tmp_path / "fetched.bin").read_bytes() == notes
        dave.wait_for(r'sent "notes\.bin" \(300000 bytes\) to .*alice', "the sender sees who fetched it")
        term.wait(lambda: term.shows(f"downloaded: SHA-256 {hashlib.sha256(notes).hexdigest()}"), "the SHA-256")
        expect(card).to_have_attribute("data-state", "done")
        assert _done(_curl("-o", os.devnull, "-w", "%{http_code}", url, fail=False)) == "410"  # one use

        # and a file from irssi: /quote sendfile gives an upload link; the others consent as for any file
        photo = os.urandom(200_000)
        (tmp_path / "photo.bin").write_bytes(photo)
        term.type("/quote sendfile #team\r")
        url = term.wait_for(LINK.format(kind="u"), "the upload link in irssi").group(1)
        give = _curl("-T", str(tmp_path / "photo.bin"), url)
        dave.wait_for(r'alice offers "photo\.bin" \(200000 bytes\): /accept', "the offer in the terminal client")
        dave.type("/accept\r")
        erin.locator("li.transfer.in", has_text="alice offers photo.bin").get_by_role("button", name="Accept").click()
        assert re.fullmatch(r"sent to (dave, erin|erin, dave)\n", _done(give))
        dave.wait_for(r'received "photo\.bin" \(200000 bytes\) from alice.*sha256 ok', "the file in the client")
        assert (tmp_path / "dave" / "received" / "photo.bin").read_bytes() == photo
        term.wait_for(r"sent to (dave, erin|erin, dave)", "the upload's report in irssi")
        term.type("/window 2\r")

        bob.send("/op alice")  # bob made #team: he operates it and names alice, an account, operator
        bob.expect("OK op alice")
        term.wait_for(r"mode/#team \[\+o alice\] by bob", "alice is operator in irssi")
        bob.send("/kick alice out you go")
        term.wait_for(r"You have been kicked from #team by bob \(out you go\)|kicked from #team by bob",
                      "the kick in irssi")
        term.type("/join #team\r")
        bob.expect("* alice joined team")
        term.wait_for(r"alice.*has joined #team.*\n(.*\n)*.*", "back in #team")
        carol = server.connect("carol")
        carol.send("/join #team")
        carol.expect_prefix("OK join #team")
        term.wait_for(r"carol.*has joined #team", "carol in irssi")
        term.type("/kick carol enough\r")
        carol.expect("* alice kicked carol from team (enough)")
        bob.expect("* alice kicked carol from team (enough)")
        term.type("/kick erin and you\r")
        bob.expect("* alice kicked erin from team (and you)")
        expect(erin.locator("body")).to_contain_text("alice kicked erin from team (and you)")
        term.type("/quit leaving now\r")
        bob.expect("* alice left team (leaving now)")
        assert term.exit_status(timeout=10) is not None
        dave.wait(lambda: dave.shows("alice left team (leaving now)"), "irssi's quit in the terminal client")
    finally:
        term.close()
        dave.close()
