"""Speech units: where speech is cut, how it is packed for the decoder, and how decoded times
are mapped back to the recording. Pure functions, no model.

A unit is what one speaker says without a long pause (≤ 30 s): it gets a language of its own
(language.py) and is decoded with the other units of that language, packed end to end into
≤ 30-s chunks. What a decode leaves without words (`lost_stretches`) is decoded again.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

from confindex.speech.audio import SAMPLE_RATE
from confindex.store.transcript import Segment, SpeakerSegment, Word

# Whisper sees at most 30 s at once; the batched pipeline pads every chunk to 30 s, so speech is
# packed into chunks as close to 30 s as possible (as faster-whisper's own VAD path does).
CHUNK_SECONDS = 30.0
# Speech of one language decoded per call: bounds the features held in memory (~42 MB per
# minute of audio) so that memory stays flat in the recording's duration.
CALL_SECONDS = 600.0
UNIT_GAP = 0.3  # a pause this long between two pieces of speech may change the language


@dataclass(frozen=True)
class Unit:
    """A stretch of speech by one speaker (or by nobody known), ≤ 30 s: what gets a language."""

    start: float
    end: float
    speaker: str | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start


def speaker_timeline(speakers: Sequence[SpeakerSegment]) -> list[tuple[float, float, str]]:
    """Non-overlapping (start, end, speaker): where diarization overlaps, the speaker of the
    longer segment keeps the time (so overlapped speech is decoded once, not twice)."""
    cuts = sorted({t for s in speakers for t in (s.start, s.end)})
    out: list[tuple[float, float, str]] = []
    for a, b in itertools.pairwise(cuts):
        active = [s for s in speakers if s.start < b and s.end > a]
        if not active:
            continue
        who = max(active, key=lambda s: (s.end - s.start, s.speaker)).speaker
        if out and out[-1][2] == who and out[-1][1] == a:
            out[-1] = (out[-1][0], b, who)
        else:
            out.append((a, b, who))
    return out


def speech_units(
    speech: Sequence[tuple[float, float]],
    speakers: Sequence[SpeakerSegment] | None = None,
    *,
    max_len: float = CHUNK_SECONDS,
    gap: float = UNIT_GAP,
) -> list[Unit]:
    """Cut speech at speaker changes, then join what one speaker says across pauses < `gap`
    (up to `max_len`): the units whose language is detected and that are decoded."""
    timeline = speaker_timeline(speakers) if speakers else []
    pieces: list[Unit] = []
    for a, b in speech:
        cuts = sorted({a, b} | {t for s0, s1, _ in timeline for t in (s0, s1) if a < t < b})
        for x, y in itertools.pairwise(cuts):
            pieces.append(Unit(x, y, _speaker_at((x + y) / 2, timeline)))
    units: list[Unit] = []
    for p in pieces:
        last = units[-1] if units else None
        if (
            last is not None
            and last.speaker == p.speaker
            and p.start - last.end < gap
            and p.end - last.start <= max_len
        ):
            units[-1] = Unit(last.start, p.end, p.speaker)
        else:
            units.append(p)
    out: list[Unit] = []
    for u in units:  # a unit may still be longer than max_len (one long VAD chunk)
        a = u.start
        while u.end - a > max_len:
            out.append(Unit(a, a + max_len, u.speaker))
            a += max_len
        out.append(Unit(a, u.end, u.speaker))
    return out


def _speaker_at(t: float, timeline: Sequence[tuple[float, float, str]]) -> str | None:
    """The speaker talking at `t`, else the nearest one in time (None without diarization)."""
    if not timeline:
        return None
    return min(
        timeline, key=lambda s: 0.0 if s[0] <= t <= s[1] else min(abs(t - s[0]), abs(t - s[1]))
    )[2]


def pack_chunks(units: Sequence[Unit], max_len: float = CHUNK_SECONDS) -> list[list[Unit]]:
    """Consecutive units in chunks of ≤ `max_len` seconds of speech (units are ≤ max_len)."""
    chunks: list[list[Unit]] = []
    size = 0.0
    for u in units:
        if chunks and size + u.duration <= max_len:
            chunks[-1].append(u)
            size += u.duration
        else:
            chunks.append([u])
            size = u.duration
    return chunks


@dataclass(frozen=True)
class Span:
    """A unit's place in the packed audio handed to the decoder (`at`) and in the recording."""

    at: float
    start: float
    end: float

    def to_recording(self, t: float) -> float:
        return as_float(self.start + min(max(t - self.at, 0.0), self.end - self.start))


def span_of(t: float, spans: Sequence[Span]) -> Span:
    """The span that holds time `t` of the packed audio (the last one starting before it)."""
    i = bisect.bisect_right([s.at for s in spans], t) - 1
    return spans[max(i, 0)]


def restore_times(seg: Segment, spans: Sequence[Span]) -> list[Segment]:
    """Map a segment decoded from packed audio back to the recording's time line. Each word
    goes by its middle, so a word never straddles two pieces of speech; a segment whose words
    come from pieces apart in time is split there (so that no segment spans speech that was
    decoded in another language)."""
    if not seg.words:
        start = span_of(seg.start, spans).to_recording(seg.start)
        end = max(start, span_of(seg.end, spans).to_recording(seg.end))
        return [replace(seg, start=start, end=end)]
    groups: list[list[Word]] = []
    last: Span | None = None
    for w in seg.words:
        span = span_of((w.start + w.end) / 2, spans)
        w.start, w.end = span.to_recording(w.start), span.to_recording(w.end)
        if groups and last is not None and (span == last or span.start - last.end < UNIT_GAP):
            groups[-1].append(w)
        else:
            groups.append([w])
        last = span
    if len(groups) == 1:
        return [replace(seg, start=groups[0][0].start, end=max(w.end for w in groups[0]))]
    return [
        replace(
            seg,
            start=g[0].start,
            end=max(w.end for w in g),
            text=" ".join(w.text for w in g),
            words=g,
        )
        for g in groups
    ]


@dataclass
class Packing:
    """Chunks of units laid end to end, as one array for the decoder: the recording's sample
    range of each unit in order, each unit's place in the packed audio, and each chunk's."""

    pieces: list[tuple[int, int]]
    spans: list[Span]
    clips: list[tuple[float, float]]  # (start, end) seconds of each chunk in the packed audio


def pack(
    chunks: Sequence[Sequence[Unit]], rate: int = SAMPLE_RATE, total: int | None = None
) -> Packing:
    """Where each unit of `chunks` goes when their speech is packed end to end (as
    faster-whisper's own VAD path does), each chunk one clip. With `total` (the audio's length
    in samples) units are clamped to the audio and each clip counts the samples really packed:
    a lost stretch at a recording's end, rounded to the millisecond, reached one sample past
    the audio, the packed audio fell one sample short of its clips, and faster-whisper's
    batched pipeline asserted "non-negative timestamp expected" (a 6.8-min AMI concatenation
    aborted its whole `fetch`: 386,063 samples, clips summing to 386,064)."""
    pieces: list[tuple[int, int]] = []
    spans: list[Span] = []
    clips: list[tuple[float, float]] = []
    at = 0
    for chunk in chunks:
        clip_start = at
        for u in chunk:
            a, b = round(u.start * rate), round(u.end * rate)
            if total is not None:
                a, b = min(max(a, 0), total), min(max(b, 0), total)
                if b <= a:
                    continue
            pieces.append((a, b))
            spans.append(Span(at / rate, a / rate, b / rate))
            at += b - a
        if total is None or at > clip_start:
            clips.append((clip_start / rate, at / rate))
    return Packing(pieces, spans, clips)


def clip_seconds(seconds: float, rate: int = SAMPLE_RATE) -> float:
    """A clip bound (a whole number of samples, in seconds) that faster-whisper's
    `int(v * 16000)` turns back into exactly that sample: n / 16000 alone may come back one
    sample short (int(16383.999…) = 16383)."""
    return (round(seconds * rate) + 0.5) / rate


MIN_RETRY = 1.0  # a unit this long (s) that comes out without a word is decoded again
# A stretch of a unit this long (s) without a word is decoded again. VAD keeps pauses of at
# most ~0.9 s inside speech (500-ms silences plus 400-ms pads split it), so 2 s of a unit
# without words is speech the decoder skipped.
MIN_GAP = 2.0
# At a unit's end only VAD's 400-ms pad is silence (or nothing, where a speaker change cuts the
# unit), so a shorter wordless tail is already speech: the radio clip's last 1.8 s, "en
# définissant une signalétique", came out of its batched chunk without a word (decoded again:
# "définissant initial éthique", WER 0.141 -> 0.140). 1.0 s, tried, decoded two tails of the
# 10-min bench file into a word already there ("reges. rejesse.") and a stray "Donc...".
MIN_TAIL_GAP = 1.5
RETRY_MARGIN = 0.3  # s of context kept on each side of a skipped stretch


def lost_stretches(
    units: Sequence[Unit], segments: Sequence[Segment]
) -> list[tuple[Unit, tuple[float, float]]]:
    """Parts of units that no decoded word covers: whole units of at least MIN_RETRY seconds,
    stretches of at least MIN_GAP seconds inside a unit and of MIN_TAIL_GAP at its end. Each
    comes as (what to decode again: the stretch with RETRY_MARGIN of context, the stretch)."""
    spans = sorted(
        [(w.start, w.end) for s in segments for w in s.words]
        + [(s.start, s.end) for s in segments if not s.words]
    )
    lost: list[tuple[Unit, tuple[float, float]]] = []
    for u in units:
        covered = [(max(a, u.start), min(b, u.end)) for a, b in spans if a < u.end and b > u.start]
        if not covered:
            if u.duration >= MIN_RETRY:
                lost.append((u, (u.start, u.end)))
            continue
        at = u.start
        for a, b in [*covered, (u.end, u.end)]:
            if a - at >= (MIN_TAIL_GAP if a == u.end else MIN_GAP):
                around = (
                    as_float(max(u.start, at - RETRY_MARGIN)),
                    as_float(min(u.end, a + RETRY_MARGIN)),
                )
                lost.append((Unit(*around, u.speaker), (at, a)))
            at = max(at, b)
    return lost


def inside(segments: Sequence[Segment], cores: Sequence[tuple[float, float]]) -> list[Segment]:
    """Segments decoded again, cut down to the words whose middle lies in one of the skipped
    stretches (the margins around them were decoded the first time); silence-like ones dropped."""
    out = []
    for seg in segments:
        if is_silence(seg):
            continue
        if not seg.words:
            mid = (seg.start + seg.end) / 2
            if any(a <= mid <= b for a, b in cores):
                out.append(seg)
            continue
        words = [w for w in seg.words if any(a <= (w.start + w.end) / 2 <= b for a, b in cores)]
        if words:
            out.append(
                replace(
                    seg,
                    start=words[0].start,
                    end=max(w.end for w in words),
                    text=" ".join(w.text for w in words),
                    words=words,
                )
                if len(words) < len(seg.words)
                else seg
            )
    return out


def is_silence(seg: Segment) -> bool:
    """Whisper's own no-speech rule: likely silence and not confidently decoded."""
    return (seg.no_speech_prob or 0.0) > 0.6 and (seg.avg_logprob or 0.0) < -1.0


def calls(chunks: list[list[Unit]]) -> list[list[list[Unit]]]:
    """Group chunks into calls of ≤ CALL_SECONDS of speech each."""
    per_call = max(1, int(CALL_SECONDS // CHUNK_SECONDS))
    return [chunks[i : i + per_call] for i in range(0, len(chunks), per_call)]


def segments_by_unit(units: Sequence[Unit], segments: Sequence[Segment]) -> list[list[Segment]]:
    """The segments of each unit (units in time order): the unit holding a segment's middle,
    else the last one starting before it (a segment's times may stray a frame outside)."""
    starts = [u.start for u in units]
    out: list[list[Segment]] = [[] for _ in units]
    for seg in segments:
        out[max(0, bisect.bisect_right(starts, (seg.start + seg.end) / 2) - 1)].append(seg)
    return out


def as_float(x: float, digits: int = 3) -> float:
    """A plain float for JSON (faster-whisper hands out numpy floats)."""
    return round(float(x), digits)
