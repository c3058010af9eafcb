"""The browser client comes back after the server restarts (same --data-dir and --web-port):
logged in again, in the same rooms, with the history it missed fetched by `/history #room since ID`."""

from __future__ import annotations

import signal
from pathlib import Path

from browser_kit import Pages, log, pages, say, set_name, shot, web_servers  # noqa: F401
from playwright.sync_api import Page, expect

PASSWORD = "correct horse"[:7] + "-battery"  # 8 to 256 characters without spaces


def reconnect_soon(page: Page) -> None:
    """Press "Reconnect now" if the page is waiting out its backoff (the keyboard way in as well)."""
    page.evaluate("() => { const b = document.getElementById('reconnect'); if (!b.hidden) b.click(); }")


def test_reconnect_after_a_server_restart_catches_up_on_history(web_servers, pages: Pages, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = web_servers(data_dir=data)
    owner = server.connect("alice")
    owner.send(f"/register {PASSWORD}")
    owner.expect_prefix("OK registered alice")
    owner.send("/quit")
    owner.expect("OK")

    page = pages.open(server.url)
    set_name(page, "alice", PASSWORD)
    say(page, "/join #design")
    expect(page.locator("#room-name")).to_have_text("#design")
    dave = server.connect("dave")
    dave.send("/join #design")
    dave.send("before the restart")
    expect(log(page, "#design")).to_contain_text("dave: before the restart")

    pages.allow(r"WebSocket connection to 'ws://.*' failed")  # the page's tries while the server is down
    server.stop()
    expect(page.locator("#status")).to_contain_text("connection lost")
    expect(page.get_by_role("button", name="Reconnect now")).to_be_visible()
    shot(page, "reconnect-lost")

    # while the page is away, the rooms go on: a server on the same data, its web listener elsewhere
    away = web_servers(data_dir=data)
    talker = away.connect("dave")
    talker.send("/join #design")
    for n in range(1, 26):  # more than the 20 lines replayed on joining
        talker.send(f"missed {n}")
    talker.send("/join #lobby")
    talker.send("missed in the lobby")
    talker.sync()
    away.stop()

    back = web_servers(data_dir=data, web_port=server.web_port)
    reconnect_soon(page)
    expect(page.locator("#me")).to_have_text("You are alice (logged in)")
    expect(page.locator("body")).to_have_attribute("data-synced", "1")
    expect(page.locator("#room-name")).to_have_text("#design")  # the room the person was looking at
    texts = log(page, "#design").locator("li.msg .text").all_text_contents()
    assert texts == ["before the restart"] + [f"missed {n}" for n in range(1, 26)]
    expect(log(page, "#lobby")).to_contain_text("dave: missed in the lobby")
    # what was missed is unread like anything new: in the room not shown, not in the one shown
    expect(page.locator('#room-list button[data-room="#lobby"] .unread')).to_have_text("1")
    expect(page.locator('#room-list button[data-room="#design"] .unread')).to_have_count(0)
    expect(page).to_have_title("(1) chatroom")
    # replies to what the page sent by itself stay out of the log; those to what the person typed do not
    replies = [text for text in page.locator("#logs li.line.ok").all_text_contents() if not text.startswith("OK logged in")]
    assert replies == ["OK join #design (1 member)"]
    shot(page, "reconnect-caught-up")

    dave = back.connect("dave")
    dave.send("/join #design")
    dave.send("live again")
    expect(log(page, "#design")).to_contain_text("dave: live again")
    say(page, "glad to be back")
    dave.expect("alice: glad to be back")


def test_a_connection_that_went_silent_is_noticed_when_the_person_comes_back(web_servers, pages: Pages) -> None:
    # what a laptop that slept or a network that dropped leaves: a socket that looks open and carries nothing.
    # The server is frozen (SIGSTOP): its kernel keeps the TCP connection, nothing answers on it.
    server = web_servers()
    page = pages.open(server.url, "alice")
    dave = server.connect("dave")
    dave.send("before")
    expect(log(page, "#lobby")).to_contain_text("dave: before")
    pages.allow(r"WebSocket connection to 'ws://.*' failed")
    server.proc.send_signal(signal.SIGSTOP)
    try:
        dave.send("while the page was away")  # read by the server only once it runs again
        page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")  # the person looks at the tab
        expect(page.locator("#status")).to_contain_text("connection lost (no answer from the server)")
    finally:
        server.proc.send_signal(signal.SIGCONT)
    reconnect_soon(page)
    expect(page.locator("body")).to_have_attribute("data-synced", "1")
    expect(log(page, "#lobby")).to_contain_text("dave: while the page was away")
    expect(page.locator("#me")).to_have_text("You are alice")
    say(page, "back")
    dave.expect("alice: back")
