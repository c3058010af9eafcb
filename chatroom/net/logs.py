"""Server log: Python ``logging`` with the ttweet origin's categories.

Every record is tagged ``[GENERAL]`` (start, stop, plugins loaded, posts),
``[CONNECTION]`` (connect, disconnect, name changes, dropped slow clients) or
``[ERROR]`` (rejected input, plugin faults). Pass the category with
``extra={"category": CONNECTION}``; records at WARNING or above with no
category are ``[ERROR]``, the rest ``[GENERAL]``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

GENERAL = "GENERAL"
CONNECTION = "CONNECTION"
ERROR = "ERROR"

CONN = {"category": CONNECTION}
ERR = {"category": ERROR}

FORMAT = "%(asctime)s [%(category)s] %(name)s: %(message)s"


class CategoryFilter(logging.Filter):
    """Give every record a ``category`` attribute if it has none."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "category"):
            record.category = ERROR if record.levelno >= logging.WARNING else GENERAL
        return True


def setup_logging(log_file: Path | None, *, stderr: bool = True, level: int = logging.INFO) -> logging.Logger:
    """Configure the ``chatroom`` logger to write to *log_file* and/or stderr; return it.

    Replaces handlers set by an earlier call, so it can be called once per
    server start (tests start several servers in one process).
    """
    logger = logging.getLogger("chatroom")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    formatter = logging.Formatter(FORMAT)
    handlers: list[logging.Handler] = []
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    if stderr:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(CategoryFilter())
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


#: Seconds between two log lines about one connection's rejected input.
REJECT_LOG_INTERVAL = 10.0

_log = logging.getLogger("chatroom.server")


def log_rejected(conn: Any, what: str, now: float) -> None:
    """Log ``NICK sent WHAT`` under ``[ERROR]``, at most once per :data:`REJECT_LOG_INTERVAL` seconds per
    connection (the next line says how many were not logged), so a flood of bad input cannot flood the log.

    *conn* needs ``nick``, ``unknown_at`` and ``unknown_quiet`` (a
    :class:`~chatroom.net.connection.Connection`); *now* is loop seconds.
    """
    if now - conn.unknown_at >= REJECT_LOG_INTERVAL:
        more = f" (and {conn.unknown_quiet} more rejected since the last report)" if conn.unknown_quiet else ""
        _log.warning("%s sent %s%s", conn.nick, what, more, extra=ERR)
        conn.unknown_at = now
        conn.unknown_quiet = 0
    else:
        conn.unknown_quiet += 1
