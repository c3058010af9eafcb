"""The page's pure modules (chatroom/web/static/names.js, sha256.js, wire.js) in real Chromium,
checked against their Python twins: file names against chatroom.wire.filenames.safe_name, SHA-256
(Web Crypto and the page's own fallback) against hashlib."""

from __future__ import annotations

import hashlib
import random

from browser_kit import static_page  # noqa: F401  (a fixture)
from playwright.sync_api import Page

from chatroom.wire.filenames import safe_name

HOSTILE_NAMES = [
    "notes.pdf", "my file.txt", "../../etc/passwd", "/etc/shadow", "C:\\Windows\\win.ini", "..", ".", "",
    " .hidden ", "trailing. . ", "CON", "nul.txt", "com1", "LPT¹.doc", "a<b>c:d\"e|f?g*h", "tab\there",
    "new\nline", "del\x7fchar", "c1\x85ctl", "evil\u202etxt.exe", "zero\u200bwidth", "line\u2028sep",
    "e\u0301cole.txt", "\U0001f600 emoji.png", "x" * 300 + ".txt", "é" * 150 + ".jpeg", "y" * 250,
    "a." + "b" * 40, "tags\U000e0041\U000e0042.txt", "soft\u00adhyphen", "dir/", "dir\\", "\\\\server\\share\\f",
]


def test_file_names_are_sanitised_exactly_as_the_terminal_client_does(static_page: Page) -> None:
    rng = random.Random(13)
    alphabet = "ab./\\ :<>\"|?*\x00\x1f\x7f\u202e\u200b\u2028é\U0001f600CONnul"
    names = HOSTILE_NAMES + ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24))) for _ in range(300)]
    got = static_page.evaluate(
        "async (names) => { const m = await import('/names.js'); return names.map((n) => m.safeName(n)); }", names
    )
    assert got == [safe_name(name) for name in names]


def test_sha256_by_web_crypto_and_by_the_fallback_equal_hashlib(static_page: Page) -> None:
    sizes = [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 4 * 1024 * 1024 + 3]
    got = static_page.evaluate(
        """async (sizes) => {
            const { sha256Blob, hasWebCrypto } = await import('/sha256.js');
            const out = [];
            for (const size of sizes) {
                const bytes = new Uint8Array(size);
                for (let i = 0; i < size; i += 1) bytes[i] = (i * 31 + 7) & 255;
                const blob = new Blob([bytes]);
                out.push([await sha256Blob(blob), await sha256Blob(blob, { forceFallback: true })]);
            }
            return { out, webCrypto: hasWebCrypto() };
        }""",
        sizes,
    )
    assert got["webCrypto"] is True  # localhost is a secure context
    for size, (web, fallback) in zip(sizes, got["out"]):
        want = hashlib.sha256(bytes((i * 31 + 7) & 255 for i in range(size))).hexdigest()
        assert (size, web, fallback) == (size, want, want)


def test_frames_nick_colours_mentions_and_sizes(static_page: Page) -> None:
    got = static_page.evaluate(
        """async () => {
            const w = await import('/wire.js');
            const n = await import('/names.js');
            const frame = w.decodeFrame(w.encodeFrame('file-data 7', new Uint8Array([0, 10, 255])).buffer);
            const empty = w.decodeFrame(new TextEncoder().encode('file-end 7 abc').buffer);
            return {
                meta: frame.meta, words: frame.words, payload: Array.from(frame.payload),
                emptyMeta: empty.meta, emptyPayload: empty.payload.length,
                hues: [n.nickHue('alice'), n.nickHue('ALICE'), n.nickHue('bob')],
                mentions: [n.mentions('hi alice!', 'alice'), n.mentions('malice', 'alice'),
                           n.mentions('alice.', 'alice'), n.mentions('Alice: look', 'alice'),
                           n.mentions('alice_2 there', 'alice')],
                sizes: [n.formatSize(0), n.formatSize(1023), n.formatSize(2097152)],
                time: n.formatTime('2020-01-02T03:04:05.000Z', new Date('2026-12-01T12:00:00Z')).length,
            };
        }"""
    )
    assert got["meta"] == "file-data 7" and got["words"] == ["file-data", "7"] and got["payload"] == [0, 10, 255]
    assert got["emptyMeta"] == "file-end 7 abc" and got["emptyPayload"] == 0
    assert got["hues"][0] == got["hues"][1] != got["hues"][2]
    assert got["mentions"] == [True, False, True, True, False]
    assert got["sizes"] == ["0 bytes", "1023 bytes", "2.0 MiB"]
    assert got["time"] == len("2020-01-02 03:04")


def test_only_http_and_https_become_links_and_they_end_where_people_mean(static_page: Page) -> None:
    cases = {
        "see https://example.com/a.": [["see ", None], ["https://example.com/a", "https://example.com/a"], [".", None]],
        "(https://x.org/Foo_(bar))": [["(", None], ["https://x.org/Foo_(bar)", "https://x.org/Foo_(bar)"], [")", None]],
        "www.example.org, ok": [["www.example.org", "http://www.example.org/"], [", ok", None]],
        "javascript:alert(1) data:text/html,x file:///etc/passwd": [
            ["javascript:alert(1) data:text/html,x file:///etc/passwd", None]],
        "https://javascript:alert(1)": [["https://javascript:alert(1)", None]],  # no host: not a URL
        'x https://a.b/"onmouseover=alert(1) y': [["x ", None], ["https://a.b/", "https://a.b/"],
                                                  ['"onmouseover=alert(1) y', None]],
        "HTTPS://EXAMPLE.COM/Path?q=1&r=2#f": [["HTTPS://EXAMPLE.COM/Path?q=1&r=2#f", "https://example.com/Path?q=1&r=2#f"]],
        "https://": [["https://", None]],
        "": [["", None]],
    }
    got = static_page.evaluate(
        "async (texts) => { const m = await import('/lines.js'); return texts.map((t) => m.linkRuns(t)); }", list(cases)
    )
    assert dict(zip(cases, got)) == cases
