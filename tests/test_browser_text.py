"""What people send, as the page shows it, in real Chromium against the real ``chatroom-server``: links
that can be clicked and cannot script the page or reach back to it, right-to-left text in its own
direction, and a big room's joins and parts kept out of the log as the server keeps them from line clients.

Each test saves screenshots of the states it checks under ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

from browser_kit import Pages, log, pages, say, shot, web_servers  # noqa: F401
from playwright.sync_api import expect


def test_links_are_clickable_open_apart_from_the_page_and_only_for_http(web_servers, pages: Pages) -> None:
    server = web_servers()
    page = pages.open(server.url, "alice")
    dave = server.connect("dave")
    own = f"{server.url}style.css"  # a page the test can open: the server's own, no network needed
    text = (f"notes: {own}. see (https://en.wikipedia.org/wiki/Foo_(bar)) and www.example.org/x, "
            "not javascript:alert(1) nor data:text/html,<b>x</b>")
    dave.send(text)
    dave.send("/topic agenda https://example.com/agenda?a=1&b=2")
    line = log(page, "#lobby").locator("li.msg .text").last
    expect(line).to_have_text(text)  # the words are unchanged: links are the same text, clickable
    links = line.locator("a")
    expect(links).to_have_count(3)
    assert [a.get_attribute("href") for a in links.all()] == [
        own, "https://en.wikipedia.org/wiki/Foo_(bar)", "http://www.example.org/x"]
    assert links.all_text_contents() == [own, "https://en.wikipedia.org/wiki/Foo_(bar)", "www.example.org/x"]
    for link in links.all():
        assert link.get_attribute("target") == "_blank"
        assert {"noopener", "noreferrer"} <= set((link.get_attribute("rel") or "").split())
    expect(page.locator("#topic a")).to_have_attribute("href", "https://example.com/agenda?a=1&b=2")
    expect(page.locator("#topic")).to_have_text("agenda https://example.com/agenda?a=1&b=2")
    shot(page, "text-links")
    # a click opens a new tab that cannot reach back to the chat (no opener, no referrer)
    with page.expect_popup() as popup_info:
        links.first.click()
    popup = popup_info.value
    popup.wait_for_load_state()
    assert popup.evaluate("[window.opener, document.referrer]") == [None, ""]
    popup.close()
    # the page's own lines get links too
    say(page, "mine: https://example.net/a")
    expect(log(page, "#lobby").locator("li.own .text a")).to_have_attribute("href", "https://example.net/a")


def test_right_to_left_text_runs_in_its_own_direction(web_servers, pages: Pages) -> None:
    server = web_servers()
    page = pages.open(server.url, "alice")
    dave = server.connect("dave")
    dave.send("שלום עולם!")
    dave.send("hello there!")
    dave.send("/topic مرحبا بالعالم!")
    texts = log(page, "#lobby").locator("li.msg .text")
    expect(texts).to_have_count(2)
    expect(page.locator("#topic")).to_have_text("مرحبا بالعالم!")
    direction = "e => getComputedStyle(e).direction"
    assert [texts.nth(0).evaluate(direction), texts.nth(1).evaluate(direction)] == ["rtl", "ltr"]
    assert page.locator("#topic").evaluate(direction) == "rtl"
    # the layout stays left to right; the composer follows what is typed in it
    assert log(page, "#lobby").evaluate(direction) == "ltr"
    page.locator("#composer-input").fill("ما الأخبار؟")
    assert page.locator("#composer-input").evaluate("e => e.matches(':dir(rtl)')")
    shot(page, "text-right-to-left")


def test_a_big_rooms_joins_and_parts_change_the_members_not_the_log(web_servers, pages: Pages) -> None:
    server = web_servers("--announce-limit", "1")  # a room of more than one: line clients are not told
    page = pages.open(server.url, "alice")
    dave = server.connect("dave")  # alice was alone: announced
    members = page.locator("#member-list")
    expect(members).to_contain_text("dave")
    erin = server.connect("erin")
    expect(members).to_contain_text("erin")
    dave.close()
    expect(members).not_to_contain_text("dave")
    erin.send("hello")
    expect(log(page, "#lobby")).to_contain_text("erin: hello")
    notices = log(page, "#lobby").locator("li.notice-join, li.notice-part")
    assert [text[5:] for text in notices.all_text_contents()] == ["* guest2 joined lobby"]
    shot(page, "text-quiet-joins")


def test_a_long_paste_is_paced_to_the_servers_flood_limit_and_a_too_long_line_is_kept(web_servers, pages: Pages) -> None:
    # 5 lines at once, 20 a second, 5 waiting at most: 40 lines sent at once would be dropped as a flood
    server = web_servers("--flood-rate", "20", "--flood-burst", "5", "--flood-backlog", "5")
    page = pages.open(server.url, "alice")
    dave = server.connect("dave")
    paste = [f"line {n} of the paste" for n in range(40)]
    page.locator("#composer-input").fill("\n".join(paste))
    page.locator("#composer-input").press("Enter")
    got = dave.expect("alice: line 39 of the paste")
    assert [line for line in got if line.startswith("alice: ")] == [f"alice: {line}" for line in paste[:-1]]
    expect(log(page, "#lobby").locator("li.own")).to_have_count(40)
    expect(log(page, "#lobby").locator("li.pending")).to_have_count(0)
    expect(page.locator("#status")).to_have_text("connected")
    # a line longer than the server takes is not sent at all: it stays in the box, and the page says why
    long = "y" * 65_536  # with its end, one byte more than the server takes
    page.locator("#composer-input").fill(long)
    page.locator("#composer-input").press("Enter")
    expect(log(page, "#lobby").locator("li.line.error").last).to_have_text(
        "not sent: a line of 65536 bytes is longer than the server takes (65535); send it as a file")
    expect(page.locator("#composer-input")).to_have_value(long)
    expect(log(page, "#lobby").locator("li.own")).to_have_count(40)
    dave.sync()
    shot(page, "text-long-paste")


def test_a_huge_message_is_shown_folded_until_asked(web_servers, pages: Pages) -> None:
    server = web_servers()
    page = pages.open(server.url, "alice", viewport={"width": 390, "height": 844})
    dave = server.connect("dave")
    huge = "see https://example.com/x " + "lorem ipsum " * 5000  # 60 KB: pages and pages on a phone
    dave.send(huge)
    dave.send("after it")
    item = log(page, "#lobby").locator("li.msg", has_text="dave: see")
    expect(log(page, "#lobby")).to_contain_text("dave: after it")
    text = item.locator(".text")
    shown = text.evaluate("e => e.textContent")
    assert 400 <= len(shown) <= 700 and huge.startswith(shown.removesuffix("…"))
    expect(text.locator("a")).to_have_attribute("href", "https://example.com/x")
    assert item.evaluate("e => e.getBoundingClientRect().height") < 844 / 2
    shot(page, "text-huge-folded")
    item.get_by_role("button", name=f"Show all {len(huge)} characters").click()
    expect(item.get_by_role("button")).to_have_count(0)
    assert text.evaluate("e => e.textContent") == huge
