"""The RESP2 codec (chatroom/scaleout/resp.py) and Redis URLs (address.py), without sockets."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given, strategies as st

from chatroom.scaleout.address import parse_redis_url
from chatroom.scaleout.resp import Codec, ProtocolError, ReplyError, pack


def test_pack_encodes_str_bytes_and_numbers_as_bulk_strings() -> None:
    assert pack("SET", "k", b"v\r\n", 3, 1.5) == (
        b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n$1\r\n3\r\n$3\r\n1.5\r\n")
    assert pack("ECHO", "é") == b"*2\r\n$4\r\nECHO\r\n$2\r\n\xc3\xa9\r\n"


WIRE = (b"+OK\r\n:-42\r\n$-1\r\n*-1\r\n*0\r\n$0\r\n\r\n-WRONGTYPE Operation against a key\r\n"
        b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\na\r\nbc\r\n*2\r\n*1\r\n:1\r\n$3\r\nabc\r\n")


def _expected_ok(replies: list) -> None:  # type: ignore[type-arg]
    assert replies[:3] == [b"OK", -42, None]
    assert replies[3] is None and replies[4] == [] and replies[5] == b""
    error = replies[6]
    assert isinstance(error, ReplyError) and error.code == "WRONGTYPE" and str(error).endswith("against a key")
    assert replies[7] == [b"message", b"ch", b"a\r\nbc"]
    assert replies[8] == [[1], b"abc"]
    assert len(replies) == 9


def test_replies_of_every_type_in_order_and_errors_are_values() -> None:
    codec = Codec()
    codec.feed(WIRE)
    _expected_ok(list(codec.replies()))
    assert list(codec.replies()) == []


@given(st.lists(st.integers(min_value=1, max_value=len(WIRE) - 1), max_size=12))
def test_replies_are_the_same_whatever_the_bytes_are_cut_into(cuts: list[int]) -> None:
    codec = Codec()
    replies = []
    start = 0
    for cut in [*sorted(set(cuts)), len(WIRE)]:
        codec.feed(WIRE[start:cut])
        replies += list(codec.replies())  # a partial reply waits; complete ones come out
        start = cut
    _expected_ok(replies)


def test_bytes_that_are_not_resp_are_a_protocol_error() -> None:
    codec = Codec()
    codec.feed(b"+OK\r\nHTTP/1.1 400 Bad Request\r\n")
    replies = codec.replies()
    assert next(replies) == b"OK"
    with pytest.raises(ProtocolError, match="reply type"):
        next(replies)


def test_a_partial_reply_over_the_bound_is_a_protocol_error_not_memory() -> None:
    codec = Codec(max_reply=1000)
    codec.feed(b"$100000\r\n" + b"x" * 500)
    assert list(codec.replies()) == []  # waits for more
    codec.feed(b"x" * 600)
    with pytest.raises(ProtocolError, match="more than 1000 bytes"):
        list(codec.replies())


@pytest.mark.parametrize("url, family, host, port, db, user, password", [
    ("redis://127.0.0.1:6380/2", socket.AF_UNSPEC, "127.0.0.1", 6380, 2, None, None),
    ("redis://redis.example", socket.AF_UNSPEC, "redis.example", 6379, 0, None, None),
    ("redis://:s%40cret@[::1]:7000", socket.AF_UNSPEC, "::1", 7000, 0, None, "s@cret"),
    ("redis://bob:pw@h/3", socket.AF_UNSPEC, "h", 6379, 3, "bob", "pw"),
    ("unix:///run/redis/redis.sock", socket.AF_UNIX, "/run/redis/redis.sock", 0, 0, None, None),
    ("unix://:pw@/tmp/r.sock?db=5", socket.AF_UNIX, "/tmp/r.sock", 0, 5, None, "pw"),
    ("redis+unix:///tmp/r.sock", socket.AF_UNIX, "/tmp/r.sock", 0, 0, None, None),
])
def test_redis_urls(url: str, family: int, host: str, port: int, db: int, user: str | None,
                    password: str | None) -> None:
    address = parse_redis_url(url)
    assert tuple(address) == (family, host, port, db, user, password)
    assert "pw" not in str(address) and "cret" not in str(address)


@pytest.mark.parametrize("url, reason", [
    ("rediss://h:6379", "TLS"),
    ("http://h", "not a Redis URL"),
    ("redis://h:99999", "not a Redis URL"),
    ("redis:///0", "no host"),
    ("redis://h/x", "database number"),
    ("unix://", "no socket path"),
    ("127.0.0.1:6379", "scheme"),
])
def test_bad_redis_urls_are_one_line_reasons(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as info:
        parse_redis_url(url)
    assert "\n" not in str(info.value)
