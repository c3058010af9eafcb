"""Resumable transfers of the web page, in real Chromium against the real server and ``chatroom-client``:
a download survives the server being killed and the page being reloaded (its verified chunks are in
IndexedDB), and an upload interrupted by a reload resumes with "Resume" once the same file is picked
again (another file is refused). Transfers are held mid-way by the proxy of test_e2e_resume.py."""

from __future__ import annotations

import hashlib
import os
import re
import signal
from pathlib import Path

from browser_kit import Pages, pages, shot, web_servers  # noqa: F401
from playwright.sync_api import expect
from test_e2e_resume import Proxy, proxies  # noqa: F401
from test_e2e_transfer import DEADLINE, ClientProcess, starts
from test_e2e_transfer_edges import cancel_as_it_begins, raw_receiver

MiB = 1024 * 1024
OCTETS = "application/octet-stream"


def terminal(port: int, folder: Path, nick: str, *args: str) -> ClientProcess:
    client = ClientProcess(port, folder / nick, "--name", nick, *args)
    client.expect(starts("* Welcome"))
    return client


def test_a_download_survives_a_server_kill_and_a_reload(web_servers, pages: Pages, proxies, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = web_servers("--flood-rate", "0")
    pages.allow(r"WebSocket|ERR_CONNECTION_REFUSED|net::")  # the page's reconnects while the server is down
    bob = pages.open(server.url, "bob")
    size = 24 * MiB
    content = os.urandom(size)
    proxy: Proxy = proxies(server.port, size * 2 // 5, cut=False, upward=True)  # alice's upload stops at 40 %
    alice = terminal(proxy.address, tmp_path, "alice", "--reconnect")
    try:
        expect(bob.locator("#member-list")).to_contain_text("alice")
        (alice.send_dir / "big.bin").write_bytes(content)
        alice.send("/sendfile big.bin")
        card = bob.locator("li.transfer.in", has_text="alice offers big.bin")
        card.get_by_role("button", name="Accept").click()
        assert proxy.reached.wait(DEADLINE)
        expect(card).to_have_attribute("data-state", "receiving")
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(DEADLINE)
        proxy.release.set()
        expect(card).to_have_attribute("data-state", "paused")  # once what arrived is stored
        kept = int(re.search(r"paused at (\d+)%", card.locator(".transfer-status").inner_text()).group(1))
        assert kept > 0
        shot(bob, "resume-download-paused")
        again = web_servers("--flood-rate", "0", "--port", str(server.port), data_dir=server.data_dir,
                            web_port=server.web_port)
        assert again.url == server.url
        bob.reload()  # what arrived is in IndexedDB, not in the page
        card = bob.locator("li.transfer.in", has_text="alice sends big.bin")
        expect(card).to_have_attribute("data-state", "done", timeout=60_000)
        line = alice.expect(starts('resumed "big.bin"'), 60)
        assert int(re.search(r"sent the missing (\d+) bytes", line).group(1)) <= size * (100 - kept) // 100
        with bob.expect_download() as info:
            card.get_by_role("link", name="Save big.bin").click()
        assert hashlib.sha256(Path(info.value.path()).read_bytes()).digest() == hashlib.sha256(content).digest()
        shot(bob, "resume-download-done")
    finally:
        alice.kill()


def test_an_upload_resumes_after_a_reload_with_the_same_file_picked_again(web_servers, pages: Pages, proxies,  # type: ignore[no-untyped-def]
                                                                            tmp_path: Path) -> None:
    server = web_servers("--flood-rate", "0")
    alice = pages.open(server.url, "alice")
    size = 16 * MiB
    content = os.urandom(size)
    proxy: Proxy = proxies(server.port, size // 2, cut=False)  # carol's download stops at half
    carol = terminal(proxy.address, tmp_path, "carol", "--reconnect")
    try:
        expect(alice.locator("#member-list")).to_contain_text("carol")
        alice.locator("#file-input").set_input_files(files=[{"name": "up.bin", "mimeType": OCTETS, "buffer": content}])
        assert proxy.reached.wait(DEADLINE)
        alice.reload()  # the page forgets the File; its record (token, size, SHA-256) stays
        proxy.release.set()  # carol comes back through the proxy, and waits for alice
        carol.expect(starts('"up.bin" from alice paused at '))
        card = alice.locator("li.transfer.out", has_text="up.bin")
        expect(card).to_have_attribute("data-state", "paused")
        expect(card.locator(".transfer-status")).to_contain_text("pick the file again to resume")
        shot(alice, "resume-upload-paused")
        with alice.expect_file_chooser() as chooser:
            card.get_by_role("button", name="Resume").click()
        chooser.value.set_files(files=[{"name": "up.bin", "mimeType": OCTETS, "buffer": os.urandom(size)}])
        expect(card.locator(".transfer-status")).to_contain_text("is not the file offered")
        with alice.expect_file_chooser() as chooser:
            card.get_by_role("button", name="Resume").click()
        chooser.value.set_files(files=[{"name": "renamed.bin", "mimeType": OCTETS, "buffer": content}])
        line = carol.expect(starts('received "up.bin"'), 60)
        assert (carol.received_dir / "up.bin").read_bytes() == content and "this time" in line
        expect(card).to_have_attribute("data-state", "done")
        status = card.locator(".transfer-status").inner_text()
        assert status.startswith("resumed to carol: sent the missing "), status
        shot(alice, "resume-upload-done")
    finally:
        carol.kill()


def test_an_upload_whose_only_receiver_gives_up_is_stopped_and_not_kept(web_servers, pages: Pages) -> None:  # type: ignore[no-untyped-def]
    """The only receiver gives up for good (its disk is full) as soon as the file begins: the page's upload card says
    so and offers no Resume, and a reload does not bring it back as paused (the server's file-abort ends the offer;
    the record goes). Before, a file-abort that came while the page stored its record was missed: every chunk went
    out regardless and the card stayed at "sent; waiting for the receivers…"."""
    server = web_servers("--flood-rate", "0")
    alice = pages.open(server.url, "alice")
    bob = raw_receiver(server)
    expect(alice.locator("#member-list")).to_contain_text("bob")
    alice.locator("#file-input").set_input_files(
        files=[{"name": "up.bin", "mimeType": OCTETS, "buffer": os.urandom(16 * MiB)}])
    cancel_as_it_begins(bob, "up.bin", "disk full")
    card = alice.locator("li.transfer.out", has_text="up.bin")
    expect(card.locator(".transfer-status")).to_have_text("stopped: cancelled by bob: disk full")
    expect(card.get_by_role("button", name="Resume")).to_have_count(0)
    alice.reload()
    expect(alice.locator("#member-list")).to_contain_text("bob")
    expect(alice.locator("li.transfer.out", has_text="up.bin")).to_have_count(0)
