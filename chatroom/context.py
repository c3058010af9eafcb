"""Kept for plugins written before chatroom 0.2: ``Context`` now lives in :mod:`chatroom.plugins.context`;
import it from :mod:`chatroom` (``from chatroom import Context``)."""

from chatroom.plugins.context import Context, LineHandler

__all__ = ["Context", "LineHandler"]
