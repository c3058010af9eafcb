"""chatroom plugin: masks (``d***``) or drops chat lines that contain unwanted words.

It implements the ``chat_message`` hook, which sees every chat line before
it is broadcast and may rewrite it (return a ``str``) or drop it (return
``False``). Settings, in the ``[plugins.wordfilter]`` table of the server's
``--config`` file:

- ``words``: the words to filter (list of str; default ``["darn", "heck"]``),
  matched as whole words, case-insensitively;
- ``mode``: ``"mask"`` (default: keep the first letter, star the rest) or
  ``"drop"`` (the line is not sent; the sender is told why);
- ``mask``: the masking character (default ``"*"``).

A bad setting is logged under ``[ERROR]`` at start-up and the default used.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from chatroom import hookimpl
from chatroom.context import Context

__version__ = "0.1.0"

DEFAULT_WORDS = ("darn", "heck")
MODES = ("mask", "drop")


class Settings:
    """The parsed ``[plugins.wordfilter]`` table: ``pattern`` (compiled, or None), ``mode``, ``mask``."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.problems: list[str] = []
        words = config.get("words", list(DEFAULT_WORDS))
        if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
            self.problems.append(f"words must be a list of non-empty strings, not {words!r}")
            words = list(DEFAULT_WORDS)
        self.mode = config.get("mode", "mask")
        if self.mode not in MODES:
            self.problems.append(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
            self.mode = "mask"
        self.mask = config.get("mask", "*")
        if not isinstance(self.mask, str) or len(self.mask) != 1:
            self.problems.append(f"mask must be one character, not {self.mask!r}")
            self.mask = "*"
        alternatives = "|".join(re.escape(w.strip()) for w in sorted(words, key=len, reverse=True))
        self.pattern = re.compile(rf"\b(?:{alternatives})\b", re.IGNORECASE) if words else None

    def apply(self, text: str) -> str | None:
        """*text* with the words masked; None when it has none of them."""
        if self.pattern is None or not self.pattern.search(text):
            return None
        return self.pattern.sub(lambda m: m.group()[0] + self.mask * (len(m.group()) - 1), text)


def settings(ctx: Context) -> Settings:
    """This room's settings, parsed once and kept in the plugin's ``ctx.state``."""
    cached = ctx.state.get("settings")
    if cached is None:
        cached = ctx.state["settings"] = Settings(ctx.config)
        for problem in cached.problems:
            ctx.log.error("config [plugins.%s]: %s; using the default", ctx.plugin, problem)
    return cached


@hookimpl
def startup(ctx: Context) -> None:
    """Parse the settings at start-up, so a bad config file is reported at once."""
    settings(ctx)


@hookimpl
def chat_message(ctx: Context, text: str) -> str | bool | None:
    """Mask the filtered words, or drop the line in ``drop`` mode."""
    current = settings(ctx)
    masked = current.apply(text)
    if masked is None:
        return None  # nothing to filter: leave the line to the next plugin
    if current.mode == "drop":
        ctx.reply("* your message was not sent: it contains a filtered word")
        return False
    return masked
