"""Test kit of the browser tests (tests/test_browser*.py): Debian's Chromium driven by Playwright.

* ``chromium`` (in conftest.py): one headless Chromium for the whole session, launched with
  ``executable_path`` (``playwright install`` cannot download browsers on these
  machines; ``scripts/install-test-packages.sh`` installs Debian's ``chromium``).
* ``static_page``: a page whose origin ``http://localhost:1`` (routed) serves
  ``chatroom/web/static`` straight from the source tree (no server), for
  testing the page's modules alone.
* :func:`shot`: a screenshot of a page state a test checks, saved under
  ``test-artifacts/screenshots/`` for a reviewer.

Used from the main thread only (Playwright's sync API).
"""

from __future__ import annotations

import mimetypes
import queue
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import DEADLINE, ServerProcess, stop_servers
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "chatroom" / "web" / "static"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
STATIC_ORIGIN = "http://localhost:1"  # localhost: a secure context (Web Crypto); routed, never dialled
#: Milliseconds any single browser expectation may take.
BROWSER_DEADLINE_MS = 10_000
expect.set_options(timeout=BROWSER_DEADLINE_MS)


def chromium_path() -> str:
    """The system Chromium (``str``); fails the test with what to run when it is missing."""
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        pytest.fail("Chromium is missing: run scripts/install-test-packages.sh (it installs Debian's chromium with apt-get)")
    return path


def launch_chromium() -> Iterator[Browser]:
    """Run one headless Chromium (about 0.7 s to launch cold) while the generator is suspended.

    The session fixture ``chromium`` (tests/conftest.py) is the only caller: Playwright's sync API
    allows one running instance per thread, so the fixture must be defined once, not per module.
    """
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path())
        yield browser
        browser.close()


def _serve_static(route: Route) -> None:
    path = route.request.url.removeprefix(STATIC_ORIGIN).split("?")[0].lstrip("/") or "index.html"
    file = (STATIC / path).resolve()
    if STATIC not in file.parents or not file.is_file():
        route.fulfill(status=404, body="not found")
        return
    kind = "text/javascript" if file.suffix == ".js" else mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    route.fulfill(status=200, body=file.read_bytes(), headers={"Content-Type": kind})


@pytest.fixture
def static_page(chromium: Browser) -> Iterator[Page]:
    """A blank page at ``http://localhost:1/blank`` (routed) that can ``import('/names.js')`` etc."""
    context = chromium.new_context()
    context.route(re.compile(r"^http://localhost:1/"), _serve_static)
    page = context.new_page()
    page.route(f"{STATIC_ORIGIN}/blank", lambda route: route.fulfill(status=200, body="<!doctype html><title>t</title>", headers={"Content-Type": "text/html"}))
    page.goto(f"{STATIC_ORIGIN}/blank")
    yield page
    context.close()


def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as ``test-artifacts/screenshots/NAME.png``; return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# -- a chatroom-server with its web listener, and pages on it ------------------------------------


WEB_LINE = re.compile(r"^chatroom-server web (https?://\S+)$")


class WebServer(ServerProcess):
    """``chatroom-server --port 0 --web-port PORT`` (0: the kernel's choice); ``url`` is the page's
    address, read from the ``chatroom-server web URL`` line it prints after its first line.

    A thread keeps reading its stdout (into ``out``) so the pipe never fills.
    """

    def __init__(self, data_dir: Path, *args: str, web_port: int = 0) -> None:
        super().__init__(data_dir, "--web-port", str(web_port), *args)
        self.out: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._wait_url()
        self.web_port = int(self.url.rstrip("/").rsplit(":", 1)[1])

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _wait_url(self) -> str:
        deadline = time.monotonic() + DEADLINE
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.out.append(line)
            if match := WEB_LINE.match(line):
                return match.group(1)
        self.proc.kill()
        raise RuntimeError(f"no 'chatroom-server web URL' line; printed {self.out}")


@pytest.fixture
def web_servers(tmp_path: Path) -> Iterator:
    """``web_servers(*args, data_dir=None, web_port=0)`` starts a :class:`WebServer`; all are killed at the end."""
    started: list[WebServer] = []

    def start(*args: str, data_dir: Path | None = None, web_port: int = 0) -> WebServer:
        server = WebServer(data_dir or tmp_path / "data", *args, web_port=web_port)
        started.append(server)
        return server

    yield start
    stop_servers(started)


class Pages:
    """Browser pages on the chat page, each in a context of its own (its own storage, like two people).

    Every page records JavaScript dialogs (``dialogs``, each dismissed) and uncaught page errors
    (``errors``); :meth:`check` fails the test on either.
    """

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.contexts: list[Any] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.allowed: list[re.Pattern[str]] = []

    def open(self, url: str, nick: str | None = None, init_script: str | None = None, **context_args: Any) -> Page:
        """A new page at *url* once the server greeted it, named *nick* if given (through the page's form).

        *init_script* runs before the page's own scripts; *context_args* go to ``new_context``
        (``viewport=...``, ``is_mobile=True``...).
        """
        context = self.browser.new_context(accept_downloads=True, **context_args)
        context.set_default_timeout(BROWSER_DEADLINE_MS)
        if init_script:
            context.add_init_script(init_script)
        self.contexts.append(context)
        page = context.new_page()
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
        page.goto(url)
        expect(page.locator("#me")).to_have_text(re.compile(r"^You are guest\d+"))
        if nick:
            set_name(page, nick)
        return page

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def allow(self, pattern: str) -> None:
        """Console errors matching the regex *pattern* are expected (e.g. refused reconnects)."""
        self.allowed.append(re.compile(pattern))

    def check(self) -> None:
        errors = [e for e in self.errors if not any(p.search(e) for p in self.allowed)]
        assert (self.dialogs, errors) == ([], []), (self.dialogs, errors)

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(chromium: Browser) -> Iterator[Pages]:
    """Open chat pages with ``pages.open(url, nick)``; closed at the end, after :meth:`Pages.check`."""
    opened = Pages(chromium)
    yield opened
    try:
        opened.check()
    finally:
        opened.close()


def set_name(page: Page, nick: str, password: str | None = None) -> None:
    """Use the page's "Name / log in" form; wait until the page says so."""
    page.locator("#account summary").click()
    page.locator("#login-name").fill(nick)
    if password:
        page.locator("#login-password").fill(password)
    page.get_by_role("button", name="Use this name").click()
    suffix = " (logged in)" if password else ""
    expect(page.locator("#me")).to_have_text(f"You are {nick}{suffix}")


def say(page: Page, text: str) -> None:
    """Type *text* in the composer and press Enter."""
    page.locator("#composer-input").fill(text)
    page.locator("#composer-input").press("Enter")


def log(page: Page, room: str) -> Any:
    """The locator of the message list of *room* (``"#lobby"``) on *page*."""
    return page.locator(f'ol.log[data-room="{room}"]')
