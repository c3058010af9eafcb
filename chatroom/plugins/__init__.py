"""Floor 4, plugins: hookspecs, the plugin manager, the command registry and dispatch, and the
context, the public face of the floors below for plugin code.

Plugin authors import from :mod:`chatroom` (the public plugin API); the
modules here are the host's.
"""
