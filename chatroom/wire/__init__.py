"""Floor 1, the wire: sans-I/O codecs (bytes in, events out), no sockets.

:mod:`~chatroom.wire.lines` is the line protocol with its frames,
:mod:`~chatroom.wire.render` how room events look on it,
:mod:`~chatroom.wire.jsonwire` the browser's JSON events, and
:mod:`~chatroom.wire.textsafety`, :mod:`~chatroom.wire.numbers` and
:mod:`~chatroom.wire.filenames` make untrusted text, numbers and file names
safe. Nothing here touches a socket (the socket plumbing both ends share is
:mod:`chatroom.sockets`), and nothing imports anything else of chatroom (an
import-linter contract checks both).
"""
