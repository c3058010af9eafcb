"""The node (chatroom/scaleout/node.py) in-process on a real loop and a real redis-server: a host whose clock is
off Redis's still publishes (deadlines follow Redis's clock), and the pass comes back in order through the
hub's deliver_batch."""

from __future__ import annotations

import time
from typing import Any

from test_redis_link import pump

from chatroom.model.history import Entry
from chatroom.model.hub import Hub
from chatroom.net.loop import Loop
from chatroom.scaleout.node import Node


def test_a_host_clock_half_a_minute_behind_redis_still_publishes(redis_server) -> None:  # type: ignore[no-untyped-def]
    loop = Loop()
    hub = Hub(None, clock=lambda: time.time() - 30.0)  # without the offset every deadline would be 30 s past
    told: list[Any] = []
    node = Node(loop, hub, None, url=redis_server.url, name="skewed", timeout=1.0, tell=lambda m, line: told.append(line))
    delivered: list[list[tuple[int, Entry]]] = []
    hub.deliver_batch = lambda room, pending: delivered.append(pending)  # type: ignore[method-assign]
    try:
        node.start()
        pump(loop, lambda: node.link.ready and node._joined and abs(node.clock_offset - 30.0) < 1.0)
        room = hub.default_room
        node.publish(room, [(0, Entry(room.name, 0, hub.clock(), "notice", "", None, "one")),
                            (0, Entry(room.name, 0, hub.clock(), "notice", "", None, "two"))])
        pump(loop, lambda: node.published == 1 or node.refused == 1)
        assert node.refused == 0 and not told
        pump(loop, lambda: delivered)
        assert [event.text for _, event in delivered[0]] == ["one", "two"]
        node.clock_offset = 0.0  # what it would be without TIME: Redis refuses the late call, nothing is published
        node.publish(room, [(0, Entry(room.name, 0, hub.clock(), "notice", "", None, "three"))])
        pump(loop, lambda: node.refused == 1)
        assert node.published == 1 and len(delivered) == 1
    finally:
        node.close()
        loop.close()


def test_a_kick_redis_did_not_take_is_told_to_its_kicker(redis_server) -> None:  # type: ignore[no-untyped-def]
    """A kick sent in the moment Redis was lost (the link still up when it was made: not refused at once) is done
    on this node only, and undone when Redis is back: its kicker is told, as a speaker is of its line."""
    from chatroom.model.member import Member
    from chatroom.model.notice import Notice

    loop = Loop()
    hub = Hub(None)
    told: list[tuple[str, str]] = []
    node = Node(loop, hub, None, url=redis_server.url, name="a", tell=lambda m, line: told.append((m.nick, line)))
    try:
        alice = Member(7, "alice")
        hub.add(alice)
        room = hub.default_room
        kick = Notice(room.name, 0, 0.0, "part", "bob", None, "alice kicked bob from lobby", "", False, "alice", "kick")
        node._not_published(room, [(0, kick)], "Redis connection lost (test)")
        assert told == [("alice", "ERROR bob was kicked from lobby on this server only: the servers' shared store "
                                   "(Redis) is unavailable; try again (Redis connection lost (test))")]
    finally:
        node.close()
        loop.close()
