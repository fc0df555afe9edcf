"""Speaker names and voice marks carried from the transcript being replaced to the new one:
pure functions the `Store` applies when it publishes.

Manual work is kept: speaker names users gave in the transcript being replaced are carried to
the new speaker labels by time overlap, with the names they rejected and the voices they kept
out of the voice library.
"""

from __future__ import annotations

from collections.abc import Sequence

from confindex.store.transcript import SpeakerSegment, Transcript, Turn


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
