"""The browser client in real Chromium (Playwright) against the real ``chatroom-server``: two pages,
a ``chatroom-client`` and a raw TCP client in two rooms; history on join and "load older"; markup
shown as text; a phone-sized screen and the keyboard alone; mentions notified while hidden.

Each test saves screenshots of the states it checks under ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import re
from pathlib import Path

from browser_kit import Pages, log, pages, say, set_name, shot, web_servers  # noqa: F401
from playwright.sync_api import Page, expect
from test_e2e_transfer import ClientProcess


def room_button(page: Page, room: str):  # type: ignore[no-untyped-def]
    return page.locator(f'#room-list button[data-room="{room}"]')


def test_two_pages_a_terminal_client_and_nc_chat_in_two_rooms(web_servers, pages: Pages, tmp_path: Path) -> None:
    server = web_servers()
    alice = pages.open(server.url, "alice")
    bob = pages.open(server.url, "bob")
    carol = ClientProcess(server.port, tmp_path / "carol", "--name", "carol")
    carol.expect(lambda line: line.startswith("* Welcome"))
    dave = server.connect("dave")

    # #lobby: everyone, every way in
    expect(alice.locator("#member-list")).to_contain_text("carol")
    expect(alice.locator("#member-list")).to_contain_text("dave")
    say(alice, "hello from a browser")
    expect(log(bob, "#lobby")).to_contain_text("alice: hello from a browser")
    carol.expect("alice: hello from a browser")
    dave.expect("alice: hello from a browser")
    carol.send("hi from the terminal")
    dave.send("hi from nc")
    for page in (alice, bob):
        expect(log(page, "#lobby")).to_contain_text("carol: hi from the terminal")
        expect(log(page, "#lobby")).to_contain_text("dave: hi from nc")
    say(bob, "/me waves")
    expect(log(alice, "#lobby")).to_contain_text("* bob waves")
    dave.expect("* bob waves")
    expect(alice.locator("#member-list li")).to_have_count(4)
    assert alice.locator("#member-list .nick").all_text_contents() == ["alice", "bob", "carol", "dave"]
    colours = {nick: alice.locator("#member-list .nick", has_text=nick).evaluate("e => getComputedStyle(e).color")
               for nick in ("alice", "bob", "carol", "dave")}
    assert len(set(colours.values())) == 4  # a colour per nick, the same in every page
    assert bob.locator("#member-list .nick", has_text="carol").evaluate("e => getComputedStyle(e).color") == colours["carol"]
    shot(alice, "chat-lobby-alice")

    # #design: alice (by typing /join) and carol; a topic; bob stays in #lobby
    say(alice, "/join #design")
    expect(alice.locator("#room-name")).to_have_text("#design")
    carol.send("/join #design")
    carol.expect(lambda line: line.startswith("OK join #design"))
    expect(alice.locator("#member-list")).to_contain_text("carol")
    carol.send("/topic wireframes for Friday")
    expect(alice.locator("#topic")).to_have_text("wireframes for Friday")
    say(alice, "the mockups are ready")
    carol.expect("alice: the mockups are ready")
    expect(log(bob, "#lobby")).not_to_contain_text("the mockups are ready")
    # alice looks at #lobby: #design counts what she has not read
    room_button(alice, "#lobby").click()
    expect(alice.locator("#room-name")).to_have_text("#lobby")
    carol.send("one")
    carol.send("two")
    expect(room_button(alice, "#design").locator(".unread")).to_have_text("2")
    expect(log(alice, "#design")).to_contain_text("carol: two")
    # chat from #lobby goes to #lobby, though the server's current room was #design
    say(alice, "back in the lobby")
    expect(log(bob, "#lobby")).to_contain_text("alice: back in the lobby")
    dave.expect("alice: back in the lobby")
    shot(alice, "chat-unread-design")
    room_button(alice, "#design").click()
    expect(room_button(alice, "#design").locator(".unread")).to_have_count(0)
    expect(log(alice, "#design")).to_contain_text("carol: two")
    expect(alice.locator("#member-list li")).to_have_count(2)
    say(bob, "lunch at noon?")
    expect(room_button(alice, "#lobby").locator(".unread")).to_have_text("1")
    shot(alice, "chat-design-topic-members")  # README's picture, docs/img/web-client.png, is this one
    carol.kill()


def test_history_on_join_and_load_older(web_servers, pages: Pages) -> None:
    server = web_servers("--flood-rate", "0")  # dave says 70 lines at once
    dave = server.connect("dave")
    for n in range(1, 71):
        dave.send(f"line {n}")
    dave.sync()
    page = pages.open(server.url)
    lobby = log(page, "#lobby")
    expect(lobby.locator("li.history")).to_have_count(20)  # --history-on-join's default
    expect(lobby.locator("li.history").first).to_contain_text("dave: line 51")
    expect(lobby.locator("li.history").last).to_contain_text("dave: line 70")
    expect(lobby.locator("li.history .time").first).to_have_text(re.compile(r"^\d\d:\d\d$"))
    shot(page, "history-on-join")
    page.get_by_role("button", name="Load older messages").click()
    expect(lobby.locator("li.history")).to_have_count(70)
    texts = lobby.locator("li.history .text").all_text_contents()
    assert texts == [f"line {n}" for n in range(1, 71)]
    expect(page.locator("#load-older")).to_have_text("No older messages")
    expect(page.locator("#load-older")).to_be_disabled()
    shot(page, "history-loaded-older")


def test_markup_in_a_message_is_shown_as_text(web_servers, pages: Pages) -> None:
    server = web_servers()
    page = pages.open(server.url, "alice")
    dave = server.connect("dave")
    attack = "<img src=x onerror=alert(1)>"
    dave.send(attack)
    dave.send("/me <script>alert(2)</script>")
    dave.send("/topic <b onmouseover=alert(3)>bold</b>")
    expect(log(page, "#lobby").locator(".text", has_text=attack)).to_have_text(attack)
    expect(log(page, "#lobby")).to_contain_text("<script>alert(2)</script>")
    expect(page.locator("#topic")).to_have_text("<b onmouseover=alert(3)>bold</b>")
    assert page.locator("#logs img, #logs script, #topic b").count() == 0
    page.locator("#topic").hover()
    shot(page, "markup-as-text")
    assert pages.dialogs == []


def type_and_enter(page: Page, field: str, text: str) -> None:
    """Focus *field* (a selector), type *text* key by key and press Enter: the keyboard alone."""
    page.locator(field).focus()
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def expect_rooms_panel(page: Page, *, shown: bool) -> None:
    """The rooms panel is shown (or folded away), and its button says so to screen readers."""
    panel = expect(page.locator("#sidebar"))
    if shown:
        panel.to_be_visible()
    else:
        panel.to_be_hidden()
    expect(page.locator("#menu-toggle")).to_have_attribute("aria-expanded", "true" if shown else "false")


def test_a_phone_sized_screen_used_by_keyboard_alone(web_servers, pages: Pages) -> None:
    server = web_servers()
    dave = server.connect("dave")
    page = pages.open(server.url, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    # nothing wider than the screen; the composer and the rooms button in view, the sidebar folded away
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    for target in ("#composer-input", "#send-button", "#file-button", "#menu-toggle"):
        expect(page.locator(target)).to_be_in_viewport()
    expect(page.locator("#sidebar")).to_be_hidden()
    shot(page, "phone-lobby")
    # keyboard only: the message box has the focus on load; Enter sends; Shift+Enter is a new line
    expect(page.locator("#composer-input")).to_be_focused()
    page.keyboard.type("typed without a mouse")
    page.keyboard.press("Enter")
    line = dave.expect_prefix("guest")
    assert line.endswith(": typed without a mouse")
    page.keyboard.type("first")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second")
    expect(page.locator("#composer-input")).to_have_value("first\nsecond")
    page.keyboard.press("Enter")
    assert dave.expect_prefix("guest").endswith(": first")
    assert dave.expect_prefix("guest").endswith(": second")
    # a multi-line paste: each line its own line, a command among them works
    page.keyboard.insert_text("pasted one\n/me pastes\npasted two")
    page.keyboard.press("Enter")
    assert dave.expect_prefix("guest").endswith(": pasted one")
    assert dave.expect_prefix("* guest").endswith(" pastes")
    assert dave.expect_prefix("guest").endswith(": pasted two")
    # the rooms panel opens from the keyboard; a room is joined and chosen without a mouse
    page.locator("#menu-toggle").focus()
    page.keyboard.press("Enter")
    expect_rooms_panel(page, shown=True)
    type_and_enter(page, "#join-input", "#phone")
    expect(page.locator("#room-name")).to_have_text("#phone")
    page.keyboard.press("Alt+ArrowUp")
    expect(page.locator("#room-name")).to_have_text("#lobby")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "phone-rooms-open")
    # Escape folds the rooms panel away, and closes the search panel
    page.keyboard.press("Escape")
    expect_rooms_panel(page, shown=False)
    type_and_enter(page, "#search-input", "pasted")
    expect(page.locator("#search-status")).to_contain_text("2 shown")
    page.keyboard.press("Escape")
    expect(page.locator("#search-panel")).to_be_hidden()
    expect(page.locator("#search-input")).to_be_focused()
    # new messages are announced to screen readers
    expect(log(page, "#lobby")).to_have_attribute("aria-live", "polite")
    expect(log(page, "#lobby")).to_have_attribute("role", "log")


NOTIFICATION_STUB = """
(() => {
  window.__notes = [];
  window.__hidden = false;
  class FakeNotification {
    constructor(title, options) { window.__notes.push([title, (options || {}).body]); }
  }
  FakeNotification.permission = 'default';
  FakeNotification.requestPermission = async () => { FakeNotification.permission = 'granted'; return 'granted'; };
  window.Notification = FakeNotification;
  Object.defineProperty(Document.prototype, 'hidden', { get: () => window.__hidden, configurable: true });
})();
"""


def test_a_mention_notifies_only_while_hidden_and_only_when_allowed(web_servers, pages: Pages) -> None:
    server = web_servers()
    page = pages.open(server.url, "alice", init_script=NOTIFICATION_STUB)
    dave = server.connect("dave")
    page.evaluate("window.__hidden = true")
    dave.send("alice: before you allowed it")
    expect(log(page, "#lobby")).to_contain_text("before you allowed it")
    assert page.evaluate("window.__notes") == []
    page.get_by_role("button", name="Notify me of mentions").click()
    expect(page.locator("#notify")).to_be_hidden()
    page.evaluate("window.__hidden = false")
    dave.send("alice: while you look")
    expect(log(page, "#lobby")).to_contain_text("while you look")
    page.evaluate("window.__hidden = true")
    dave.send("nothing for anyone")
    dave.send("alice: while hidden")
    expect(log(page, "#lobby")).to_contain_text("alice: while hidden")
    expect(log(page, "#lobby").locator("li.mention")).to_have_count(3)
    assert page.evaluate("window.__notes") == [["dave in #lobby", "alice: while hidden"]]


def test_a_tab_in_the_background_counts_what_came_in_its_room_and_marks_where_it_starts(web_servers, pages: Pages) -> None:
    server = web_servers()
    page = pages.open(server.url, "alice", init_script=NOTIFICATION_STUB)
    dave = server.connect("dave")
    dave.send("seen")
    expect(log(page, "#lobby")).to_contain_text("dave: seen")
    expect(page).to_have_title("chatroom")
    page.evaluate("window.__hidden = true; document.dispatchEvent(new Event('visibilitychange'))")
    dave.send("one")
    dave.send("two")
    expect(page).to_have_title("(2) chatroom")
    expect(room_button(page, "#lobby").locator(".unread")).to_have_text("2")
    page.evaluate("window.__hidden = false; document.dispatchEvent(new Event('visibilitychange'))")
    expect(page).to_have_title("chatroom")
    expect(room_button(page, "#lobby").locator(".unread")).to_have_count(0)
    # a line marks where the unseen messages start, until the next time away
    marker = log(page, "#lobby").locator("li.unseen")
    expect(marker).to_have_text("new messages")
    expect(marker.locator("xpath=following-sibling::li[1]")).to_contain_text("dave: one")
    shot(page, "chat-back-to-the-tab")
    say(page, "back")
    dave.expect("alice: back")
    page.evaluate("window.__hidden = true; document.dispatchEvent(new Event('visibilitychange'))")
    dave.send("three")
    expect(page).to_have_title("(1) chatroom")
    page.evaluate("window.__hidden = false; document.dispatchEvent(new Event('visibilitychange'))")
    expect(page).to_have_title("chatroom")
    expect(marker).to_have_count(1)
    expect(marker.locator("xpath=following-sibling::li[1]")).to_contain_text("dave: three")


def test_a_busy_room_keeps_the_last_thousand_lines_on_the_page_and_older_ones_load_again(web_servers, pages: Pages) -> None:
    server = web_servers("--flood-rate", "0")
    page = pages.open(server.url)
    dave = server.connect("dave")
    for n in range(1, 1101):
        dave.send(f"busy {n}")
    lobby = log(page, "#lobby")
    expect(lobby.locator("li").last).to_have_text(re.compile(r"dave: busy 1100$"))
    expect(lobby.locator("li")).to_have_count(1000)  # a tab open all day does not grow without end
    expect(lobby.locator("li").first).to_have_text(re.compile(r"dave: busy 101$"))
    page.get_by_role("button", name="Load older messages").click()
    expect(lobby.locator("li.history")).to_have_count(50)
    expect(lobby.locator("li").first).to_have_text(re.compile(r"dave: busy 51$"))
    texts = lobby.locator("li .text").all_text_contents()
    assert texts == [f"busy {n}" for n in range(51, 1101)]


def test_the_member_list_is_in_the_order_people_expect_through_joins_leaves_and_renames(web_servers, pages: Pages) -> None:
    server = web_servers()
    page = pages.open(server.url, "alice")
    clients = {nick: server.connect(nick) for nick in ("w10", "w2", "W3", "bob")}
    names = page.locator("#member-list .nick")
    expect(page.locator("#members-heading")).to_have_text("Members (5)")
    assert names.all_text_contents() == ["alice", "bob", "w2", "W3", "w10"]  # numbers by value, any case
    clients["w2"].send("/nick w11")
    clients["bob"].close()
    expect(page.locator("#members-heading")).to_have_text("Members (4)")
    expect(names).to_have_text(["alice", "W3", "w10", "w11"])
    server.connect("a1")
    expect(names).to_have_text(["a1", "alice", "W3", "w10", "w11"])
    expect(page.locator("#member-list li", has_text="alice")).to_have_text("alice (you)")
