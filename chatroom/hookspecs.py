"""Kept for plugins written before chatroom 0.2: the hook specifications now live in
:mod:`chatroom.plugins.hookspecs`; import ``hookimpl`` from :mod:`chatroom`."""

import warnings

warnings.warn("chatroom.hookspecs is deprecated since plugin API 1.0 and will go in 2.0: from chatroom import hookimpl",
              DeprecationWarning, stacklevel=2)


from chatroom.plugins.hookspecs import PROJECT, hookimpl, hookspec

__all__ = ["PROJECT", "hookimpl", "hookspec"]
