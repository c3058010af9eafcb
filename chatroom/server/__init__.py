"""Floor 5, the server: the assembly of the floors below (:mod:`chatroom.server.app`) and the
``chatroom-server`` console script (:mod:`chatroom.server.cli`)."""
