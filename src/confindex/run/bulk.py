"""The names older code and scripts import for bulk runs: the scheduler (scheduler.py) and its
executors (executors.py) do the work, outcome.py holds the typed results."""

from __future__ import annotations

from typing import Any

from confindex.run.executors import ENV_STAGE_DELAY, Prepared
from confindex.run.job import FetchOptions
from confindex.run.outcome import Outcome, RunResult, RunSummary
from confindex.run.scheduler import EXPECTED, BulkOptions, BulkRunner

__all__ = [
    "ENV_STAGE_DELAY",
    "EXPECTED",
    "BulkOptions",
    "BulkRunner",
    "Outcome",
    "Prepared",
    "RunResult",
    "RunSummary",
    "options_from_dict",
    "options_to_dict",
]


def options_to_dict(options: FetchOptions) -> dict[str, Any]:
    return options.to_dict()


def options_from_dict(d: dict[str, Any]) -> FetchOptions:
    """FetchOptions stored by an earlier run (for `resume`); unknown keys are ignored."""
    return FetchOptions.from_dict(d)
