"""Operators' commands from the page and what the page shows the member they act on, in real Chromium
against the real ``chatroom-server``: a kick typed in the page, a kick of the page's own member (said, not
silent), and leaving every room (the page says so and never joins back behind the person's back).

Each test saves screenshots of the states it checks under ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

from browser_kit import Pages, log, pages, say, shot, web_servers  # noqa: F401
from playwright.sync_api import expect


def test_kicks_from_the_page_and_of_the_page_and_leaving_every_room(web_servers, pages: Pages) -> None:
    server = web_servers()
    page = pages.open(server.url, "alice")
    dave = server.connect("dave")
    dave.send("/join #den")  # the first member of a new room operates it
    dave.expect_prefix("OK join #den")
    say(page, "/join #den")
    expect(page.locator("#room-name")).to_have_text("#den")
    expect(page.locator("#member-list")).to_contain_text("dave")
    say(page, "/kick dave")  # alice is no operator of #den
    expect(log(page, "#den")).to_contain_text("ERROR permission denied")
    dave.send("/kick alice behave")
    dave.expect("OK kick alice")
    # the page shows the room it is now in, and says why it left #den
    expect(page.locator("#room-name")).to_have_text("#lobby")
    expect(page.locator('#room-list button[data-room="#den"]')).to_have_count(0)
    expect(log(page, "#lobby")).to_contain_text("* dave kicked alice from den (behave)")
    shot(page, "ops-kicked")
    # leaving the last room: the page says it is in no room; a message is not sent, nor the room joined again
    say(page, "/part")
    expect(page.locator("#room-list li")).to_have_count(0)
    expect(page.locator("#room-name")).to_have_text("#lobby (you left it)")
    expect(page.locator("#member-list li")).to_have_count(0)
    expect(page.locator("#composer-input")).to_have_attribute("placeholder", "/join #room")
    say(page, "anyone there?")
    expect(log(page, "#lobby")).to_contain_text("not sent: you are in no room (/join #room)")
    say(page, "/join #lobby")
    expect(page.locator("#room-name")).to_have_text("#lobby")
    say(page, "back again")
    assert not any("anyone there?" in line for line in dave.expect("[#lobby] alice: back again"))  # dave is in #den
    shot(page, "ops-left-every-room")
