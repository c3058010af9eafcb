"""The web listener's sans-I/O parts alone, without sockets: which ``Host`` names are answered (:class:`Hosts`),
what each request gets (:class:`Gate`), the page's files and symbolic links (:class:`StaticFiles`), and the
text of refusals (:func:`plain_answer`)."""

from __future__ import annotations

import os
from pathlib import Path

import h11
import pytest

from chatroom.net.webgate import Gate, Hosts, Refusal, host_name
from chatroom.net.webhttp import StaticFiles, plain_answer
from chatroom.net.webproto import HttpRequest


def request(method: str = "GET", target: str = "/", **headers: str) -> HttpRequest:
    raw = [(name.replace("_", "-").lower().encode(), value.encode()) for name, value in headers.items()]
    return HttpRequest(method.encode(), target.encode(), raw)


@pytest.mark.parametrize("given, key", [
    ("Example.ORG.", "example.org"), ("example.org:8080", "example.org"), ("[::1]:80", "::1"), ("127.000.0.1", "127.000.0.1"),
    ("10.0.0.1:1", "10.0.0.1"), ("[0:0::1]", "::1"), ("a b", ""), ("", ""), ("x:99999999", ""), ("é.example", ""),
])
def test_host_names_are_compared_without_port_case_or_final_dot(given: str, key: str) -> None:
    assert host_name(given) == key


def test_hosts_answer_own_names_loopback_and_the_address_dialled_only() -> None:
    hosts = Hosts(["laptop", "laptop.local", "chat.example.org", "0.0.0.0", "203.0.113.7"])
    local = "192.168.1.5"
    for host in (b"laptop", b"LAPTOP.local:8080", b"chat.example.org.", b"localhost", b"app.localhost:1",
                 b"127.0.0.1", b"127.9.9.9:5", b"[::1]:80", b"192.168.1.5:8080", b"203.0.113.7", None):
        assert hosts.allows(host, local), host
    for host in (b"evil.example", b"laptop.evil.example", b"192.168.1.6", b"10.0.0.1", b"[fe80::1]", b"",
                 b"laptop\x00", b"localhost.evil.example", b"0.0.0.0"[:0] + b"1.2.3.4"):
        assert not hosts.allows(host, local), host
    assert Hosts([]).allows(b"192.168.1.5", "::ffff:192.168.1.5")  # a dual-stack listener's IPv4 peer
    assert not Hosts([]).allows(b"192.168.1.5", "")  # the connection's address unknown: only names
    assert Hosts(["*"]).allows(b"anything.example", "")


def test_the_gate_refuses_by_host_method_origin_and_websocket_version(tmp_path: Path) -> None:
    gate = Gate(StaticFiles(tmp_path), Hosts([]), origins=["https://chat.example.org"])
    ws = dict(host="localhost:5000", upgrade="websocket", connection="Upgrade", sec_websocket_version="13")
    assert gate.check(request(host="localhost:5000"), "127.0.0.1") is None
    assert gate.check(request("HEAD", host="localhost:5000"), "127.0.0.1") is None
    refused = gate.check(request(host="evil.example:5000"), "127.0.0.1")
    assert refused is not None and refused.status == 403 and "evil.example:5000" in refused.reason
    assert gate.check(request("POST", host="localhost"), "127.0.0.1") == Refusal(
        405, "GET or HEAD only", ((b"allow", b"GET, HEAD"),))
    assert gate.websocket(request(target="/ws?x=1")) and not gate.websocket(request(target="/wss"))
    assert gate.check(request(target="/ws", **ws), "127.0.0.1") is None  # no Origin: not a browser
    assert gate.check(request(target="/ws", origin="http://localhost:5000", **ws), "127.0.0.1") is None
    assert gate.check(request(target="/ws", origin="https://chat.example.org:443/", **ws), "127.0.0.1") is None
    refused = gate.check(request(target="/ws", origin="http://localhost:5001", **ws), "127.0.0.1")
    assert refused is not None and refused.status == 403
    for changes, status in [({"upgrade": "h2c"}, 426), ({"sec_websocket_version": "8"}, 426)]:
        refused = gate.check(request(target="/ws", **{**ws, **changes}), "127.0.0.1")
        assert refused is not None and refused.status == status
        assert dict(refused.extra) == {b"upgrade": b"websocket", b"sec-websocket-version": b"13"}
    refused = gate.check(request("POST", target="/ws", **ws), "127.0.0.1")
    assert refused is not None and refused.status == 405


def test_the_gate_answers_files_with_etags(tmp_path: Path) -> None:
    (tmp_path / "app.js").write_text("x")
    gate = Gate(StaticFiles(tmp_path), Hosts([]))
    answer = gate.answer(h11.Connection(h11.SERVER), request(target="/app.js?v=1", host="localhost"))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and body == b"x"
    etag = next(line.split(b": ")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"etag"))
    http = h11.Connection(h11.SERVER)
    assert gate.answer(http, request(target="/app.js", host="localhost", if_none_match=etag.decode())).startswith(
        b"HTTP/1.1 304 ")
    assert gate.answer(h11.Connection(h11.SERVER), request(target="/nope")).startswith(b"HTTP/1.1 404 ")


def test_static_files_keep_links_that_stay_inside_and_skip_the_others(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("no")
    folder = tmp_path / "static"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_text("a")
    os.symlink(outside / "secret", folder / "secret")
    os.symlink(outside, folder / "out")
    os.symlink("sub/a.txt", folder / "alias.txt")
    os.symlink(folder, folder / "sub" / "loop")  # back to the root: inside, and bounded by the depth limit
    table = StaticFiles(folder).table
    assert table["/alias.txt"][0] == table["/sub/a.txt"][0] == b"a"
    assert not [path for path in table if "secret" in path or path.startswith("/out/")]
    assert "/sub/loop/sub/a.txt" in table and max(path.count("/") for path in table) <= 6


def test_a_refusal_says_only_printable_ascii_and_is_never_cached() -> None:
    answer = plain_answer(403, "origin h\u00e9\x00\r\nSet-Cookie: x is not allowed",
                          extra=((b"allow", b"GET"),))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert body == b"origin h????Set-Cookie: x is not allowed\n"
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 403 Forbidden" and b"cache-control: no-store" in lines
    assert b"referrer-policy: no-referrer" in lines and b"allow: GET" in lines and b"connection: close" in lines
