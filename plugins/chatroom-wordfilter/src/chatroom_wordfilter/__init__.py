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

The settings are declared with the ``config_schema`` hook, so the server
checks them at start-up (``chatroom-server --check-config FILE`` reports a
bad value or a misspelled key) and ``ctx.config`` always holds valid values.
"""

from __future__ import annotations

import re
from typing import Any

from chatroom import Context, Setting, hookimpl

__version__ = "0.2.0"

DEFAULT_WORDS = ("darn", "heck")
MODES = ("mask", "drop")


@hookimpl
def config_schema() -> dict[str, Setting]:
    """The ``[plugins.wordfilter]`` table: checked, defaulted and frozen by the host."""
    return {
        "words": Setting(list, default=DEFAULT_WORDS, items=str, help="words to filter, whole words, any case"),
        "mode": Setting(str, default="mask", choices=MODES, help="mask the words, or drop the line"),
        "mask": Setting(str, default="*", min=1, max=1, help="the masking character"),
    }


class Settings:
    """The compiled settings: ``pattern`` (or None when there are no words), ``mode``, ``mask``."""

    def __init__(self, config: Any) -> None:
        words = [w.strip() for w in config["words"] if w.strip()]
        self.mode, self.mask = config["mode"], config["mask"]
        alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        self.pattern = re.compile(rf"\b(?:{alternatives})\b", re.IGNORECASE) if words else None

    def apply(self, text: str) -> str | None:
        """*text* with the words masked; None when it has none of them."""
        if self.pattern is None or not self.pattern.search(text):
            return None
        return self.pattern.sub(lambda m: m.group()[0] + self.mask * (len(m.group()) - 1), text)


def settings(ctx: Context) -> Settings:
    """The compiled settings, made once and kept in the plugin's ``ctx.state``."""
    cached = ctx.state.get("settings")
    if cached is None:
        cached = ctx.state["settings"] = Settings(ctx.config)
    return cached


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
