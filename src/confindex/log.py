"""Logging: everything goes through `logging.getLogger("confindex")` and its children.

The library only logs; the CLI decides where it goes (`-v`/`-vv` on stderr, `--log-file` with
full detail). Unexpected exceptions (bugs) are logged with their traceback; on the terminal a
bug is one line unless `-v` asks for the traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

LOGGER = "confindex"
_MARK = "_confindex_handler"


class _Console(logging.Formatter):
    """One line per record on stderr; the traceback only when verbose."""

    def __init__(self, verbose: bool) -> None:
        super().__init__("confindex: %(levelname)s: %(message)s")
        self.verbose = verbose

    def formatException(self, ei: Any) -> str:
        return super().formatException(ei) if self.verbose else ""

    def format(self, record: logging.LogRecord) -> str:
        if not self.verbose:
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        return super().format(record)


class _ConsoleFilter(logging.Filter):
    """Records logged with `extra={"console": False}` (a bug the CLI reports in its own one
    line) reach stderr only when verbose."""

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        return self.verbose or getattr(record, "console", True)


def setup(verbosity: int = 0, log_file: str | Path | None = None) -> logging.Logger:
    """Route the confindex logger: stderr at WARNING (INFO with -v, DEBUG with -vv), and
    `log_file` at DEBUG with times and processes. Idempotent (replaces its own handlers)."""
    logger = logging.getLogger(LOGGER)
    for h in list(logger.handlers):
        if getattr(h, _MARK, False):
            logger.removeHandler(h)
            h.close()
    console = logging.StreamHandler()
    console.setLevel(
        logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    )
    console.setFormatter(_Console(verbosity > 0))
    console.addFilter(_ConsoleFilter(verbosity > 0))
    setattr(console, _MARK, True)
    logger.addHandler(console)
    level = console.level
    if log_file:
        fh = logging.FileHandler(log_file, encoding="utf-8")
        fh.setLevel(logging.DEBUG)
        fh.setFormatter(
            logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s: %(message)s")
        )
        setattr(fh, _MARK, True)
        logger.addHandler(fh)
        level = logging.DEBUG
    logger.setLevel(level)
    return logger


class YtDlpLogger:
    """yt-dlp's messages into `confindex.yt_dlp`. Its errors also reach us as exceptions (with
    a one-line message), so they are logged at DEBUG; warnings at INFO (visible with -v)."""

    def __init__(self) -> None:
        self.log = logging.getLogger(f"{LOGGER}.yt_dlp")

    def debug(self, msg: str) -> None:
        self.log.debug("%s", msg)

    def info(self, msg: str) -> None:
        self.log.debug("%s", msg)

    def warning(self, msg: str) -> None:
        self.log.info("%s", msg)

    def error(self, msg: str) -> None:
        self.log.debug("%s", msg)
