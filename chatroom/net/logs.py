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
