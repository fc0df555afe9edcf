"""Logging: everything goes through `logging.getLogger("confindex")` and its children.

The library only logs; the CLI decides where it goes (`-v`/`-vv` on stderr, `--log-file` with
full detail). Unexpected exceptions (bugs) are logged with their traceback; on the terminal a
bug is one line unless `-v` asks for the traceback.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

LOGGER = "confindex"
_MARK = "_confindex_handler"


class _Console(logging.Handler):
    """One sanitised line per record on the current stderr (records quote URLs, file names
    and titles); with -v, the level and, for errors, the traceback too."""

    def __init__(self, level: int, verbose: bool) -> None:
        super().__init__(level)
        self.verbose = verbose

    def emit(self, record: logging.LogRecord) -> None:
        from confindex.sanitize import terminal

        try:
            line = terminal(record.getMessage())
            if self.verbose and record.levelno != logging.WARNING:
                line = f"{record.levelname.lower()}: {line}"
            out = [line]
            if self.verbose and record.exc_info:
                out.append(terminal(self._tb(record), multiline=True))
            sys.stderr.write("\n".join(out) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)

    @staticmethod
    def _tb(record: logging.LogRecord) -> str:
        return logging.Formatter().formatException(record.exc_info).rstrip()  # type: ignore[arg-type]


class _ConsoleFilter(logging.Filter):
    """Records logged with `extra={"console": False}` (a bug the CLI reports in its own one
    line) reach stderr only when verbose."""

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        return self.verbose or getattr(record, "console", True)


def has_console() -> bool:
    """Whether `setup` has routed the confindex logger already (in this process)."""
    return any(getattr(h, _MARK, False) for h in logging.getLogger(LOGGER).handlers)


def setup(verbosity: int = 0, log_file: str | Path | None = None) -> logging.Logger:
    """Route the confindex logger: stderr at WARNING (INFO with -v, DEBUG with -vv), and
    `log_file` at DEBUG with times and processes. Idempotent (replaces its own handlers)."""
    logger = logging.getLogger(LOGGER)
    for h in list(logger.handlers):
        if getattr(h, _MARK, False):
            logger.removeHandler(h)
            h.close()
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    console = _Console(level, verbosity > 0)
    console.addFilter(_ConsoleFilter(verbosity > 0))
    setattr(console, _MARK, True)
    logger.addHandler(console)
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


@contextlib.contextmanager
def suppressed(logger: logging.Logger, what: str, *kinds: type[BaseException]) -> Iterator[None]:
    """Like `contextlib.suppress(*kinds)` (default: Exception) for best-effort housekeeping,
    but never silent: the exception goes to the debug log (-vv, --log-file) with its
    traceback."""
    caught: tuple[type[BaseException], ...] = kinds or (Exception,)
    try:
        yield
    except caught:
        logger.debug("%s failed (ignored)", what, exc_info=True)
