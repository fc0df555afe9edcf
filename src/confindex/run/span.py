"""Re-decode one span of a recording (`confindex transcribe REC --span 12:30-14:00`) with other
options — a bigger model, a forced language, hotwords — and splice it into the transcript.

Words outside the span stay as they were. The new words inside it get the speaker labels of the
recording's existing speaker segments (so names are kept), turns are rebuilt, and the quality
flags of the span are computed again. `splice` is pure; `redecode` does the decoding and
publishing around it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confindex.store.transcript import Flag, Segment, SpeakerSegment, Transcript, Word
from confindex.timefmt import parse_span as parse_span  # re-exported: callers' name

if TYPE_CHECKING:
    from confindex.run.outcome import Outcome


def _mid(w: Word) -> float:
    return (w.start + w.end) / 2


def splice(
    old: Transcript,
    start: float,
    end: float,
    new_segments: Sequence[Segment],
    new_flags: Sequence[Flag],
    speakers: Sequence[SpeakerSegment],
) -> Transcript:
    """`old` with [start, end] replaced by `new_segments` (times already in the recording's
    clock): words, segments, turns and flags; speaker labels (and so names) kept."""
    from confindex.speech.language import turn_language_fn
    from confindex.speech.turns import assign_speakers, build_turns, words_of

    kept_words = [
        replace(w) for turn in old.turns for w in turn.words if not start <= _mid(w) < end
    ]
    new_words = [w for w in words_of(new_segments) if start <= _mid(w) <= end]
    if speakers:
        new_words = assign_speakers(new_words, speakers)
    words = sorted([*kept_words, *new_words], key=lambda w: (w.start, w.end))
    turns = build_turns(words, old.language, language_of=turn_language_fn(old.language))
    segs = [s for s in old.segments if not start <= (s.start + s.end) / 2 < end]
    segs = sorted([*segs, *new_segments], key=lambda s: s.start)
    ids = {id(s): i for i, s in enumerate(segs)}
    renumber = {s.id: ids[id(s)] for s in old.segments if id(s) in ids}
    segs = [replace(s, id=i) for i, s in enumerate(segs)]
    piece_ids = {s.id: ids[id(s)] for s in new_segments}
    flags = [
        replace(f, segments=[renumber[i] for i in f.segments if i in renumber])
        for f in old.flags
        if f.end <= start or f.start >= end
    ]
    shifted = [replace(f, segments=[piece_ids[i] for i in f.segments if i in piece_ids])
               for f in new_flags]  # fmt: skip
    flags = sorted([*flags, *shifted], key=lambda f: (f.start, f.kind))
    return replace(old, segments=segs, turns=turns, flags=flags)


def redecode(ws: Any, ref: str, span: str, options: Any, reporter: Any = None) -> Outcome:
    """Decode [start, end] of a workspace recording again with `options` and publish it
    through the one writer (the Store: the replaced version kept, speaker names carried)."""
    import time

    import numpy as np

    from confindex.errors import NotFoundError
    from confindex.run.job import quality_flags
    from confindex.run.outcome import Outcome
    from confindex.speech import audio
    from confindex.speech.asr import transcribe
    from confindex.speech.audio import SAMPLE_RATE
    from confindex.speech.decoder import load_model
    from confindex.speech.turns import speaker_segments_from_turns
    from confindex.store import transcript as store
    from confindex.store.store import Store

    t0 = time.perf_counter()
    old = store.resolve_recording(ws, ref)
    start, end = parse_span(span, old.duration or None)
    media_path = ws.media_file(old.recording.media_path or old.recording.source) or Path()
    if not media_path.is_file():
        raise NotFoundError(
            f"the media of {old.id} is gone ({media_path}): transcribe it whole again "
            "(without --span) to fetch it"
        )
    o = options
    loaded = load_model(o.model, o.device, o.compute_type, o.cpu_threads)
    if reporter:
        reporter.stage(old.id, "decode")
    samples = audio.decode(media_path)
    piece = np.ascontiguousarray(samples[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)])
    del samples
    if reporter:
        reporter.stage(old.id, "transcribe", end - start)
    speakers = old.diarization or speaker_segments_from_turns(old.turns)
    # The speaker segments in the piece's clock: speech units are cut at speaker changes.
    local = [
        SpeakerSegment(max(0.0, x.start - start), min(end, x.end) - start, x.speaker)
        for x in speakers
        if x.end > start and x.start < end
    ]
    result = transcribe(
        loaded, piece, o.asr, speaker_segments=local,
        progress=reporter.advance if reporter else None,
    )  # fmt: skip
    flags = quality_flags(piece, result, loaded)
    for s in result.segments:
        s.start, s.end = round(s.start + start, 3), round(s.end + start, 3)
        s.language = s.language or result.language
        for w in s.words:
            w.start, w.end = round(w.start + start, 3), round(w.end + start, 3)
    flags = [replace(f, start=round(f.start + start, 3), end=round(f.end + start, 3))
             for f in flags]  # fmt: skip
    t = splice(old, start, end, result.segments, flags, speakers)
    spans = list(t.provenance.options.get("spans") or [])
    spans.append({
        "start": start,
        "end": end,
        "model": loaded.describe().model,
        "options": o.asr.to_dict(),
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    })  # fmt: skip
    t.provenance.options = {**t.provenance.options, "spans": spans}
    if reporter:
        reporter.stage(old.id, "index")
    Store(ws).publish(
        t, index=o.index, formats=o.formats, output_dir=o.output_dir, keep_edits=o.keep_edits
    )
    if reporter:
        reporter.done(t.id, "done", f"span {start:.1f}-{end:.1f} s")
    return Outcome(ref, "done", t.id, t.recording.title, audio_seconds=end - start,
                   wall_seconds=round(time.perf_counter() - t0, 3), turns=len(t.turns))  # fmt: skip
