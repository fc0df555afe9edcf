"""Word times for text a user typed: forced alignment of given words to a stretch of audio.

The Whisper model that transcribes also times its own words by aligning text tokens with its
cross-attention (faster-whisper's `WhisperModel.find_alignment`, dynamic time warping over the
alignment heads; `FasterWhisperDecoder.align` in speech/decoder.py). An edit reuses exactly
that on the edited stretch: no new model, no download. The text aligned is the new words with
the unchanged words around them (context), because the warping path must cover the whole
window: words known on both sides absorb the window's edges so that the new words are not
stretched over them.

`align_words` is the windowing around the decoder's alignment and is model-agnostic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
WINDOW = 30.0  # Whisper's encoder sees 30 s at most
# Words ending this close to a window's end are aligned again in the next window: the warping
# path is squeezed at its end.
TAIL = 2.0


@dataclass
class Timed:
    """One word with its aligned time in the stretch's clock (seconds) and the model's
    probability of its tokens."""

    text: str
    start: float
    end: float
    probability: float


# (samples, words, language) -> one Timed per word, in the samples' clock.
AlignFn = Callable[[np.ndarray, Sequence[str], "str | None"], list[Timed]]


def whisper_alignment(decoder: Any) -> AlignFn | None:
    """An AlignFn over a loaded decoder (speech/decoder.py) that can align given words
    (`FasterWhisperDecoder.align`); None for one that cannot (edited words stay estimated)."""
    fn = getattr(decoder, "align", None)
    if fn is None:
        return None

    def align(samples: np.ndarray, words: Sequence[str], language: str | None) -> list[Timed]:
        return [Timed(w, a, b, p) for w, (a, b, p) in zip(words, fn(samples, words, language),
                                                              strict=True)]  # fmt: skip

    return align


def align_words(
    align: AlignFn,
    samples: np.ndarray,
    words: Sequence[str],
    language: str | None,
    *,
    window: float = WINDOW,
) -> list[Timed]:
    """Times of `words` spoken in `samples` (seconds from its start). Stretches longer than
    one encoder window are aligned window by window: the words of a window that end within
    TAIL of its end are aligned again at the start of the next."""
    total = len(samples) / SAMPLE_RATE
    out: list[Timed] = []
    t0 = 0.0
    rest = list(words)
    while rest:
        piece = samples[int(t0 * SAMPLE_RATE) : int((t0 + window) * SAMPLE_RATE)]
        timed = align(piece, rest, language)
        last_window = t0 + window >= total - 1e-6
        if last_window:
            keep = len(timed)
        else:
            limit = min(window, len(piece) / SAMPLE_RATE) - TAIL
            keep = sum(1 for x in timed if x.end <= limit)
            keep = max(keep, 1)  # always progress
        for x in timed[:keep]:
            out.append(Timed(x.text, round(t0 + x.start, 3), round(t0 + x.end, 3), x.probability))
        rest = rest[keep:]
        if rest:
            t0 = out[-1].end
            if t0 >= total:  # no audio left: the rest sit at the end
                out.extend(Timed(w, total, total, 0.0) for w in rest)
                break
    return out


def decode_stretch(path: Any, start: float, end: float) -> np.ndarray:
    """16 kHz mono samples of [start, end] of a media file, decoding only around it (PyAV
    seeks to the key frame before `start`): an edit in a 3-hour file decodes seconds."""
    import av

    from confindex.speech.audio import MediaError

    resampler = av.audio.resampler.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    first: float | None = None
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise MediaError(f"{path} has no audio track")
            stream = container.streams.audio[0]
            if start > 1.0 and stream.time_base:
                container.seek(int((start - 1.0) / stream.time_base), stream=stream)
            for frame in container.decode(audio=0):
                t = float(frame.pts * frame.time_base) if frame.pts is not None else None
                if first is None:
                    first = t if t is not None else 0.0
                for rf in resampler.resample(frame):
                    chunks.append(rf.to_ndarray().reshape(-1))
                if t is not None and t > end + 0.5:
                    break
    except av.error.FFmpegError as exc:
        raise MediaError(f"cannot read {path}: {exc}") from None
    samples = (np.concatenate(chunks) if chunks else np.zeros(0, np.int16)).astype(np.float32)
    samples /= 32768
    off = start - (first or 0.0)
    a = max(0, round(off * SAMPLE_RATE))
    return samples[a : a + round((end - start) * SAMPLE_RATE)]


def media_path(ws: Any, t: Any) -> Any:
    """The recording's media file when it is still there, else None."""
    from pathlib import Path

    rec = t.recording
    for cand in (rec.media_path, rec.source if rec.kind == "file" else None):
        if not cand:
            continue
        p = Path(cand)
        if not p.is_absolute():
            p = ws.root / p
        if p.is_file():
            return p
    return None


def time_edit(
    samples: np.ndarray, offset: float, plan: Any, texts: Sequence[str], align: AlignFn
) -> tuple[list[tuple[float, float]], list[float]]:
    """Times (recording clock) and probabilities of the new words `texts` of an edit `plan`
    (store/edits.plan_edit), aligned in `samples` that start at `offset` seconds, with the
    plan's unchanged words before and after as context. New words are kept between their
    kept neighbours."""
    before = [w.text.strip() for w in plan.before]
    after = [w.text.strip() for w in plan.after]
    words = [*before, *texts, *after]
    timed = align_words(align, samples, words, plan.language)
    mine = timed[len(before) : len(before) + len(texts)]
    lo = plan.before[-1].end if plan.before else plan.lo
    hi = plan.after[0].start if plan.after else plan.hi
    times, probs = [], []
    for x in mine:
        a = min(max(offset + x.start, lo), hi)
        b = min(max(offset + x.end, a), hi)
        times.append((round(a, 3), round(b, 3)))
        probs.append(x.probability)
    return times, probs
