"""The web door's edges as a real Chromium meets them (issue 17, rows 10, 15 and 16), against the real
``chatroom-server``: the close code and reason a page sees, one guest number per page load, and a page of
another site whose name is rebound to the server (Chromium's ``--host-resolver-rules`` plays the DNS)."""

from __future__ import annotations

import re
from typing import Any, Iterator

import pytest
from browser_kit import BROWSER_DEADLINE_MS, Pages, chromium_path, pages, say, shot, web_servers  # noqa: F401
from playwright.sync_api import Browser, Page, expect

#: Run before the page's scripts: every WebSocket's close event is kept in ``window.closes`` as [code, reason],
#: and the sockets in ``window.sockets``.
RECORD_CLOSES = """
window.closes = [];
window.sockets = [];
const Native = window.WebSocket;
window.WebSocket = class extends Native {
  constructor(...args) {
    super(...args);
    window.sockets.push(this);
    this.addEventListener("close", (e) => window.closes.push([e.code, e.reason]));
  }
};
"""


def closes(page: Page) -> list[list[Any]]:
    """The close events the page's WebSockets saw, once there is one."""
    page.wait_for_function("window.closes.length > 0", timeout=BROWSER_DEADLINE_MS)
    return page.evaluate("window.closes")  # type: ignore[no-any-return]


def test_the_page_sees_the_servers_close_code_and_reason(web_servers, pages: Pages) -> None:  # type: ignore[no-untyped-def]
    server = web_servers("--flood-rate", "2", "--flood-burst", "5", "--flood-kill", "1")
    quitter = pages.open(server.url, init_script=RECORD_CLOSES)
    say(quitter, "/quit")
    expect(quitter.locator("#status")).to_have_text("disconnected")
    assert closes(quitter) == [[1000, "quit"]]  # not 1006: nothing came after the server's Close frame

    flooder = pages.open(server.url, init_script=RECORD_CLOSES)
    pages.allow(r"WebSocket connection to 'ws://.*' failed")  # its reconnect tries, refused while throttled
    # the page paces what it sends (tests/test_browser_text.py): 300 lines at once past it, on its own socket
    flooder.evaluate("(text) => window.sockets.at(-1).send(text)", "\n".join(f"spam {i}" for i in range(300)))
    expect(flooder.locator("#status")).to_contain_text("connection lost (excess flood)")
    assert closes(flooder)[0] == [1008, "excess flood"]
    shot(flooder, "door-excess-flood")


def test_each_page_load_is_one_guest_number(web_servers, pages: Pages) -> None:  # type: ignore[no-untyped-def]
    server = web_servers()
    numbers = []
    for _ in range(3):
        page = pages.open(server.url)
        numbers.append(int(re.sub(r"\D", "", page.locator("#me").inner_text())))
    assert numbers == [numbers[0], numbers[0] + 1, numbers[0] + 2]


@pytest.fixture
def rebinding(chromium: Browser) -> Iterator[Browser]:
    """A second Chromium whose resolver sends ``rebind.test`` to 127.0.0.1: what a DNS rebinding attack does."""
    browser = chromium.browser_type.launch(executable_path=chromium_path(),
                                           args=["--host-resolver-rules=MAP rebind.test 127.0.0.1"])
    yield browser
    browser.close()


ATTACK = """<!doctype html><title>evil</title><script>
window.result = new Promise((done) => {
  const socket = new WebSocket(`ws://${location.host}/ws`);
  socket.onopen = () => done("open");
  socket.onclose = (e) => done(`closed ${e.code}`);
});
</script>"""


def test_a_page_of_another_site_on_a_rebound_name_gets_no_websocket(web_servers, rebinding: Browser) -> None:  # type: ignore[no-untyped-def]
    server = web_servers()
    port = server.web_port
    context = rebinding.new_context()
    try:
        page = context.new_page()
        answer = page.goto(f"http://rebind.test:{port}/")  # the name now resolves to the server: it refuses
        assert answer is not None and answer.status == 403
        expect(page.locator("body")).to_contain_text("this server does not answer to the name rebind.test")
        # the attacker's page, loaded while the name still pointed elsewhere (routed here), opens the WebSocket
        # on its own origin: Origin equals Host, which used to be enough
        page.route(f"http://rebind.test:{port}/", lambda route: route.fulfill(
            status=200, body=ATTACK, headers={"Content-Type": "text/html"}))
        page.goto(f"http://rebind.test:{port}/")
        assert page.evaluate("window.result") == "closed 1006"  # the handshake was refused (403)
    finally:
        context.close()
    assert f"refused a request from 127.0.0.1: host 'rebind.test:{port}' is not one of the server's" \
           in server.log_text()


def test_web_host_lets_the_page_be_used_under_another_name(web_servers, rebinding: Browser) -> None:  # type: ignore[no-untyped-def]
    server = web_servers("--web-host", "rebind.test")
    opened = Pages(rebinding)
    try:
        bob = server.connect("bob")
        page = opened.open(f"http://rebind.test:{server.web_port}/", "alice")
        say(page, "hello under my own name")
        bob.expect_prefix("alice: hello under my own name")
        opened.check()
    finally:
        opened.close()
