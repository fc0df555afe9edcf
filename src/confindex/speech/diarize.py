"""Who spoke when: sherpa-onnx speaker diarization with models shipped in the package.

Pipeline (all inside sherpa-onnx, CPU, no torch): pyannote segmentation-3.0 finds up to three
local speakers in 10 s windows, CAM++ (3D-Speaker zh-en) embeds each local speaker, and the
embeddings are clustered, by a cosine-distance threshold or into a fixed number of speakers.
The fp32 ONNX files live in `confindex/models/diarization/` (see its README for provenance and
for the measurements behind the defaults of DiarizeOptions).

sherpa_onnx is imported inside functions only: `confindex search` must not pay for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from confindex.speech.audio import SAMPLE_RATE
from confindex.speech.diarize_options import (
    DiarizationError,
    DiarizeOptions,
)
from confindex.speech.sherpa_pass import sherpa_pass
from confindex.stagetime import inherit_side
from confindex.store.transcript import SpeakerSegment, Voiceprint

if TYPE_CHECKING:
    import sherpa_onnx

# Below this, there is not enough speech to embed: answer "nobody" rather than guess.
MIN_SAMPLES = SAMPLE_RATE // 2
# The lock serialises the sherpa-onnx pass: one pipeline object must not run two recordings at
# once (sherpa_pass.py), and the embedding extractors are shared.
_LOCK = threading.Lock()


def relabel(
    segments: list[SpeakerSegment], names: dict[str, str] | None = None
) -> list[SpeakerSegment]:
    """Sort by start and name speakers SPEAKER_00, SPEAKER_01… in order of first appearance
    (`names`: a mapping to extend, so that a second list gets the same labels)."""
    names = {} if names is None else names
    out = []
    for s in sorted(segments, key=lambda s: (s.start, s.end)):
        label = names.setdefault(s.speaker, f"SPEAKER_{len(names):02d}")
        out.append(SpeakerSegment(round(s.start, 3), round(s.end, 3), label))
    return out


def _check_audio(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise DiarizationError(f"diarization needs mono audio (got an array of shape {a.shape})")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.size and not np.isfinite(a).all():
        raise DiarizationError("the audio holds NaN or infinite samples")
    return a


def diarize(
    audio: np.ndarray,
    options: DiarizeOptions | None = None,
    progress: Callable[[int, int], Any] | None = None,
) -> list[SpeakerSegment]:
    """Speaker segments of `audio` (see `diarize_with_voices`, which also gives voiceprints)."""
    return diarize_with_voices(audio, options, progress).segments


@dataclass
class Diarization:
    """Speaker segments (labelled SPEAKER_00… by first appearance) and a voiceprint per label."""

    segments: list[SpeakerSegment]
    voiceprints: dict[str, Voiceprint]
    # One speaker per moment (before overlapped speech was added), same labels: what the
    # recogniser's units are cut at and its words assigned by. Cutting units at the overlap
    # speakers too changed what Whisper wrote over a babble of voices (tests/test_quality.py's
    # loop tests), while the overlap is only needed for turns' `overlap`, RTTM and DER.
    primary: list[SpeakerSegment] | None = None


def diarize_with_voices(
    audio: np.ndarray,
    options: DiarizeOptions | None = None,
    progress: Callable[[int, int], Any] | None = None,
    frames: Callable[[], Any] | None = None,
) -> Diarization:
    """Speaker segments of 16 kHz mono float32 `audio`, labelled SPEAKER_00… by first appearance.

    Silence or audio too short to embed gives []. With min/max speakers, clustering by threshold
    runs first; when the count falls outside the range, the recording is diarized again with the
    count clamped (sherpa-onnx does not expose its embeddings: that pass recomputes them).
    `progress(done, total)` is called with the number of 10 s windows processed. `frames()`:
    the overlap pass's segmentation frames, found beside this (None: found here)."""
    options = options or DiarizeOptions()
    options.validate()
    audio = _check_audio(audio)
    if audio.size < MIN_SAMPLES or not np.any(np.abs(audio) > 1e-4):
        return Diarization([], {})
    with _LOCK:
        fixed = options.num_speakers if options.num_speakers is not None else -1
        segments = sherpa_pass(options, fixed, audio, progress)
        if fixed == -1 and segments:
            found = len({s.speaker for s in segments})
            lo, hi = options.min_speakers, options.max_speakers
            target = None
            if lo is not None and found < lo:
                target = lo
            elif hi is not None and found > hi:
                target = hi
            if target is not None:
                segments = sherpa_pass(options, target, audio, progress)
        extractor = _extractor(options)
        windows: list[Window] = []
        if options.refine and options.num_speakers is None and segments:
            segments = refine(segments, audio, extractor, options, windows)
        primary = segments
        if options.overlap and segments:
            from confindex.speech import overlap

            segments = overlap.add_overlap(segments, audio, options, frames() if frames else None)
        names: dict[str, str] = {}
        segments = relabel(segments, names)
        primary = relabel(primary, names)
        prints = voiceprints(segments, audio, extractor, windows, options.workers())
    return Diarization(segments, prints, primary)


# --- voices -----------------------------------------------------------------------------------
# A voiceprint is the mean of CAM++ embeddings over a speaker's longest clean turns (no other
# speaker at the same time), at most VOICEPRINT_SECONDS of speech in pieces of at most
# VOICEPRINT_PIECE s: enough for a stable voice, and a bounded cost per speaker (CAM++ costs
# ~14 ms CPU per second of speech) whatever the length of the recording.
VOICEPRINT_SECONDS = 30.0
VOICEPRINT_PIECE = 10.0
MIN_CLEAN = 0.5  # pieces shorter than this carry too little voice to embed


_EXTRACTORS: dict[tuple[Any, ...], sherpa_onnx.SpeakerEmbeddingExtractor] = {}


def _extractor(options: DiarizeOptions) -> sherpa_onnx.SpeakerEmbeddingExtractor:
    import sherpa_onnx

    _, emb = options.model_paths()
    key = (str(emb.resolve()), options.threads())
    ex = _EXTRACTORS.get(key)
    if ex is None:
        config = sherpa_onnx.SpeakerEmbeddingExtractorConfig(
            model=str(emb), num_threads=options.threads()
        )
        ex = sherpa_onnx.SpeakerEmbeddingExtractor(config)
        _EXTRACTORS[key] = ex
    return ex


def embed(
    extractor: sherpa_onnx.SpeakerEmbeddingExtractor, audio: np.ndarray, start: float, end: float
) -> np.ndarray:
    """The unit-length voice embedding of audio[start:end] (seconds)."""
    stream = extractor.create_stream()
    stream.accept_waveform(SAMPLE_RATE, audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)])
    stream.input_finished()
    v = np.asarray(extractor.compute(stream), dtype=np.float64)
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


def embed_many(
    extractor: sherpa_onnx.SpeakerEmbeddingExtractor,
    audio: np.ndarray,
    spans: Sequence[tuple[float, float]],
    workers: int = 1,
) -> list[np.ndarray]:
    """`embed` of each (start, end) span, in order, up to `workers` at a time (each embedding
    is computed alone, so the results do not depend on `workers`)."""
    if workers <= 1 or len(spans) < 2:
        return [embed(extractor, audio, a, b) for a, b in spans]
    with ThreadPoolExecutor(max_workers=min(workers, len(spans))) as pool:
        return list(pool.map(inherit_side(lambda span: embed(extractor, audio, *span)), spans))


def clean_pieces(segments: list[SpeakerSegment], label: str) -> list[tuple[float, float]]:
    """The stretches where `label` speaks and nobody else does, longest first."""
    others = sorted((s.start, s.end) for s in segments if s.speaker != label)
    pieces: list[tuple[float, float]] = []
    for s in segments:
        if s.speaker != label:
            continue
        parts = [(s.start, s.end)]
        for a, b in others:
            nxt = []
            for x, y in parts:
                if b <= x or a >= y:
                    nxt.append((x, y))
                    continue
                if a > x:
                    nxt.append((x, a))
                if b < y:
                    nxt.append((b, y))
            parts = nxt
        pieces.extend(p for p in parts if p[1] - p[0] >= MIN_CLEAN)
    return sorted(pieces, key=lambda p: (p[0] - p[1], p[0]))


def voice_of(
    segments: list[SpeakerSegment],
    label: str,
    audio: np.ndarray,
    extractor: sherpa_onnx.SpeakerEmbeddingExtractor,
    workers: int = 1,
) -> Voiceprint | None:
    """The voiceprint of `label`: duration-weighted mean over its longest clean pieces."""
    total = 0.0
    pieces: list[tuple[float, float]] = []
    for a, b in clean_pieces(segments, label):
        while a < b - MIN_CLEAN / 2 and total < VOICEPRINT_SECONDS:
            e = min(b, a + VOICEPRINT_PIECE, a + VOICEPRINT_SECONDS - total)
            if e - a < MIN_CLEAN:
                break
            pieces.append((a, e))
            total += e - a
            a = e
        if total >= VOICEPRINT_SECONDS:
            break
    if not pieces:
        return None
    vecs = embed_many(extractor, audio, pieces, workers)
    acc = sum(v * (e - a) for (a, e), v in zip(pieces, vecs, strict=True))
    n = np.linalg.norm(acc)
    if n == 0:
        return None
    return Voiceprint([round(float(x), 5) for x in acc / n], round(total, 3))


Window = tuple[float, float, np.ndarray]  # (start, end, unit embedding) computed by refine


def voiceprints(
    segments: list[SpeakerSegment],
    audio: np.ndarray,
    extractor: sherpa_onnx.SpeakerEmbeddingExtractor,
    windows: list[Window] | None = None,
    workers: int = 1,
) -> dict[str, Voiceprint]:
    """A voiceprint per speaker label that has enough clean speech.

    Re-segmentation has already embedded every long turn in windows: a speaker with windows
    where nobody else speaks gets the mean of those (free: recomputing embeddings cost ~8% of a
    60 s fetch, bench/speakers.py); the others are embedded from their clean pieces.
    """
    from_windows: dict[str, list[Window]] = {}
    for a, b, vec in windows or []:
        who = {s.speaker for s in segments if s.start < b and a < s.end}
        if len(who) == 1:
            from_windows.setdefault(who.pop(), []).append((a, b, vec))
    out = {}
    for label in dict.fromkeys(s.speaker for s in segments):
        mine = from_windows.get(label)
        if mine:
            m = np.mean([vec for _, _, vec in mine], axis=0)
            n = float(np.linalg.norm(m)) or 1.0
            covered = _covered([(a, b) for a, b, _ in mine])
            out[label] = Voiceprint([round(float(x), 5) for x in m / n], round(covered, 3))
            continue
        vp = voice_of(segments, label, audio, extractor, workers)
        if vp is not None:
            out[label] = vp
    return out


def _covered(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by the union of `spans`."""
    total, end = 0.0, -1.0
    for a, b in sorted(spans):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def compute_voiceprints(
    audio: np.ndarray, segments: list[SpeakerSegment], options: DiarizeOptions | None = None
) -> dict[str, Voiceprint]:
    """Voiceprints for an existing diarization (a transcript made before voiceprints)."""
    options = options or DiarizeOptions()
    audio = _check_audio(audio)
    with _LOCK:
        return voiceprints(segments, audio, _extractor(options), workers=options.workers())


def _speech(segments: list[SpeakerSegment]) -> dict[str, float]:
    talk: dict[str, float] = {}
    for s in segments:
        talk[s.speaker] = talk.get(s.speaker, 0.0) + s.end - s.start
    return talk


def refine(
    segments: list[SpeakerSegment],
    audio: np.ndarray,
    extractor: sherpa_onnx.SpeakerEmbeddingExtractor,
    options: DiarizeOptions,
    windows: list[Window] | None = None,
) -> list[SpeakerSegment]:
    """Fold small clusters into similar large ones, then re-read long turns (see DiarizeOptions).

    Never goes below `min_speakers`; a speaker never disappears by re-segmentation. The window
    embeddings are appended to `windows` (for the voiceprints).
    """
    talk = _speech(segments)
    big = [k for k in talk if talk[k] >= options.min_cluster_speech]
    if not big:
        return segments
    centre: dict[str, np.ndarray] = {}
    workers = options.workers()
    for k in big:
        vp = voice_of(segments, k, audio, extractor, workers)
        if vp is not None:
            centre[k] = np.asarray(vp.vector)
    if not centre:
        return segments
    # Fold: the shortest clusters first, as long as the count stays within min_speakers.
    floor = options.min_speakers or 1
    count = len(talk)
    fold: dict[str, str] = {}
    for k in sorted((k for k in talk if k not in centre), key=lambda k: talk[k]):
        if count <= floor:
            break
        pieces = [(s.start, s.end) for s in segments if s.speaker == k]
        vecs = embed_many(extractor, audio, pieces, workers)
        acc = sum(v * (b - a) for (a, b), v in zip(pieces, vecs, strict=True))
        sims = {
            c: float(np.dot(acc, v)) / (float(np.linalg.norm(acc)) or 1.0)
            for c, v in centre.items()
        }
        best = max(sims, key=sims.__getitem__)
        if talk[k] >= options.keep_speech and sims[best] < options.keep_distinct:
            continue  # a distinct voice that speaks little
        if sims[best] >= options.fold_similarity:
            fold[k] = best
            count -= 1
    segments = [SpeakerSegment(s.start, s.end, fold.get(s.speaker, s.speaker)) for s in segments]
    if len(centre) < 2:
        return segments
    out: list[SpeakerSegment] = []
    w, step = options.reseg_window, options.reseg_step
    reread: dict[int, list[float]] = {}  # turn -> its window starts
    for n, s in enumerate(segments):
        if s.speaker in centre and s.end - s.start >= 2 * w:
            starts = reread[n] = []
            t = s.start
            while t + w <= s.end + 1e-6:
                starts.append(t)
                t += step
    # Every window of every turn at once, so the workers share one queue.
    spans = [(t, t + w) for starts in reread.values() for t in starts]
    embedded = iter(embed_many(extractor, audio, spans, workers))
    for n, s in enumerate(segments):
        if n not in reread:
            out.append(s)
            continue
        starts = reread[n]
        labels = []
        for t in starts:
            e = next(embedded)
            if windows is not None:
                windows.append((t, t + w, e))
            sims = {c: float(e @ v) for c, v in centre.items()}
            best = max(sims, key=sims.__getitem__)
            labels.append(
                best if sims[best] - sims[s.speaker] > options.reseg_margin else s.speaker
            )
        # Each window speaks for its centre; the first and last reach the turn's ends.
        for i, (t, lab) in enumerate(zip(starts, labels, strict=True)):
            a = s.start if i == 0 else t + (w - step) / 2
            b = s.end if i == len(starts) - 1 else t + (w - step) / 2 + step
            if out and out[-1].speaker == lab and abs(out[-1].end - a) < 1e-6:
                out[-1] = SpeakerSegment(out[-1].start, b, lab)
            else:
                out.append(SpeakerSegment(a, b, lab))
    if set(_speech(out)) != set(_speech(segments)):
        return segments  # a speaker vanished: keep the clustering's answer
    return out


def describe(options: DiarizeOptions | None = None) -> dict[str, Any]:
    """What produced a diarization, for the transcript's provenance (no model is loaded)."""
    from confindex.speech.diarize_info import describe as info

    return info(options or DiarizeOptions())
