"""Files through the browser client, in real Chromium against the real server: from a page to a
``chatroom-client`` and back with SHA-256 compared, drag and drop, Accept and Decline, and a file
whose checksum does not match refused before it is offered to save."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from browser_kit import Pages, log, pages, shot, web_servers  # noqa: F401
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect
from test_e2e_transfer import ClientProcess, data, starts

from chatroom.wire import lines as protocol

MiB = 1024 * 1024
OCTETS = "application/octet-stream"


def terminal_client(server, folder: Path, nick: str, *args: str) -> ClientProcess:  # type: ignore[no-untyped-def]
    client = ClientProcess(server.port, folder / nick, "--name", nick, *args)
    client.expect(starts("* Welcome"))
    return client


#: Run before the page's scripts: the Blob URLs the page lets go of, in ``window.revoked`` (the page's policy
#: does not let a test fetch one to see).
RECORD_REVOKED = """
window.revoked = [];
const revoke = URL.revokeObjectURL;
URL.revokeObjectURL = (url) => { window.revoked.push(url); revoke.call(URL, url); };
"""


def test_a_file_from_the_browser_to_the_terminal_client_and_back(web_servers, pages: Pages, tmp_path: Path) -> None:
    server = web_servers()
    alice = pages.open(server.url, "alice", init_script=RECORD_REVOKED)
    carol = terminal_client(server, tmp_path, "carol")  # pipe mode takes every file
    expect(alice.locator("#member-list")).to_contain_text("carol")
    try:
        content = os.urandom(3 * MiB + 17)
        alice.locator("#file-input").set_input_files(files=[{"name": "report v2.bin", "mimeType": OCTETS, "buffer": content}])
        line = carol.expect(starts('received "report v2.bin"'))
        assert f"({len(content)} bytes) from alice" in line and "sha256 ok" in line
        assert (carol.received_dir / "report v2.bin").read_bytes() == content
        card = alice.locator("li.transfer.out", has_text="report v2.bin")
        expect(card).to_have_attribute("data-state", "done")
        expect(card.locator(".transfer-status")).to_contain_text("sent to carol")
        expect(card.locator("progress")).to_have_js_property("value", 1)
        shot(alice, "files-sent-to-terminal")

        # and back: alice's page asks (it sent /files ask); name, size and sender shown; Accept; checked; Save
        back = os.urandom(2 * MiB + 5)
        (carol.send_dir / "answer.bin").write_bytes(back)
        carol.send("/sendfile answer.bin")
        card = alice.locator("li.transfer.in", has_text="carol offers answer.bin (2.0 MiB)")
        expect(card.get_by_role("button", name="Accept")).to_be_visible()
        expect(card.get_by_role("button", name="Decline")).to_be_visible()
        expect(log(alice, "#lobby")).to_contain_text('* carol is sending "answer.bin" (2097157 bytes)')
        expect(log(alice, "#lobby")).not_to_contain_text("* * carol")
        shot(alice, "files-offer-from-terminal")
        card.get_by_role("button", name="Accept").click()
        assert carol.expect(starts('sent "answer.bin"')).startswith(f'sent "answer.bin" ({len(back)} bytes) to alice')
        expect(card).to_have_attribute("data-state", "done")
        expect(card.locator(".transfer-status")).to_contain_text("SHA-256")
        with alice.expect_download() as info:
            card.get_by_role("link", name="Save answer.bin").click()
        download = info.value
        assert download.suggested_filename == "answer.bin"
        assert hashlib.sha256(Path(download.path()).read_bytes()).hexdigest() == hashlib.sha256(back).hexdigest()
        assert card.locator("a.save").get_attribute("data-sha256") == hashlib.sha256(back).hexdigest()
        shot(alice, "files-received-and-checked")
        # a finished card can be dismissed; the file's bytes held for "Save" are let go with it
        href = card.locator("a.save").get_attribute("href")
        card.get_by_role("button", name="Dismiss").click()
        expect(card).to_have_count(0)
        assert alice.evaluate("window.revoked") == [href]
    finally:
        carol.kill()


def test_drop_a_file_and_decline_an_offer(web_servers, pages: Pages, tmp_path: Path) -> None:
    server = web_servers()
    alice = pages.open(server.url, "alice")
    bob = pages.open(server.url, "bob")
    carol = terminal_client(server, tmp_path, "carol")
    expect(alice.locator("#member-list")).to_contain_text("carol")
    try:
        # a drop with a hostile name: sent under its safe name, bob's page asks first
        content = os.urandom(100_000)
        alice.locator("#main").drop({"files": {"name": "../../evil\u202etxt.exe", "mimeType": OCTETS, "buffer": content}})
        offer_card = bob.locator("li.transfer.in", has_text="alice offers eviltxt.exe")
        offer_card.get_by_role("button", name="Decline").click()
        expect(offer_card).to_have_attribute("data-state", "declined")
        offer_card.get_by_role("button", name="Dismiss").click()
        expect(bob.locator("#transfers")).to_be_hidden()  # its last card gone
        line = carol.expect(starts('received "eviltxt.exe"'))
        assert "sha256 ok" in line and (carol.received_dir / "eviltxt.exe").read_bytes() == content
        sent = alice.locator("li.transfer.out", has_text="eviltxt.exe")
        expect(sent).to_have_attribute("data-state", "done")
        expect(sent.locator(".transfer-status")).to_contain_text("sent to carol")
        shot(bob, "files-declined")
        shot(alice, "files-dropped")
    finally:
        carol.kill()


def test_a_file_whose_checksum_does_not_match_is_never_offered_to_save(web_servers, pages: Pages) -> None:
    server = web_servers()
    alice = pages.open(server.url, "alice")
    mallory = server.connect("mallory", binary=True)
    content = b"x" * 5000
    tid = offer_when_asked(mallory, alice, "bad.bin", len(content))
    mallory.send_raw(data(tid, content))
    mallory.send_raw(protocol.encode_frame(f"file-end {tid} {'0' * 64}", b""))
    card = alice.locator("li.transfer.in", has_text="bad.bin")
    expect(card).to_have_attribute("data-state", "failed")
    expect(card.locator(".transfer-status")).to_contain_text("SHA-256 mismatch")
    expect(card.locator("a.save")).to_have_count(0)
    shot(alice, "files-checksum-mismatch")


def test_a_received_web_page_is_saved_never_shown_on_the_chats_origin(web_servers, pages: Pages) -> None:
    server = web_servers()
    alice = pages.open(server.url, "alice")
    mallory = server.connect("mallory", binary=True)
    content = b"<!doctype html><title>looks like chatroom</title><h1>Log in again</h1>"
    tid = offer_when_asked(mallory, alice, "page.html", len(content))
    mallory.send_raw(data(tid, content))
    mallory.send_raw(protocol.encode_frame(f"file-end {tid} {hashlib.sha256(content).hexdigest()}", b""))
    card = alice.locator("li.transfer.in", has_text="page.html")
    expect(card).to_have_attribute("data-state", "done")
    href = card.locator("a.save").get_attribute("href")
    assert href is not None and href.startswith("blob:")
    # the link opened as a page (a middle click, "open in new tab"): the browser saves it, it does not render it
    opened = alice.context.new_page()
    with opened.expect_download() as download:
        try:
            opened.goto(href)
        except PlaywrightError:
            pass  # a navigation that turns into a download is aborted
    assert Path(download.value.path()).read_bytes() == content
    assert opened.title() != "looks like chatroom"


def offer_when_asked(raw, page, name: str, size: int) -> int:  # type: ignore[no-untyped-def]
    """A raw client offers *name*; the page accepts it when asked; returns the transfer id."""
    quoted = '"' + name + '"'
    raw.send(f"/sendfile {quoted} {size}")
    page.locator("li.transfer.in", has_text=f"mallory offers {name}").get_by_role("button", name="Accept").click()
    reply = raw.expect_prefix("OK sendfile ")
    return int(reply.split()[2])


def test_over_https_and_wss_with_the_servers_certificate(web_servers, pages: Pages) -> None:
    server = web_servers("--tls")
    assert server.url.startswith("https://")
    alice = pages.open(server.url, "alice", ignore_https_errors=True)  # the self-signed certificate
    bob = pages.open(server.url, "bob", ignore_https_errors=True)
    assert alice.evaluate("window.isSecureContext && Boolean(crypto.subtle)")
    alice.locator("#composer-input").fill("over wss")
    alice.locator("#composer-input").press("Enter")
    expect(log(bob, "#lobby")).to_contain_text("alice: over wss")
    content = os.urandom(300_000)
    alice.locator("#file-input").set_input_files(files=[{"name": "tls.bin", "mimeType": OCTETS, "buffer": content}])
    card = bob.locator("li.transfer.in", has_text="alice offers tls.bin")
    card.get_by_role("button", name="Accept").click()
    expect(card).to_have_attribute("data-state", "done")
    assert card.locator("a.save").get_attribute("data-sha256") == hashlib.sha256(content).hexdigest()
    shot(bob, "files-over-tls")
