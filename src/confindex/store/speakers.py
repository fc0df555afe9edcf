"""Speakers of a recording: who talks how much, and the names users give to diarization labels.

Labels (`SPEAKER_00`…) stay in turns and words forever; a display name lives only in
`transcript.speakers[label]`, so renaming is cheap, reversible and never touches the timing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from confindex.errors import InputError, NotFoundError
from confindex.store.transcript import Transcript, iter_all, resolve_recording
from confindex.store.workspace import Workspace

QUOTE_CHARS = 80


@dataclass
class SpeakerInfo:
    """One speaker of one recording."""

    label: str
    name: str | None  # the display name (a user's, or the voice library's), None until named
    talk_time: float  # seconds
    turns: int
    first_start: float | None  # when they first speak (s)
    first_quote: str
    automatic: bool = False  # the name was given by the voice library, not yet confirmed
    score: float | None = None  # its cosine similarity

    @property
    def display(self) -> str:
        return self.name or self.label

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ArchiveSpeaker:
    """A person across the archive, with every recording they speak in. One person whatever the
    spelling of case and spaces (voices.identity); shown under the most used spelling."""

    name: str
    recordings: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # recording id -> label
    talk_time: float = 0.0
    turns: int = 0
    automatic: int = 0  # recordings where the name is the library's, not yet confirmed
    first: str | None = None  # date (upload date, else transcription date) of first appearance
    last: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def quote(text: str, limit: int = QUOTE_CHARS) -> str:
    """`text` on one line, cut at a word boundary with an ellipsis when longer than `limit`."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.") + "…"


def labels(t: Transcript) -> list[str]:
    """Every speaker label of the transcript, in order of first appearance."""
    first: dict[str, float] = {}
    for turn in t.turns:
        if turn.speaker is not None:
            first[turn.speaker] = min(first.get(turn.speaker, turn.start), turn.start)
    for seg in t.diarization:
        first[seg.speaker] = min(first.get(seg.speaker, seg.start), seg.start)
    for label in t.speakers:
        first.setdefault(label, float("inf"))
    return sorted(first, key=lambda lab: (first[lab], lab))


def list_speakers(t: Transcript) -> list[SpeakerInfo]:
    """The speakers of a transcript with talk time (from turns, else diarization) and turns."""
    out = []
    for label in labels(t):
        turns = [turn for turn in t.turns if turn.speaker == label]
        if turns:
            talk = sum(max(0.0, turn.end - turn.start) for turn in turns)
        else:  # diarized but no words attributed (e.g. music, or speech Whisper skipped)
            talk = sum(s.end - s.start for s in t.diarization if s.speaker == label)
        first = next((turn for turn in turns if turn.text.strip()), None)
        starts = [turn.start for turn in turns] + [
            s.start for s in t.diarization if s.speaker == label
        ]
        out.append(
            SpeakerInfo(
                label=label,
                name=t.speakers.get(label) or None,
                talk_time=round(talk, 3),
                turns=len(turns),
                first_start=min(starts) if starts else None,
                first_quote=quote(first.text) if first else "",
                automatic=label in t.auto_names,
                score=t.auto_names[label].score if label in t.auto_names else None,
            )
        )
    return out


def find_label(t: Transcript, speaker: str) -> str:
    """The label meant by `speaker`: a label (case-insensitive) or a current display name."""
    known = labels(t)
    if speaker in known:
        return speaker
    by_upper = {lab.upper(): lab for lab in known}
    if speaker.upper() in by_upper:
        return by_upper[speaker.upper()]
    named = [lab for lab in known if t.speakers.get(lab) == speaker]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise InputError(
            f"{len(named)} speakers of {t.id} are named {speaker!r} "
            f"({', '.join(named)}): rename by label"
        )
    listing = ", ".join(known) if known else "none (the recording was not diarized)"
    raise NotFoundError(f"no speaker {speaker!r} in {t.id}; its speakers: {listing}")


def set_name(t: Transcript, speaker: str, name: str) -> str:
    """Give `speaker` (label or current name) the display `name` in `t`; returns the label.

    A name equal to the label clears the name. Pure: nothing is written.
    """
    label = find_label(t, speaker)
    clean = " ".join(name.split())
    if not clean:
        raise InputError("the new speaker name is empty")
    if clean == label:
        t.speakers.pop(label, None)
    else:
        t.speakers[label] = clean
    return label


def _log_change(t: Transcript, kind: str, summary: str) -> None:
    """An entry of the recording's change log (`confindex history`, issue 27)."""
    from confindex.store.edits import now
    from confindex.store.transcript import Change

    t.changes.append(Change(now(), kind, summary))


def _publish(ws: Workspace, t: Transcript, what: str = "renamed") -> None:
    """Publish `t` as it is (transcript, exports, index; the version before is kept in the
    history, `confindex transcribe --undo`): no names carried, no recognition run."""
    from confindex.store.store import Store

    Store(ws).republish(t, what)


def _enrollable(ws: Workspace, t: Transcript, label: str) -> bool:
    """Whether the voice of `label` belongs in the library: a user's name, not opted out, and a
    voiceprint (computed now from the media for an older transcript; `t` is then published
    with it)."""
    return bool(
        t.speakers.get(label)
        and label not in t.auto_names
        and label not in t.not_enrolled
        and ensure_voiceprints(ws, t)
        and label in t.voiceprints
    )


def _update_library(ws: Workspace, t: Transcript, label: str, enroll: bool) -> None:
    """Make the library agree with `label` of `t`: its voice enrolled under its name, or not
    in the library at all. Runs after the transcript is published (the source of truth first;
    the library can be rebuilt from transcripts)."""
    from confindex.store.store import Store

    Store(ws).enroll(t, label, enroll)


def rename(
    ws: Workspace, recording: str, speaker: str, name: str, *, enroll: bool = True
) -> tuple[Transcript, str]:
    """Rename a speaker of `recording` and publish it (transcript, exports, index; the version
    before the rename is kept in the history, `confindex transcribe --undo`).

    The voice is enrolled in the voice library under that name unless `enroll` is False; a
    name the library gave becomes the user's (any other automatic name is a suggestion only).
    """
    t = resolve_recording(ws, recording)
    was = t.speaker_name(find_label(t, speaker)) or speaker
    label = set_name(t, speaker, name)
    _log_change(t, "rename", f"{label}: {was!r} → {t.speaker_name(label)!r}")
    t.auto_names.pop(label, None)
    if enroll:
        if label in t.not_enrolled:
            t.not_enrolled.remove(label)
    elif label not in t.not_enrolled:
        t.not_enrolled.append(label)
    enroll = _enrollable(ws, t, label)
    _publish(ws, t)
    _update_library(ws, t, label, enroll)
    return t, label


def ensure_voiceprints(ws: Workspace, t: Transcript) -> bool:
    """Give a transcript made before voiceprints (schema 1) its voiceprints, computed from its
    diarization and its media when the media is still there. True if `t` has voiceprints now
    (the caller saves `t`)."""
    if t.voiceprints:
        return True
    if not t.diarization:
        return False
    found = [ws.media_file(p) for p in (t.recording.media_path, t.recording.source)]
    media = next((p for p in found if p is not None and p.is_file()), None)
    if media is None:
        return False
    from confindex.speech import audio
    from confindex.speech.diarize import compute_voiceprints

    t.voiceprints = compute_voiceprints(audio.decode(media), t.diarization)
    return bool(t.voiceprints)


@dataclass
class Review:
    """An automatic name waiting for a user's confirmation."""

    recording: str
    title: str
    label: str
    name: str
    score: float
    margin: float | None
    talk_time: float
    first_quote: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pending(ws: Workspace, recordings: Iterable[str] = ()) -> list[Review]:
    """Automatic names of the given recordings (all when none), to confirm or reject."""
    ts = [resolve_recording(ws, r) for r in recordings] if recordings else iter_all(ws)
    out = []
    for t in ts:
        infos = {i.label: i for i in list_speakers(t)}
        for label, auto in sorted(t.auto_names.items()):
            info = infos.get(label)
            out.append(
                Review(
                    t.id,
                    t.recording.title,
                    label,
                    auto.name,
                    auto.score,
                    auto.margin,
                    info.talk_time if info else 0.0,
                    info.first_quote if info else "",
                )
            )
    return out


def review(
    ws: Workspace, recording: str, speaker: str, accept: bool
) -> tuple[Transcript, str, str]:
    """Confirm (the name becomes a user's and is enrolled) or reject (it reverts to the label and
    is never suggested again for this recording) the automatic name of `speaker`.
    Returns (transcript, label, name)."""
    from confindex.speech import voices

    t = resolve_recording(ws, recording)
    label = find_label(t, speaker)
    name = voices.confirm(t, label) if accept else voices.reject(t, label)
    _log_change(t, "confirm" if accept else "reject", f"{label}: {name!r}")
    enroll = _enrollable(ws, t, label)
    _publish(ws, t, "confirmed" if accept else "rejected")
    _update_library(ws, t, label, enroll)
    return t, label, name


@dataclass
class Identified:
    """What `identify` did in one recording: names given or taken back (voices.Change), and
    whether the recording has voiceprints (False: not diarized, or its media is gone)."""

    recording: str
    changes: list[Any]
    voiceprints: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "recording": self.recording,
            "voiceprints": self.voiceprints,
            "changes": [asdict(c) for c in self.changes],
        }


def identify(ws: Workspace, recordings: Iterable[str] = ()) -> list[Identified]:
    """Recognise the library's voices again in the given recordings (all when none), computing
    missing voiceprints from media; a recording that changed is published again."""
    from confindex.speech import voices
    from confindex.store.store import Store

    lib = Store(ws).voices()
    ids = [resolve_recording(ws, r).id for r in recordings] if recordings else ws.transcript_ids()
    out = []
    for rid in ids:
        t = resolve_recording(ws, rid)
        had = bool(t.voiceprints)
        has = ensure_voiceprints(ws, t)
        changes = voices.identify(t, lib) if has else []
        if changes or has != had:
            _publish(ws, t, "identified")
        out.append(Identified(t.id, changes, has))
    return out


def archive_speakers(transcripts: Iterable[Transcript]) -> tuple[list[ArchiveSpeaker], int]:
    """Named speakers across transcripts (by name, most talk time first), and the number of
    speakers still known only by their label."""
    from confindex.speech.voices import identity

    names: dict[str, ArchiveSpeaker] = {}
    spellings: dict[str, dict[str, float]] = {}
    unnamed = 0
    for t in transcripts:
        when = t.recording.upload_date or (t.provenance.created_at or "")[:10] or None
        for info in list_speakers(t):
            if info.name is None:
                unnamed += 1
                continue
            key = identity(info.name)
            entry = names.setdefault(key, ArchiveSpeaker(info.name))
            spelled = spellings.setdefault(key, {})
            spelled[info.name] = spelled.get(info.name, 0.0) + info.talk_time
            if t.id not in entry.recordings:
                entry.recordings.append(t.id)
                entry.automatic += int(info.automatic)
            entry.labels.setdefault(t.id, info.label)
            entry.talk_time = round(entry.talk_time + info.talk_time, 3)
            entry.turns += info.turns
            if when:
                entry.first = min(entry.first or when, when)
                entry.last = max(entry.last or when, when)
    for key, entry in names.items():
        entry.name = max(spellings[key], key=lambda n: (spellings[key][n], n))
    ordered = sorted(names.values(), key=lambda a: (-a.talk_time, a.name.casefold()))
    return ordered, unnamed


def list_archive(ws: Workspace) -> tuple[list[ArchiveSpeaker], int]:
    """`archive_speakers` over every transcript of the workspace."""
    return archive_speakers(iter_all(ws))
