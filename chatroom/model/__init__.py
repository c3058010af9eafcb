"""Floor 2, the room model: rooms, members, nicks, topics and history.

No sockets, no selectors, no plugins: the model imports only the codecs
(:mod:`chatroom.wire`) and the standard library, so it can be tested alone.
"""
