"""Scale-out: several ``chatroom-server`` processes that are one chat, through Redis (issue 20, docs/scale-out.md).

Only this package imports ``hiredis`` (the ``chatroom[redis]`` extra): a server without ``--redis``
never imports it (an import-linter contract and a test check both). Its parts, bottom up:

- :mod:`chatroom.scaleout.resp`: the RESP2 codec, sans-I/O (bytes in, replies out), on hiredis'
  ``Reader`` and ``pack_command``;
- :mod:`chatroom.scaleout.address`: ``redis://`` and ``unix://`` URLs;
- :mod:`chatroom.scaleout.link`: one non-blocking Redis connection owned by the server's loop
  (registered in its selector like any connection): a bounded output queue, per-command deadlines,
  reconnection with backoff; never blocks the loop;
- :mod:`chatroom.scaleout.bus`: the Lua script that stores and publishes a room's lines of one loop pass.
"""
