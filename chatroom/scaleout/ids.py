"""Member ids (and so guest nicks, ``guestN``) unique across every node: blocks of ids reserved in Redis.

A node takes a block of :data:`BLOCK` ids with one ``INCRBY`` on the counter ``PREFIX:ids`` at start-up
(blocking: before the loop runs) and the next block in the background when half of the current one is
used, so a connection never waits for Redis. If Redis stays unreachable until a block runs out, the node
goes on past its block (logged once): ids may then collide with another node's, which only a Redis outage
of :data:`BLOCK` / 2 connections can cause.

A Redis restarted empty has lost the counter: each block is reserved by :data:`RESERVE_LUA`, which first raises
the counter above every id in the presence hash (the members of every live node, registered again when their
node's link comes back) and above the last id the node itself holds; and every node raises it above its own
blocks as soon as its link is back (:meth:`IdBlocks.ready`). Loop thread only (the first block: any thread).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from chatroom.scaleout.link import RedisLink, Unavailable
from chatroom.scaleout.probe import BlockingRedis
from chatroom.scaleout.resp import ReplyError

__all__ = ["BLOCK", "RESERVE_LUA", "IdBlocks"]

log = logging.getLogger("chatroom.server")

#: Ids reserved at once.
BLOCK = 10_000

#: The next block (ARGV[1] ids) of the counter KEYS[1], never below ARGV[2] (ids known to the caller) nor below an
#: id of the presence hash KEYS[2] (fields ``node/id``); ARGV[1] "0" only raises the counter. Returns the block's
#: last id.
RESERVE_LUA = """
local floor = tonumber(ARGV[2])
for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
  local id = tonumber(string.match(field, '/(%d+)$'))
  if id and id > floor then floor = id end
end
if tonumber(redis.call('GET', KEYS[1]) or '0') < floor then redis.call('SET', KEYS[1], floor) end
return redis.call('INCRBY', KEYS[1], ARGV[1])
"""


class IdBlocks(Iterator[int]):
    """An endless iterator of member ids (``int``, from 1) unique across nodes; a transport's ``ids``.

    *first* is the last id of the first block (the ``INCRBY`` reply: :meth:`reserve` makes it); *link* and
    *key* reserve the next ones, above every id of the presence hash *presence*."""

    def __init__(self, first: int, link: RedisLink, key: str, presence: str) -> None:
        self.link = link
        self.key = key
        self.presence = presence
        self._next = first - BLOCK + 1
        self._end = first  # the last id of the current block
        self._spare: int | None = None  # the last id of the next block, once reserved
        self._asking = False
        self._overrun = False

    @staticmethod
    def reserve(redis: BlockingRedis, key: str, presence: str) -> int:
        """Reserve the first block on a blocking connection (above every id of the presence hash *presence*); its
        last id. Raises OSError, ValueError."""
        reply = redis.command("EVAL", RESERVE_LUA, 2, key, presence, BLOCK, 0)
        if isinstance(reply, ReplyError):
            raise ValueError(f"Redis refused the reservation of member ids ({key}): {reply}")
        return int(reply)

    def ready(self) -> None:
        """The link is (re)connected: raise the counter above this node's ids (Redis may have restarted empty)."""
        try:
            self.link.call("EVAL", RESERVE_LUA, 2, self.key, self.presence, 0, max(self._end, self._spare or 0))
        except Unavailable:
            pass  # again when the link is back

    def __next__(self) -> int:
        if self._next > self._end:
            if self._spare is not None:
                self._next, self._end, self._spare = self._spare - BLOCK + 1, self._spare, None
            elif not self._overrun:
                self._overrun = True
                log.error("member ids: no new block from Redis in time; going on past %d (ids may repeat on "
                          "another node until Redis is back)", self._end)
        if self._end - self._next < BLOCK // 2 and self._spare is None:
            self._ask()
        value = self._next
        self._next += 1
        return value

    def _ask(self) -> None:
        if self._asking:
            return
        try:
            self.link.call("EVAL", RESERVE_LUA, 2, self.key, self.presence, BLOCK, max(self._end, self._next),
                           on_reply=self._got)
            self._asking = True
        except Unavailable:
            pass  # asked again at the next id

    def _got(self, reply: object) -> None:
        self._asking = False
        if isinstance(reply, int):
            self._spare = reply
            if self._overrun and self._next > self._end:  # jump to the new block at once
                self._next, self._end, self._spare = reply - BLOCK + 1, reply, None
                self._overrun = False
