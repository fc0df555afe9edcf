"""Speakers of a recording: who talks how much, and the names users give to diarization labels.

Labels (`SPEAKER_00`…) stay in turns and words forever; a display name lives only in
`transcript.speakers[label]`, so renaming is cheap, reversible and never touches the timing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ConfindexError, InputError, NotFoundError
from .transcript import Transcript, iter_all, resolve_recording
from .workspace import Workspace

QUOTE_CHARS = 80


@dataclass
class SpeakerInfo:
    """One speaker of one recording."""

    label: str
    name: str | None  # the display name a user gave, None until renamed
    talk_time: float  # seconds
    turns: int
    first_start: float | None  # when they first speak (s)
    first_quote: str

    @property
    def display(self) -> str:
        return self.name or self.label

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ArchiveSpeaker:
    """A display name across the archive, with every recording it speaks in."""

    name: str
    recordings: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # recording id -> label
    talk_time: float = 0.0
    turns: int = 0

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


def rename(ws: Workspace, recording: str, speaker: str, name: str) -> tuple[Transcript, str]:
    """Rename a speaker of `recording` and publish it (transcript, exports, index); the
    version before the rename is kept in the history (`confindex transcribe --undo`)."""
    try:
        from .publish import publish
    except ImportError as exc:  # a partial install: say what is missing rather than crash
        raise ConfindexError(f"cannot rename speakers: {exc}") from None

    t = resolve_recording(ws, recording)
    label = set_name(t, speaker, name)
    try:
        publish(ws, t, keep_names=False)
    except ConfindexError as exc:
        raise ConfindexError(
            f"renamed in the transcript, but the index was not updated ({exc.message}); "
            "run `confindex index --rebuild`"
        ) from None
    return t, label


def archive_speakers(transcripts: Iterable[Transcript]) -> tuple[list[ArchiveSpeaker], int]:
    """Named speakers across transcripts (by name, most talk time first), and the number of
    speakers still known only by their label."""
    names: dict[str, ArchiveSpeaker] = {}
    unnamed = 0
    for t in transcripts:
        for info in list_speakers(t):
            if info.name is None:
                unnamed += 1
                continue
            entry = names.setdefault(info.name, ArchiveSpeaker(info.name))
            if t.id not in entry.recordings:
                entry.recordings.append(t.id)
            entry.labels.setdefault(t.id, info.label)
            entry.talk_time = round(entry.talk_time + info.talk_time, 3)
            entry.turns += info.turns
    ordered = sorted(names.values(), key=lambda a: (-a.talk_time, a.name.casefold()))
    return ordered, unnamed


def list_archive(ws: Workspace) -> tuple[list[ArchiveSpeaker], int]:
    """`archive_speakers` over every transcript of the workspace."""
    return archive_speakers(iter_all(ws))
