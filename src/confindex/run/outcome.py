"""What a run did, typed: one `Outcome` per input (`RunResult` in a bulk run, with why it was
skipped and which Dask worker did it) and the `RunSummary` of a run."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from confindex.store.stages import Status


@dataclass
class Outcome:
    """What happened to one input."""

    source: str
    status: str  # a stages.Status value: done | skipped | failed | pending
    recording_id: str | None = None
    title: str | None = None
    error: str | None = None
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    turns: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: str(getattr(self, f.name)) if f.name == "status" else getattr(self, f.name)
            for f in fields(Outcome)
        }


@dataclass
class RunResult(Outcome):
    """One input of a bulk run: its Outcome, why it was skipped (or is pending), and which
    Dask worker transcribed it (`on_cluster`: the run used Dask, so the field is reported)."""

    reason: str | None = None
    worker: str | None = None
    on_cluster: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = {**super().to_dict(), "reason": self.reason}
        if self.on_cluster:
            out["worker"] = self.worker
        return out

    def outcome(self) -> Outcome:
        return Outcome(**{f.name: getattr(self, f.name) for f in fields(Outcome)})


@dataclass
class RunSummary:
    results: list[RunResult]
    wall_seconds: float
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def audio_seconds(self) -> float:
        return sum(r.audio_seconds or 0.0 for r in self.results if r.status == Status.DONE)

    @property
    def realtime_factor(self) -> float | None:
        """Audio seconds processed per wall second (higher is faster)."""
        a = self.audio_seconds
        return round(a / self.wall_seconds, 2) if a and self.wall_seconds > 0 else None

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.results if r.status == Status.FAILED]

    def to_dict(self) -> dict[str, Any]:
        return {
            "done": self.count(Status.DONE),
            "skipped": self.count(Status.SKIPPED),
            "failed": self.count(Status.FAILED),
            "audio_seconds": round(self.audio_seconds, 3),
            "audio_hours": round(self.audio_seconds / 3600, 4),
            "wall_seconds": round(self.wall_seconds, 3),
            "realtime_factor": self.realtime_factor,
            "interrupted": self.interrupted,
        }
