"""The voice library: people's voiceprints, to name them in new recordings.

`voices.json` in the workspace holds, per person, several enrollments (one per recording and
speaker label where a user named that voice: voices vary across rooms and microphones). It is
derived data: `rebuild` makes it again from the transcripts' user-given names and voiceprints.

Matching is pure numpy (no model): a speaker's voiceprint is compared with every enrollment by
cosine similarity; a person's score is their best enrollment. A name is given only when the best
person scores at least THRESHOLD and beats the second-best person by MARGIN.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from confindex.errors import ConfindexError
from confindex.store.transcript import AutoName, Transcript, Voiceprint
from confindex.store.workspace import Workspace

log = logging.getLogger("confindex")

LIBRARY_VERSION = 1
# Calibrated on the real clips of ../shared/data (voiceprints as diarization makes them, from
# the re-segmentation windows; bench/speakers.py, 2026-11-25): the same AMI participant in two
# meetings scores 0.85 and 0.88; different people 0.33-0.62 across recordings (JFK against
# everyone: <= 0.52) and 0.77 for the two sides of one telephone call (one channel). 0.80 sits
# between; the margin keeps a voice close to two people unnamed (the AMI matches win by 0.30
# and 0.33).
THRESHOLD = 0.80
MARGIN = 0.10


@dataclass
class Enrollment:
    recording: str
    label: str
    vector: list[float]
    seconds: float


@dataclass
class Person:
    name: str
    enrollments: list[Enrollment] = field(default_factory=list)


@dataclass
class Library:
    people: dict[str, Person] = field(default_factory=dict)  # key: identity (see `identity`)

    def to_json(self) -> str:
        data = {
            "version": LIBRARY_VERSION,
            "people": [asdict(p) for p in sorted(self.people.values(), key=lambda p: p.name)],
        }
        return json.dumps(data, ensure_ascii=False, indent=1)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Library:
        if d.get("version") != LIBRARY_VERSION:
            raise ValueError(f"unknown version {d.get('version')!r}")
        lib = cls()
        for p in d["people"]:
            person = Person(p["name"], [Enrollment(**e) for e in p["enrollments"]])
            lib.people[identity(person.name)] = person
        return lib

    def enroll(self, name: str, recording: str, label: str, vp: Voiceprint) -> None:
        """Add (or replace) the voice of `label` in `recording` under `name`."""
        self.unenroll(recording, label)
        person = self.people.setdefault(identity(name), Person(name))
        person.name = name  # the latest spelling wins
        person.enrollments.append(Enrollment(recording, label, list(vp.vector), vp.seconds))

    def unenroll(self, recording: str, label: str) -> None:
        """Forget the voice of `label` in `recording`, whoever it was enrolled under."""
        for key in list(self.people):
            p = self.people[key]
            p.enrollments = [
                e for e in p.enrollments if (e.recording, e.label) != (recording, label)
            ]
            if not p.enrollments:
                del self.people[key]

    def drop_recordings(self, recording_ids: set[str]) -> None:
        """Forget every voice enrolled from these recordings."""
        for key in list(self.people):
            p = self.people[key]
            p.enrollments = [e for e in p.enrollments if e.recording not in recording_ids]
            if not p.enrollments:
                del self.people[key]

    def enrollment_count(self) -> int:
        return sum(len(p.enrollments) for p in self.people.values())

    def scores(
        self, vector: Iterable[float], exclude_recording: str | None = None
    ) -> dict[str, float]:
        """Best cosine similarity per person name (enrollments from `exclude_recording` unused:
        a recording must not recognise itself)."""
        v = np.asarray(list(vector), dtype=np.float64)
        nv = float(np.linalg.norm(v)) or 1.0
        out = {}
        for p in self.people.values():
            vecs = [e.vector for e in p.enrollments if e.recording != exclude_recording]
            if not vecs:
                continue
            m = np.asarray(vecs, dtype=np.float64)
            norms = np.linalg.norm(m, axis=1)
            norms[norms == 0] = 1.0
            out[p.name] = float(np.max(m @ v / norms) / nv)
        return out


def identity(name: str) -> str:
    """What makes two names one person: case and spacing do not count."""
    return " ".join(name.split()).casefold()


@dataclass(frozen=True)
class Match:
    name: str
    score: float
    margin: float | None  # over the second-best person (None: only one person known)


def best_match(
    scores: dict[str, float],
    exclude: Iterable[str] = (),
    threshold: float = THRESHOLD,
    margin: float = MARGIN,
) -> Match | None:
    """The person `scores` point to, if sure enough (pure; see module docstring)."""
    banned = {identity(n) for n in exclude}
    ranked = sorted(((s, n) for n, s in scores.items() if identity(n) not in banned), reverse=True)
    if not ranked or ranked[0][0] < threshold:
        return None
    gap = ranked[0][0] - ranked[1][0] if len(ranked) > 1 else None
    if gap is not None and gap < margin:
        return None
    return Match(ranked[0][1], round(ranked[0][0], 4), None if gap is None else round(gap, 4))


# --- the library file (written by store.Store: save_voices, editing_voices) ---------------


def path(ws: Workspace) -> Path:
    return ws.voices_path


def load(ws: Workspace) -> Library:
    """The workspace's library (empty when there is none; made again from the transcripts
    when damaged — `Store.voices()` also writes the repaired one)."""
    return read(ws)[0]


def read(ws: Workspace) -> tuple[Library, bool]:
    """The workspace's library, and whether it was damaged (then rebuilt, not saved). Read as
    a regular file with size and depth limits (safeio): a FIFO or a deep file is damage."""
    from confindex.safeio import UnreadableFile, read_json

    p = ws.voices_path
    try:
        data = read_json(p, "voice library")
    except FileNotFoundError:
        return Library(), False
    except UnreadableFile as exc:
        if not exc.damaged:  # permission, I/O: say so, never overwrite it
            raise
        data = exc
    except (ValueError, ConfindexError) as exc:  # not JSON, too deep
        data = exc
    try:
        if isinstance(data, Exception):
            raise ValueError(str(data))
        return Library.from_dict(data), False
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("voice library %s is damaged (%s): rebuilding it from transcripts", p, exc)
        return rebuild(ws), True


def enrollments_of(t: Transcript) -> list[tuple[str, str, Voiceprint]]:
    """(name, label, voiceprint) for every user-given name of `t` that has a voiceprint."""
    return [
        (name, label, t.voiceprints[label])
        for label, name in t.speakers.items()
        if name
        and label not in t.auto_names
        and label in t.voiceprints
        and label not in t.not_enrolled
    ]


def rebuild(ws: Workspace) -> Library:
    """The library made again from every transcript's confirmed names (not saved)."""
    from confindex.store.transcript import iter_all

    lib = Library()
    for t in iter_all(ws):
        for name, label, vp in enrollments_of(t):
            lib.enroll(name, t.id, label, vp)
    return lib


# --- recognition ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    label: str
    old: str | None
    new: str | None
    score: float | None


def identify(t: Transcript, lib: Library) -> list[Change]:
    """Name the speakers of `t` the library recognises (in place); returns what changed.

    Only labels without a user-given name are touched. A label's rejected names are never
    given back to it, and one person is given to at most one label (the best-scoring one).
    An automatic name that no longer matches is removed.
    """
    user_named = {identity(n) for lab, n in t.speakers.items() if n and lab not in t.auto_names}
    candidates: list[tuple[float, str, Match]] = []
    for label, vp in t.voiceprints.items():
        if t.speakers.get(label) and label not in t.auto_names:
            continue
        scores = lib.scores(vp.vector, exclude_recording=t.id)
        m = best_match(scores, exclude=[*t.rejected_names.get(label, []), *user_named])
        if m is not None:
            candidates.append((m.score, label, m))
    given: dict[str, Match] = {}
    taken: set[str] = set()
    for _, label, m in sorted(candidates, key=lambda c: (-c[0], c[1])):
        if identity(m.name) not in taken:
            given[label] = m
            taken.add(identity(m.name))
    changes = []
    for label in list(t.auto_names):
        if label not in given:
            old = t.auto_names.pop(label).name
            t.speakers.pop(label, None)
            changes.append(Change(label, old, None, None))
    for label, m in given.items():
        old = t.auto_names.get(label)
        t.auto_names[label] = AutoName(m.name, m.score, m.margin)
        t.speakers[label] = m.name
        if old is None or old.name != m.name:
            changes.append(Change(label, old.name if old else None, m.name, m.score))
    return changes


def confirm(t: Transcript, label: str) -> str:
    """Make the automatic name of `label` a user's name; returns it."""
    auto = t.auto_names.pop(label, None)
    if auto is None:
        raise ConfindexError(f"{label} of {t.id} has no automatic name to confirm")
    t.speakers[label] = auto.name
    return auto.name


def reject(t: Transcript, label: str) -> str:
    """Take back the automatic name of `label` and never suggest it again here; returns it."""
    auto = t.auto_names.pop(label, None)
    if auto is None:
        raise ConfindexError(f"{label} of {t.id} has no automatic name to reject")
    t.speakers.pop(label, None)
    rejected = t.rejected_names.setdefault(label, [])
    if auto.name not in rejected:
        rejected.append(auto.name)
    return auto.name
