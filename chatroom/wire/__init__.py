"""Floor 1, the wire: sans-I/O codecs (bytes in, events out) and the byte plumbing both ends share.

:mod:`~chatroom.wire.lines` is the line protocol with its frames,
:mod:`~chatroom.wire.render` how room events look on it, and
:mod:`~chatroom.wire.textsafety`, :mod:`~chatroom.wire.numbers` and
:mod:`~chatroom.wire.filenames` make untrusted text, numbers and file names
safe. :mod:`~chatroom.wire.outqueue` and :mod:`~chatroom.wire.wakeup` are the
only modules here that touch a socket. Nothing in this package imports
anything else of chatroom (an import-linter contract checks it).
"""
