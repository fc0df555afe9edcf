"""The names older code and scripts import for bulk runs: the scheduler (scheduler.py) and its
executors (executors.py) do the work, outcome.py holds the typed results."""

from __future__ import annotations

from confindex.run.executors import ENV_STAGE_DELAY, Prepared
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
]
