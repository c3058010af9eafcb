"""The ``websockets`` reference server for bench/fanout_ws.py: what a Python developer would write instead.

Run as ``python bench/fanout_ws_server.py [--uvloop]``: prints
``websockets listening on 127.0.0.1:PORT`` (port picked by the kernel) and
serves until SIGTERM. Needs ``websockets`` (bench/requirements.txt; not a
runtime dependency of chatroom) and, with ``--uvloop``, ``uvloop``.

It does what chatroom does for the fan-out load, on chatroom's JSON wire
(docs/protocol.md, "WebSocket and JSON events"), with the library's own
asyncio server and its ``broadcast()``:

* on connect: a ``hello`` event (a guest nick), and the connection joins the
  one room (a ``set`` of connections);
* a text message up is lines of the line protocol: ``/nick NAME`` answers a
  ``line`` event ``OK nick NAME`` to the sender alone, another ``/command``
  ``ERROR - Command not understood``, ``//text`` is chat ``/text``, any other
  line is chat;
* a chat line becomes one ``msg`` event (``room``, ``id`` counting up,
  ``time`` ISO UTC with ms, ``nick``, ``account`` null, ``text``,
  ``history`` false; compact JSON as ``chatroom.wire.jsonwire`` writes it),
  serialised once and handed to ``websockets.broadcast(CLIENTS - {sender},
  event)``: every *other* member gets it, as in chatroom.

Configured as the library's documentation advises for a broadcast server of
this kind, nothing tuned beyond it: ``compression=None`` (the default
negotiates permessage-deflate, which makes ``broadcast`` compress per
connection; chatroom declines compression, so the bench compares frames that
are the same bytes), every other option at its default (``write_limit``
32 KiB, ``max_queue`` 16, ``max_size`` 1 MiB, ``ping_interval`` 20 s; no
origin check). ``broadcast`` writes each recipient's frame at once
(``transport.write``, no coalescing: asyncio's transport ``send``s it right
away when the recipient's buffer is empty) and has no backpressure. Plain
asyncio by default (``asyncio.run``); ``--uvloop`` runs the same code on uvloop.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve

HOST = "127.0.0.1"
ROOM = "#lobby"
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def iso_time(ts: float) -> str:
    """*ts* (Unix seconds) as UTC ISO 8601 with milliseconds, as chatroom's events carry it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".%03dZ" % (int(ts * 1000) % 1000)


class Room:
    """The one room: its members and the next history id."""

    def __init__(self) -> None:
        self.clients: set[ServerConnection] = set()
        self.next_id = 1
        self.guests = 0

    def chat(self, sender: ServerConnection, nick: str, text: str) -> None:
        """Broadcast *text* by *nick* as one ``msg`` event to every member but *sender*."""
        event: dict[str, Any] = {"type": "msg", "room": ROOM, "id": self.next_id, "time": iso_time(time.time()),
                                 "nick": nick, "account": None, "text": text, "history": False}
        self.next_id += 1
        broadcast(self.clients - {sender}, _dumps(event))

    async def handler(self, ws: ServerConnection) -> None:
        """One connection: hello, then lines up until it closes."""
        self.guests += 1
        nick = f"guest{self.guests}"
        await ws.send(_dumps({"type": "hello", "protocol": 1, "server": "websockets-baseline", "version": "0",
                              "nick": nick, "rooms": [ROOM], "max_line": 65536, "max_frame": 4194304}))
        self.clients.add(ws)
        try:
            async for message in ws:
                if not isinstance(message, str):
                    continue
                for line in message.splitlines():
                    if line.startswith("//"):
                        self.chat(ws, nick, line[1:])
                    elif line.startswith("/nick "):
                        nick = line[6:].strip()
                        await ws.send(_dumps({"type": "line", "kind": "ok", "text": f"OK nick {nick}"}))
                    elif line.startswith("/"):
                        await ws.send(_dumps({"type": "line", "kind": "error",
                                              "text": "ERROR - Command not understood"}))
                    elif line:
                        self.chat(ws, nick, line)
        finally:
            self.clients.discard(ws)


async def main() -> None:
    """Serve on a kernel-picked port of 127.0.0.1 until killed."""
    room = Room()
    async with serve(room.handler, HOST, 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"websockets listening on {HOST}:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    if "--uvloop" in sys.argv[1:]:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
