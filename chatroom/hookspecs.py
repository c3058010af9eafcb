"""Kept for plugins written before chatroom 0.2: the hook specifications now live in
:mod:`chatroom.plugins.hookspecs`; import ``hookimpl`` from :mod:`chatroom`."""

from chatroom.plugins.hookspecs import PROJECT, hookimpl, hookspec

__all__ = ["PROJECT", "hookimpl", "hookspec"]
