"""The result types of `Archive` methods that are not data of a lower layer (transcripts, hits,
speakers): plain dataclasses, each with `to_dict()` for JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from confindex.store.speakers import SpeakerInfo


@dataclass
class LedgerStatus:
    """Progress of bulk runs, from the ledger (see `confindex status`)."""

    workspace: str
    total: int
    counts: dict[str, int]
    failed: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    active: list[dict[str, Any]] = field(default_factory=list)
    audio_hours_done: float = 0.0
    audio_seconds_done: float = 0.0
    throughput_realtime: float | None = None
    eta_seconds: float | None = None
    last_run: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ArchiveStats:
    """Figures of the indexed archive (see `confindex stats`)."""

    workspace: str
    recordings: int
    transcripts: int
    hours: float
    turns: int
    speakers: int
    languages: dict[str, int]
    index_bytes: int
    index_stale: bool
    audio_seconds: float = 0.0  # the same total as `hours`, unrounded to 0.01 h

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IndexReport:
    """What `Archive.index` did: recordings added/changed/removed (or a full rebuild), turns
    written, transcripts that could not be read (id, why) and the time taken."""

    rebuilt: bool = False
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    turns: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    optimize_seconds: float | None = None
    exports_repaired: list[str] = field(default_factory=list)  # stale exports written again
    # The vector store (semantic search): recordings embedded/removed, passages embedded.
    vectors: dict[str, Any] = field(default_factory=dict)

    @property
    def up_to_date(self) -> bool:
        # The lexical index only: `vectors` says what the semantic store did beside it.
        return not (self.rebuilt or self.added or self.changed or self.removed)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RenameResult:
    """A speaker renamed: the recording, the label, its name now (None: back to the label)."""

    recording_id: str
    label: str
    name: str | None
    speakers: list[SpeakerInfo]

    def to_dict(self) -> dict[str, Any]:
        return {
            "recording": self.recording_id,
            "label": self.label,
            "name": self.name,
            "speakers": [s.to_dict() for s in self.speakers],
        }
