"""chatroom: a plugin-based chat-room server and terminal client."""

__version__ = "0.1.0"
