"""Files for IRC clients, without DCC: ``SENDFILE [#room]`` gives a one-time upload link; offers come as links.

An IRC client has no file frames: files offered to its rooms reach it as a
``NOTICE`` with a one-time download link on the web listener
(:mod:`chatroom.net.filelinks`, :mod:`chatroom.net.webfiles`), and it offers
one with ``SENDFILE`` (irssi: ``/quote sendfile #room``), which answers with
a one-time upload link: ``curl -T FILE URL`` makes the file an ordinary
offer to the room, under the member's quota, with the room's consent. The
name is chatroom's ``/sendfile``; ``/quote sendfile NAME SIZE`` from a
line-protocol habit gets the same link (the name and size come with the
upload). Loop thread only.
"""

from __future__ import annotations

from chatroom.model.names import room_key
from chatroom.net.filelinks import NO_WEB
from chatroom.net.irc import IrcConnection, IrcDoor
from chatroom.wire.irc import Message

__all__ = ["install", "sendfile"]


def sendfile(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``SENDFILE [#room]``: a ``NOTICE`` with a one-time upload link to *#room* (default: the one channel the
    client is in); ``442`` for a channel it is not in, ``461`` when it is in several and named none."""
    named = msg.params[0] if msg.params and msg.params[0].startswith("#") else None
    if named is not None:
        key = room_key(named)
        room = conn.rooms.get(key) if key else None
        if room is None:
            door.numeric(conn, "442", named, "You're not on that channel")
            return 1.0
    elif len(conn.rooms) == 1:
        room = next(iter(conn.rooms.values()))
    else:
        door.numeric(conn, "461", "SENDFILE", "Name the channel: SENDFILE #channel")
        return 1.0
    relay = door.app.relay
    url = relay.links.upload(conn, room)
    if url is None:
        door.app.send_line(conn, f"* {NO_WEB}")
        return 2.0
    door.app.send_line(conn, f"* send a file to {room.name}: curl -T FILE {url} (one upload, valid for "
                             f"{relay.links.upload_timeout:g} s; the room is asked as for any file)")
    return 2.0


def install(door: IrcDoor) -> None:
    """Register ``SENDFILE`` with *door*."""
    door.command("SENDFILE", sendfile)
