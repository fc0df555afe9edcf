"""Errors a user can act on: each carries a one-line message and an exit code."""

from __future__ import annotations

import errno


class ConfindexError(Exception):
    """An expected failure: the CLI prints its message on one line and exits with `exit_code`."""

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return " ".join(str(self).split())


class InputError(ConfindexError):
    """The user gave something we cannot use (missing file, bad URL, not media)."""


class MediaError(InputError):
    """The media could not be decoded, or holds no speech."""


class DownloadError(InputError):
    """yt-dlp could not fetch the URL; `status` is the HTTP status when a server answered one.

    `transient` (decided on the status, or on the kind of network failure — never on message
    text) says whether trying again later may work: 429, 5xx, timeouts, dropped connections.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        transient: bool | None = None,
        exit_code: int | None = None,
    ) -> None:
        super().__init__(message, exit_code=exit_code)
        self.status = status
        if transient is None:  # rate limited (429) or a server error (5xx)
            transient = status is not None and (status == 429 or status >= 500)
        self.transient = transient


class ModelError(ConfindexError):
    """A model could not be found, verified or loaded."""


class DeviceError(ConfindexError):
    """The requested compute device is not available."""


class QueryError(ConfindexError):
    """A search query could not be parsed; exit code 2 like a usage error."""

    exit_code = 2


class NotFoundError(ConfindexError):
    """A recording, speaker or file named by the user does not exist."""


class IndexDamagedError(ConfindexError):
    """The search index cannot be read: `confindex index --rebuild` rebuilds it."""


class LockedError(ConfindexError):
    """Another confindex process holds the lock we need."""

    exit_code = 75  # EX_TEMPFAIL: try again later


class ConflictError(ConfindexError):
    """A save based on a version of a transcript that someone else has changed since."""

    exit_code = 75  # try again (after reloading)


def os_error_message(exc: OSError) -> str:
    """One line for an OSError met while working on a recording. A full disk says so: its
    bare strerror ("No space left on device", no file named) was all a fetch printed when the
    index step ran out of space."""
    where = f": {exc.filename}" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full ({exc.strerror or exc}){where}: free some space and try again"
    return f"{exc.strerror or exc}{where}"
