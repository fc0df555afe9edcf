"""Diarization error rate (DER) and RTTM files: pure functions, no dependencies beyond stdlib.

DER = (missed speech + false alarm + speaker confusion) / total reference speech, the NIST
md-eval definition that pyannote.metrics also follows:

- Overlapped speech is scored: at each instant with R reference and H hypothesis speakers,
  missed = max(0, R - H), false alarm = max(0, H - R), confusion = min(R, H) - correct, where
  `correct` counts reference speakers whose mapped hypothesis speaker is talking too; the
  reference total counts R (two people talking for 1 s is 2 s of speech).
- Hypothesis labels are mapped one-to-one onto reference labels so as to maximise the total time
  they talk together (optimal assignment, Hungarian algorithm); unmapped ones count as confusion.
- A collar (0.25 s by default) on either side of every reference segment boundary is left out of
  scoring, for both reference and hypothesis: hand-made boundaries are not more precise than that.
- Overlapping segments of one speaker are merged first (as md-eval does).

Cross-checked against pyannote.metrics 4 `DiarizationErrorRate(collar=2 * collar,
skip_overlap=False)`: identical (to 1e-15) on the pyannote sample and 20 random multi-speaker
cases, once same-speaker overlaps are merged (pyannote.metrics counts them twice).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confindex.errors import InputError
from confindex.store.transcript import SpeakerSegment

Interval = tuple[float, float]


@dataclass(frozen=True)
class DerResult:
    """Errors and totals in seconds; `der` is their ratio (see the module docstring)."""

    der: float
    missed: float
    false_alarm: float
    confusion: float
    total: float  # reference speech scored (overlap counted per speaker)
    mapping: dict[str, str] = field(default_factory=dict)  # hypothesis label -> reference label
    # The same errors counted only where two or more reference speakers talk at once (with the
    # mapping of the whole recording): where a one-speaker-per-moment diarizer must fail.
    overlap_errors: float = 0.0
    overlap_total: float = 0.0

    @property
    def correct(self) -> float:
        return self.total - self.missed - self.confusion

    @property
    def overlap_der(self) -> float:
        """DER of the overlapped reference speech alone (0.0 when there is none)."""
        return self.overlap_errors / self.overlap_total if self.overlap_total > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "der": self.der,
            "missed": self.missed,
            "false_alarm": self.false_alarm,
            "confusion": self.confusion,
            "total": self.total,
            "overlap_der": self.overlap_der,
            "overlap_total": self.overlap_total,
            "mapping": dict(self.mapping),
        }


def _as_segments(items: Iterable[Any]) -> list[SpeakerSegment]:
    """Accept SpeakerSegment-like objects or (start, end, speaker) tuples."""
    out = []
    for it in items:
        if isinstance(it, tuple | list):
            start, end, speaker = it
        else:
            start, end, speaker = it.start, it.end, it.speaker
        if end > start:
            out.append(SpeakerSegment(float(start), float(end), str(speaker)))
    return out


def _union(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, merged intervals (a speaker's overlapping or touching segments become one)."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _by_speaker(segments: list[SpeakerSegment]) -> dict[str, list[Interval]]:
    spk: dict[str, list[Interval]] = {}
    for s in segments:
        spk.setdefault(s.speaker, []).append((s.start, s.end))
    return {k: _union(v) for k, v in spk.items()}


def _active(intervals: list[Interval], t: float) -> bool:
    """Whether `t` falls in one of the sorted, disjoint `intervals` (binary search: long
    recordings have thousands of segments)."""
    i = bisect.bisect_right(intervals, (t, math.inf)) - 1
    return i >= 0 and intervals[i][0] <= t < intervals[i][1]


def assign(weights: Sequence[Sequence[float]]) -> list[int]:
    """Maximum-weight one-to-one assignment of rows to columns (Hungarian algorithm, O(n³)).

    Returns, for each row, its column, or -1 when there are more rows than columns.
    """
    n_rows = len(weights)
    n_cols = len(weights[0]) if n_rows else 0
    if n_rows == 0 or n_cols == 0:
        return [-1] * n_rows
    n = max(n_rows, n_cols)
    big = max(max(row) for row in weights)
    # Square cost matrix to minimise: cost = big - weight, zero-weight padding.
    cost = [
        [big - weights[i][j] if i < n_rows and j < n_cols else big for j in range(n)]
        for i in range(n)
    ]
    # Jonker-Volgenant style shortest augmenting path (1-based, potentials u/v).
    u = [0.0] * (n + 1)
    v = [0.0] * (n + 1)
    p = [0] * (n + 1)  # p[j]: row matched to column j
    way = [0] * (n + 1)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = [math.inf] * (n + 1)
        used = [False] * (n + 1)
        while True:
            used[j0] = True
            i0 = p[j0]
            delta = math.inf
            j1 = 0
            for j in range(1, n + 1):
                if not used[j]:
                    cur = cost[i0 - 1][j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j] = cur
                        way[j] = j0
                    if minv[j] < delta:
                        delta = minv[j]
                        j1 = j
            for j in range(n + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    result = [-1] * n_rows
    for j in range(1, n + 1):
        i = p[j] - 1
        if i < n_rows and j - 1 < n_cols:
            result[i] = j - 1
    return result


def der(
    reference: Iterable[Any],
    hypothesis: Iterable[Any],
    collar: float = 0.25,
) -> DerResult:
    """The DER of `hypothesis` against `reference` (SpeakerSegments or (start, end, label))."""
    if collar < 0:
        raise ValueError("collar must be >= 0")
    ref = _by_speaker(_as_segments(reference))
    hyp = _by_speaker(_as_segments(hypothesis))

    # Regions excluded from scoring: ± collar around every reference boundary.
    excluded = _union(
        (t - collar, t + collar)
        for ivs in ref.values()
        for a, b in ivs
        for t in (a, b)
        if collar > 0
    )
    points = {t for ivs in (*ref.values(), *hyp.values()) for iv in ivs for t in iv}
    points.update(t for iv in excluded for t in iv)
    bounds = sorted(points)

    ref_labels = sorted(ref)
    hyp_labels = sorted(hyp)
    # Elementary regions: between consecutive boundaries nothing changes.
    regions: list[tuple[float, list[int], list[int]]] = []
    for a, b in itertools.pairwise(bounds):
        mid = (a + b) / 2
        if _active(excluded, mid):
            continue
        r = [i for i, lab in enumerate(ref_labels) if _active(ref[lab], mid)]
        h = [j for j, lab in enumerate(hyp_labels) if _active(hyp[lab], mid)]
        if r or h:
            regions.append((b - a, r, h))

    overlap = [[0.0] * len(hyp_labels) for _ in ref_labels]
    for dur, r, h in regions:
        for i in r:
            for j in h:
                overlap[i][j] += dur
    # Map hypothesis labels onto reference labels (rows = hypothesis).
    by_hyp = [[overlap[i][j] for i in range(len(ref_labels))] for j in range(len(hyp_labels))]
    cols = assign(by_hyp) if ref_labels else [-1] * len(hyp_labels)
    mapping = {hyp_labels[j]: ref_labels[c] for j, c in enumerate(cols) if c >= 0}
    ref_of_hyp = dict(enumerate(cols))

    missed = false_alarm = confusion = total = 0.0
    ov_errors = ov_total = 0.0
    for dur, r, h in regions:
        n_ref, n_hyp = len(r), len(h)
        rs = set(r)
        correct = sum(1 for j in h if ref_of_hyp[j] in rs)
        m = dur * max(0, n_ref - n_hyp)
        fa = dur * max(0, n_hyp - n_ref)
        c = dur * (min(n_ref, n_hyp) - correct)
        total += dur * n_ref
        missed += m
        false_alarm += fa
        confusion += c
        if n_ref >= 2:
            ov_total += dur * n_ref
            ov_errors += m + fa + c
    errors = missed + false_alarm + confusion
    # No reference speech: perfect if the hypothesis is silent too, else undefined (inf).
    rate = errors / total if total > 0 else (0.0 if errors == 0 else math.inf)
    return DerResult(rate, missed, false_alarm, confusion, total, mapping, ov_errors, ov_total)


def _rttm_token(text: str) -> str:
    """RTTM fields are whitespace-separated: a name with spaces becomes one token (and one
    with escape sequences or control characters, inert text)."""
    from confindex.sanitize import terminal

    return "_".join(terminal(text).split()) or "<NA>"


def to_rttm(segments: Iterable[Any], file_id: str) -> str:
    """RTTM text (one `SPEAKER` line per segment, 3 decimals), sorted by start time."""
    lines = []
    fid = _rttm_token(file_id)
    for s in sorted(_as_segments(segments), key=lambda s: (s.start, s.end, s.speaker)):
        lines.append(
            f"SPEAKER {fid} 1 {s.start:.3f} {s.end - s.start:.3f} <NA> <NA> "
            f"{_rttm_token(s.speaker)} <NA> <NA>"
        )
    return "".join(line + "\n" for line in lines)


def parse_rttm(text: str, file_id: str | None = None) -> list[SpeakerSegment]:
    """The SPEAKER lines of RTTM text (of `file_id` only, if given), in file order."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith(";") or fields[0] != "SPEAKER":
            continue
        if len(fields) < 8:
            raise InputError(f"RTTM line {n}: expected at least 8 fields, got {len(fields)}")
        if file_id is not None and fields[1] != file_id:
            continue
        try:
            start, dur = float(fields[3]), float(fields[4])
        except ValueError:
            start = dur = math.nan
        if not (math.isfinite(start) and math.isfinite(dur) and start >= 0 and dur >= 0):
            raise InputError(f"RTTM line {n}: bad onset/duration {fields[3]!r} {fields[4]!r}")
        out.append(SpeakerSegment(start, start + dur, fields[7]))
    return out


def read_rttm(path: str | Path, file_id: str | None = None) -> list[SpeakerSegment]:
    """Speaker segments of an RTTM file (see `parse_rttm`); a bad file is a one-line error."""
    from confindex.store.workspace import check_file

    p = Path(path)
    check_file(p)  # a FIFO or a device would be read for ever
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"no such file: {p}") from None
    except UnicodeDecodeError:
        raise InputError(f"{p} is not an RTTM text file (not UTF-8)") from None
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror or exc}") from None
    try:
        return parse_rttm(text, file_id)
    except InputError as exc:
        raise InputError(f"{p}: {exc.message}") from None
