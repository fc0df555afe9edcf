"""The one writer of the workspace: a finished `Transcript` becomes transcript JSON, exports,
index entries and ledger stages — in that order, so that a crash between two steps leaves the
source of truth (the transcript) ahead of what is derived from it.

Every path that writes a transcript comes here (fetch, transcribe, speaker renaming, resume,
retry-failed, the Dask client), so that two rules hold everywhere:

- manual work is kept: speaker names users gave in the transcript being replaced are carried
  to the new speaker labels by time overlap (with the names they rejected and the voices
  they kept out of the voice library);
- speakers nobody named are named by the voice library when it knows their voice (marked
  automatic, with the score), here and only here: the library has one reader-writer;
- nothing is overwritten without a copy: the previous version goes to
  `transcripts/.history/ID/` first, and `undo` brings it back.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from confindex.errors import NotFoundError
from confindex.store import transcript as store
from confindex.store.stages import Stage
from confindex.store.transcript import SpeakerSegment, Transcript, Turn
from confindex.store.workspace import Workspace, atomic_write_bytes

log = logging.getLogger("confindex.store.publish")

HISTORY = ".history"


@dataclass
class Published:
    """What `publish` did for one recording."""

    recording_id: str
    previous_kept: str | None  # path of the copy of the version it replaced
    names_carried: dict[str, str]  # new label -> name, from the replaced version
    indexed: bool
    recognised: dict[str, str] = field(default_factory=dict)  # label -> name, by the library

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _spans(turns: Sequence[Turn], segments: Sequence[SpeakerSegment], label: str):
    spans = [(t.start, t.end) for t in turns if t.speaker == label]
    return spans or [(s.start, s.end) for s in segments if s.speaker == label]


def _labels(turns: Sequence[Turn], segments: Sequence[SpeakerSegment]) -> list[str]:
    seen: dict[str, None] = {}
    for x in (*turns, *segments):
        if x.speaker:
            seen.setdefault(x.speaker)
    return list(seen)


def carry_labels(old: Transcript, new: Transcript, labels: Sequence[str]) -> dict[str, str]:
    """Where each of `old`'s `labels` went in `new` (old label -> new label).

    Each old speaker goes to the new label whose turns (else diarization segments) overlap
    theirs the most; when that label is taken by one that overlaps more, the next best. A
    speaker with no counterpart (the new version has no speakers) stays on its old label when
    that is free, so that a name is never silently dropped and comes back with a later
    diarization.
    """
    from confindex.speech.turns import overlap

    new_labels = _labels(new.turns, new.diarization)
    scored: list[tuple[float, str, str]] = []  # (overlap seconds, old label, new label)
    for label in labels:
        mine = _spans(old.turns, old.diarization, label)
        for cand in new_labels:
            theirs = _spans(new.turns, new.diarization, cand)
            ov = sum(overlap(a0, a1, b0, b1) for a0, a1 in mine for b0, b1 in theirs)
            if ov > 0:
                scored.append((ov, label, cand))
    moved: dict[str, str] = {}
    taken: set[str] = set()
    for _ov, label, cand in sorted(scored, key=lambda x: (-x[0], x[1], x[2])):
        if label in moved or cand in taken:
            continue
        moved[label] = cand
        taken.add(cand)
    for label in labels:
        if label not in moved and label not in taken:
            moved[label] = label  # kept on its old label rather than lost
            taken.add(label)
    return moved


def carry_names(old: Transcript, new: Transcript) -> dict[str, str]:
    """The names users gave `old`'s speakers, moved to `new`'s labels (label -> name).
    Names the voice library gave are not carried: publish recognises the voices again."""
    user = {lab: n for lab, n in old.speakers.items() if lab not in old.auto_names}
    moved = carry_labels(old, new, list(user))
    return {moved[lab]: name for lab, name in user.items() if lab in moved}


def carry_voice_marks(old: Transcript, new: Transcript) -> None:
    """Move what users decided about `old`'s voices to `new`'s labels (in place): names they
    rejected for a speaker, and speakers they kept out of the voice library (--no-enroll).
    A re-transcription that reused the old diarization keeps the old voiceprints."""
    if not new.voiceprints and old.voiceprints and new.diarization == old.diarization:
        new.voiceprints = dict(old.voiceprints)
    labels = sorted({*old.rejected_names, *old.not_enrolled})
    moved = carry_labels(old, new, labels)
    for lab, names in old.rejected_names.items():
        if lab in moved:
            mine = new.rejected_names.setdefault(moved[lab], [])
            mine.extend(n for n in names if n not in mine)
    for lab in old.not_enrolled:
        if lab in moved and moved[lab] not in new.not_enrolled:
            new.not_enrolled.append(moved[lab])


def recognise(ws: Workspace, t: Transcript) -> dict[str, str]:
    """Name the speakers of `t` the voice library knows (voices.py), in place; label -> name
    for the names given. An unreadable library costs the names, not the transcription."""
    from confindex.errors import ConfindexError
    from confindex.speech import voices

    if not t.voiceprints or not voices.path(ws).exists():
        return {}
    try:
        library = voices.load(ws)
    except ConfindexError as exc:
        log.warning("voices not recognised in %s: %s", t.id, exc.message)
        return {}
    given = {}
    for c in voices.identify(t, library):
        if c.new:
            given[c.label] = c.new
            log.info("%s: %s recognised as %s (%.2f)", t.id, c.label, c.new, c.score or 0.0)
    return given


def history_dir(ws: Workspace, recording_id: str) -> Path:
    return ws.transcripts / HISTORY / recording_id


def keep_previous(ws: Workspace, recording_id: str) -> Path | None:
    """Copy the current transcript of `recording_id` into the history; its path (None if
    there is no current transcript)."""
    current = ws.transcript_path(recording_id)
    try:
        data = current.read_bytes()
    except FileNotFoundError:
        return None
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    dest = history_dir(ws, recording_id) / f"{stamp}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dest, data)
    return dest


def history(ws: Workspace, recording_id: str) -> list[Path]:
    """Kept versions of a recording's transcript, oldest first."""
    d = history_dir(ws, recording_id)
    return sorted(d.glob("*.json")) if d.is_dir() else []


def publish(
    ws: Workspace,
    t: Transcript,
    *,
    index: bool = True,
    keep_names: bool = True,
    recognise_voices: bool = True,
    ledger: Any = None,
    key: str | None = None,
    diarized: bool | None = None,
    work_seconds: float | None = None,
    on_stage: Callable[[str], None] | None = None,
    formats: list[str] | None = None,
    output_dir: str | None = None,
) -> Published:
    """Write `t` as the recording's transcript, its exports, its index entries and (with a
    `ledger` and its row `key`) the ledger stages; keep the version it replaces.
    `on_stage("index")` is called once the transcript is saved, before indexing. `formats`
    and `output_dir`: which exports and where (None: the workspace config)."""
    from confindex.formats import export

    ws.ensure()
    old: Transcript | None = None
    kept: Path | None = None
    carried: dict[str, str] = {}
    if store.exists(ws, t.id):
        kept = keep_previous(ws, t.id)
        if keep_names:
            try:
                old = store.load(ws, t.id)
            except NotFoundError:
                old = None
            if old is not None and old.speakers:
                carried = carry_names(old, t)
                for label, name in carried.items():
                    t.speakers.setdefault(label, name)
                log.debug("%s: names carried %s", t.id, carried)
            if old is not None:
                carry_voice_marks(old, t)
    # After the users' names are carried: the library names only speakers nobody named.
    recognised = recognise(ws, t) if recognise_voices else {}
    store.save(ws, t)
    export.write_exports(ws, t, formats=formats, output_dir=output_dir)
    if ledger is not None and key is not None:
        if diarized is None:
            diarized = bool(t.diarization)
        stage = Stage.DIARIZED if diarized else Stage.TRANSCRIBED
        ledger.advance(
            key, stage, recording_id=t.id, audio_seconds=t.duration, title=t.recording.title
        )
    if index:
        from confindex.search import index as search_index

        if on_stage:
            on_stage("index")
        search_index.add(ws, [t])
        if ledger is not None and key is not None:
            extra = {} if work_seconds is None else {"work_seconds": round(work_seconds, 3)}
            ledger.advance(key, Stage.INDEXED, audio_seconds=t.duration, **extra)
        from confindex.search import vector_build

        if on_stage:
            on_stage("embed")
        vector_build.after_publish(ws, t)  # semantic search: each passage embedded once
    return Published(t.id, str(kept) if kept else None, carried, index, recognised)


def undo(ws: Workspace, recording_id: str, *, index: bool = True) -> Transcript:
    """Bring back the latest kept version of a transcript. The version it replaces is kept as
    `*.undone` beside the history (not part of it), so that repeated undos go further back."""
    from confindex.formats import export

    versions = history(ws, recording_id)
    if not versions:
        raise NotFoundError(f"no earlier version of {recording_id} to restore")
    latest = versions[-1]
    previous = store.load_path(latest)
    undone = keep_previous(ws, recording_id)
    if undone is not None:
        undone.replace(undone.with_suffix(".undone"))
    store.save(ws, previous)
    latest.unlink()
    export.write_exports(ws, previous)
    from confindex.speech import voices

    voices.sync(ws, previous)  # the library follows the names of the restored version
    if index:
        from confindex.search import index as search_index

        search_index.add(ws, [previous])
        from confindex.search import vector_build

        vector_build.after_publish(ws, previous)
    return previous
