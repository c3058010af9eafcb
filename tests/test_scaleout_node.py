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
