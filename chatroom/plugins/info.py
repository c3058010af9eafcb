"""What the host knows of one loaded plugin."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PluginInfo"]


@dataclass
class PluginInfo:
    """What is known of one plugin (for ``--list-plugins`` and ``/plugins``).

    ``source`` is ``"builtin"``, ``"entry point"`` or ``"file"``;
    ``distribution`` and ``version`` name the installed distribution (empty
    for a file), ``path`` the file a drop-in plugin came from. ``disabled``
    becomes True when the plugin was switched off after ``faults`` faults, by
    an admin, or by a quarantine: then ``quarantined`` says why (it blocked the
    loop repeatedly; ``""`` otherwise), ``off`` why the host switched it off
    otherwise (``"its startup hook raised"``; since plugin API 1.2). ``shut`` becomes True once its
    ``shutdown`` hook was called (at most once: when the host switches it off, else when the server stops).
    """

    name: str
    source: str
    distribution: str = ""
    version: str = ""
    path: str = ""
    hooks: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    faults: int = 0
    disabled: bool = False
    quarantined: str = ""
    off: str = ""
    shut: bool = False

    @property
    def origin(self) -> str:
        """``"chatroom-remind 0.1.0"`` for a distribution, the file path for a drop-in."""
        return self.path if self.source == "file" else f"{self.distribution} {self.version}".strip()
