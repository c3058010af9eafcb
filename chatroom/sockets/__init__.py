"""Floor 1b, the sockets: the non-blocking socket plumbing the server and the client share.

:mod:`~chatroom.sockets.outqueue` queues a connection's output and writes it
with one ``sendmsg`` per call, :mod:`~chatroom.sockets.tlssocket` gives an
``ssl.SSLSocket`` the ``recv``/``sendmsg`` a non-blocking loop and the queue
use, and :mod:`~chatroom.sockets.wakeup` wakes a ``selectors`` loop from
another thread or a signal. Beside the room model, above the sans-I/O wire:
the server's loop and transports (``chatroom.net``) and the client
(``chatroom.client``) import it; it imports nothing of chatroom, and neither
the wire nor the room model imports it (import-linter contracts in
``pyproject.toml``).
"""
