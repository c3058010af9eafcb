"""The terminal client, ``chatroom-client``: a wing of its own that shares only the wire
(:mod:`chatroom.wire`) with the server (an import-linter contract checks it)."""
