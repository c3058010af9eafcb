"""The web page's search box in real Chromium (Playwright) against the real ``chatroom-server``: hits from
the rooms the page may read (never a keyed room it is not in), "More results", diacritics, a hit that opens
its room at that message with the lines around it (a room the page is in, and one it is not in, with a
"Join" button), ``/search`` typed in the composer, and errors shown in the panel.

Screenshots of the states checked go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import re

from browser_kit import Pages, log, pages, say, shot, web_servers  # noqa: F401
from playwright.sync_api import Page, expect
from test_access_e2e import registered


def search(page: Page, words: str) -> None:
    page.locator("#search-input").fill(words)
    page.locator("#search-input").press("Enter")


def test_the_search_box_finds_pages_and_opens_a_hit_in_its_room(web_servers, pages: Pages) -> None:  # type: ignore[no-untyped-def]
    server = web_servers("--flood-rate", "0")  # set-up lines come in bursts
    alice = registered(server, "alice")  # on nc: a keyed room of her own, and a busy #design
    for line in ("/join #vault", "/key door", "the café vault plan", "/join #design",
                 *[f"design line {i}" for i in range(1, 41)], "Café meeting moved", "/join #lobby"):
        alice.send(line)
    alice.send("lobby café chat")
    alice.sync()
    page = pages.open(server.url, "bob")

    search(page, "cafe")
    results = page.locator("#search-results button.hit")
    expect(results).to_have_count(2)  # not the keyed #vault: bob may not read it
    expect(results.nth(0)).to_contain_text("#lobby")
    expect(results.nth(0)).to_contain_text("alice: lobby café chat")
    expect(results.nth(1)).to_contain_text("#design")
    expect(results.nth(1)).to_contain_text("Café meeting moved")
    expect(page.locator("#search-status")).to_have_text("2 shown")
    expect(page.locator("#search-more")).to_be_hidden()
    expect(log(page, "#lobby")).not_to_contain_text("OK search")  # the reply is the panel's, not the room's
    shot(page, "search-results")

    search(page, "design line")  # 40 hits: 20 a page
    expect(results).to_have_count(20)
    expect(page.locator("#search-more")).to_be_visible()
    page.locator("#search-more").click()
    expect(results).to_have_count(40)
    expect(page.locator("#search-more")).to_be_hidden()
    expect(results.nth(39)).to_contain_text("design line 1")
    assert results.nth(0).inner_text().endswith("design line 40")

    results.filter(has_text=re.compile(r"design line 17$")).click()  # a room bob is not in
    expect(page.locator("#context-title")).to_have_text("#design around message 17")
    context = page.locator("#context-log li")
    expect(context).to_have_count(21)
    target = page.locator("#context-log li.target")
    expect(target).to_have_count(1)
    expect(target).to_contain_text("alice: design line 17")
    expect(context.first).to_contain_text("design line 7")
    expect(page.locator("#context-join")).to_be_visible()
    expect(log(page, "#lobby")).to_be_hidden()
    expect(target).to_be_in_viewport()
    shot(page, "search-context-not-joined")
    page.locator("#context-join").click()  # joining shows the room as usual
    expect(page.locator("#room-name")).to_have_text("#design")
    expect(page.locator("#context-bar")).to_be_hidden()
    expect(log(page, "#design")).to_contain_text("Café meeting moved")

    say(page, "/search from:alice meeting")  # typed in the composer: the same panel
    expect(results).to_have_count(1)
    results.first.click()  # a room bob is in now: the room is selected, the hit shown in place
    expect(page.locator("#room-name")).to_have_text("#design")
    expect(page.locator("#context-log li.target")).to_contain_text("Café meeting moved")
    expect(page.locator("#context-join")).to_be_hidden()
    page.locator("#context-back").click()
    expect(page.locator("#context-bar")).to_be_hidden()
    expect(log(page, "#design")).to_be_visible()

    search(page, "#vault cafe")  # errors go to the panel
    expect(page.locator("#search-status")).to_have_text(
        "#vault has a key: only its members can read it (/join #vault KEY)")
    search(page, "ab*")
    expect(page.locator("#search-status")).to_have_text("ab*: a prefix needs at least 3 characters before the *")
    page.locator("#search-close").click()
    expect(page.locator("#search-panel")).to_be_hidden()
