"""Typed names for the stages a recording goes through and the outcome of a run for it.

Both are `str` enums, so they are stored in SQLite and JSON as their plain values
("indexed", "failed", …) and compare equal to those strings: old ledgers and `--json` readers
see exactly what they saw before.
"""

from __future__ import annotations

from enum import Enum


class Stage(str, Enum):
    """A ledger row's last finished stage (in order), or a terminal state."""

    QUEUED = "queued"
    DOWNLOADED = "downloaded"
    TRANSCRIBED = "transcribed"
    DIARIZED = "diarized"
    INDEXED = "indexed"
    FAILED = "failed"
    DUPLICATE = "duplicate"

    def __str__(self) -> str:
        return self.value

    @property
    def terminal(self) -> bool:
        return self in (Stage.INDEXED, Stage.FAILED, Stage.DUPLICATE)


class Status(str, Enum):
    """What a run did with one input."""

    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    PENDING = "pending"

    def __str__(self) -> str:
        return self.value


# Stages a row passes through on success, in order.
PROGRESS = (Stage.QUEUED, Stage.DOWNLOADED, Stage.TRANSCRIBED, Stage.DIARIZED, Stage.INDEXED)
TERMINAL = (Stage.INDEXED, Stage.FAILED, Stage.DUPLICATE)
