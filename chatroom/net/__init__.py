"""Floor 3, transports and the loop: the ``selectors`` loop, connections and their budgets, the line
transport over TCP, timers and worker threads, and the file relay.

Imports the room model and the wire below it, never the plugin layer: the
loop hands lines to an application object given at construction.
"""
