"""Who spoke when: sherpa-onnx speaker diarization with models shipped in the package.

Pipeline (all inside sherpa-onnx, CPU, no torch): pyannote segmentation-3.0 finds up to three
local speakers in 10 s windows, CAM++ (3D-Speaker zh-en) embeds each local speaker, and the
embeddings are clustered, by a cosine-distance threshold or into a fixed number of speakers.
The fp32 ONNX files live in `confindex/models/diarization/` (see its README for provenance and
for the measurements behind the defaults of DiarizeOptions).

sherpa_onnx is imported inside functions only: `confindex search` must not pay for it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from confindex.errors import ConfindexError
from confindex.speech.audio import SAMPLE_RATE
from confindex.store.transcript import SpeakerSegment, Voiceprint

if TYPE_CHECKING:
    import sherpa_onnx

MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "diarization"
# File names looked up in DiarizeOptions.model_dir (any sherpa-onnx compatible pair works:
# a pyannote segmentation model, and a 3D-Speaker / WeSpeaker / NeMo embedding model).
SEGMENTATION_FILE = "segmentation.onnx"
EMBEDDING_FILE = "embedding.onnx"
# Below this, there is not enough speech to embed: answer "nobody" rather than guess.
MIN_SAMPLES = SAMPLE_RATE // 2
MAX_EMBED_WORKERS = 4


class DiarizationError(ConfindexError):
    """Bad diarization options or models; the message is one line."""


@dataclass(frozen=True)
class DiarizeOptions:
    """How to diarize. Give `num_speakers` when known, else optionally a [min, max] range.

    `threshold` is the cosine distance under which two voices are merged into one speaker:
    lower finds more speakers. `model_dir` is a folder holding `segmentation.onnx` and
    `embedding.onnx` (sherpa-onnx models with their metadata) to use instead of the shipped ones.
    """

    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    # Tuned with window_shift 0.3 (models/diarization/README.md): 0.40-0.55 all find the two
    # speakers of the pyannote sample with the same DER; this is the middle of that band.
    threshold: float = 0.475
    model_dir: Path | None = None
    # None: one thread. ONNX Runtime's worker threads spin while they wait, so 2 threads cost
    # twice the CPU (measured 0.26 vs 0.11 CPU s per audio s) for little gain in wall time,
    # and fetch's Whisper already keeps the cores busy.
    num_threads: int | None = None
    # Re-reading and voiceprints embed many short windows, each an independent CAM++ run that
    # releases the GIL: up to this many run at once (None: one per available core, at most 4).
    # Same embeddings to the last digit, same CPU, less wall time (2-core Intel Xeon): 300
    # windows took 6.5 s one at a time and 3.2 s two at a time; diarizing the 10-min bench
    # file 47.6 -> 37.3 s wall at 47 CPU s (bench/README.md, 2026-12-06 morning).
    embed_workers: int | None = None
    min_duration_on: float = 0.3  # drop speech shorter than this (s)
    min_duration_off: float = 0.5  # bridge same-speaker gaps shorter than this (s)
    # Segmentation windows (10 s) advance by this fraction of a window; segmentation and
    # embedding cost are both inversely proportional to it: 0.3 costs 0.04-0.05 CPU s per
    # audio s, 0.1 costs 0.11-0.13. The clustering threshold must be tuned with it (at 0.25 and
    # threshold 0.5, the two pyannote speakers merge).
    window_shift: float = 0.3
    # Over-counting (issue 13): after sherpa-onnx's clustering, clusters with less speech than
    # `min_cluster_speech` s fold into the most similar large cluster (pyannote's
    # min_cluster_size idea) when their voices are at least `fold_similarity` alike (cosine),
    # then every long turn is re-read in `reseg_window` s windows every `reseg_step` s, and a
    # window moves to another speaker when its voice is closer to that speaker's by more than
    # `reseg_margin`. Measured on the three real multi-speaker clips (bench/speakers.py):
    # ami_dev01 4 -> 2 speakers (2 true), DER 0.364 -> 0.167; ami_dev00 0.272 -> 0.194;
    # pyannote sample 0.017 -> 0.017. Margin 0 gave 0.154 / 0.131 but 0.031 on the pyannote
    # sample; 1.0 s windows 0.138 / 0.187 / 0.062. Off when num_speakers is given (kept exact).
    refine: bool = True
    min_cluster_speech: float = 2.0
    # The folded clusters measured were 0.3-0.4 s long and 0.48-0.49 alike to their nearest
    # cluster: too short for a reliable voice, so the bar is low; a real second voice of
    # >= 2 s is never folded.
    fold_similarity: float = 0.3
    # Counts (issue 29): a small cluster of >= `keep_speech` s less than `keep_distinct` alike
    # to every large one is a person who speaks little, kept: trn00-03 finds its 3rd person;
    # 1.0 s gave trn07 a fragment (bench/README.md, "Speakers on every shared meeting").
    keep_speech: float = 1.4
    keep_distinct: float = 0.6
    reseg_window: float = 1.5
    reseg_step: float = 0.5
    reseg_margin: float = 0.03
    # Two speakers at once (issue 29, speech/overlap.py: speech_threshold None, it added false
    # alarm; overlap_nearest: see overlap.reconcile). overlap=False: one speaker per moment.
    overlap: bool = True
    overlap_step: float = 0.5
    overlap_threshold: float = 0.2
    overlap_nearest: float | None = 0.3
    speech_threshold: float | None = None

    def validate(self) -> None:
        """Raise DiarizationError with a one-line message for impossible options."""
        for flag, value in (
            ("--num-speakers", self.num_speakers),
            ("--min-speakers", self.min_speakers),
            ("--max-speakers", self.max_speakers),
        ):
            if value is not None and value < 1:
                raise DiarizationError(f"{flag} must be at least 1 (got {value})")
        if self.num_speakers is not None and (
            self.min_speakers is not None or self.max_speakers is not None
        ):
            raise DiarizationError("give either --num-speakers or --min/--max-speakers, not both")
        if (
            self.min_speakers is not None
            and self.max_speakers is not None
            and self.min_speakers > self.max_speakers
        ):
            raise DiarizationError(
                f"--min-speakers ({self.min_speakers}) is greater than "
                f"--max-speakers ({self.max_speakers})"
            )
        if not 0 < self.threshold < 2:
            raise DiarizationError(
                f"diarization threshold must be between 0 and 2 (got {self.threshold})"
            )
        if not 0 < self.window_shift <= 1:
            raise DiarizationError(f"window_shift must be in (0, 1] (got {self.window_shift})")
        if self.num_threads is not None and self.num_threads < 1:
            raise DiarizationError(f"num_threads must be at least 1 (got {self.num_threads})")
        if self.embed_workers is not None and self.embed_workers < 1:
            raise DiarizationError(f"embed_workers must be at least 1 (got {self.embed_workers})")

    def model_paths(self) -> tuple[Path, Path]:
        """(segmentation, embedding) model files; DiarizationError if one is missing."""
        folder = Path(self.model_dir).expanduser() if self.model_dir else MODEL_DIR
        paths = (folder / SEGMENTATION_FILE, folder / EMBEDDING_FILE)
        for p in paths:
            if not p.is_file():
                raise DiarizationError(
                    f"diarization model {p} not found (a model folder needs "
                    f"{SEGMENTATION_FILE} and {EMBEDDING_FILE})"
                )
        return paths

    def threads(self) -> int:
        return self.num_threads or 1

    def workers(self) -> int:
        """How many embeddings run at once (see `embed_workers`)."""
        if self.embed_workers is not None:
            return self.embed_workers
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        return max(1, min(cores, MAX_EMBED_WORKERS))


# Loaded pipelines, keyed by what sherpa-onnx fixes at construction time (clustering can be
# changed afterwards with set_config). The lock also serialises process(): one pipeline object
# must not run two recordings at once.
_CACHE: dict[tuple[Any, ...], sherpa_onnx.OfflineSpeakerDiarization] = {}
_LOCK = threading.Lock()


def _config(
    options: DiarizeOptions, num_clusters: int
) -> sherpa_onnx.OfflineSpeakerDiarizationConfig:
    import sherpa_onnx

    seg, emb = options.model_paths()
    threads = options.threads()
    return sherpa_onnx.OfflineSpeakerDiarizationConfig(
        segmentation=sherpa_onnx.OfflineSpeakerSegmentationModelConfig(
            pyannote=sherpa_onnx.OfflineSpeakerSegmentationPyannoteModelConfig(
                model=str(seg), window_shift_ratio=options.window_shift
            ),
            num_threads=threads,
        ),
        embedding=sherpa_onnx.SpeakerEmbeddingExtractorConfig(model=str(emb), num_threads=threads),
        clustering=sherpa_onnx.FastClusteringConfig(
            num_clusters=num_clusters, threshold=options.threshold
        ),
        min_duration_on=options.min_duration_on,
        min_duration_off=options.min_duration_off,
    )


def _pipeline(options: DiarizeOptions, num_clusters: int) -> sherpa_onnx.OfflineSpeakerDiarization:
    """The cached pipeline for `options`, its clustering set to `num_clusters` (-1: threshold)."""
    import sherpa_onnx

    config = _config(options, num_clusters)
    seg, emb = options.model_paths()
    key = (
        str(seg.resolve()),
        str(emb.resolve()),
        options.threads(),
        options.min_duration_on,
        options.min_duration_off,
        options.window_shift,
    )
    sd = _CACHE.get(key)
    if sd is None:
        if not config.validate():
            raise DiarizationError(f"sherpa-onnx rejected the diarization models in {seg.parent}")
        try:
            sd = sherpa_onnx.OfflineSpeakerDiarization(config)
        except Exception as exc:  # a file that is not a suitable ONNX model
            msg = " ".join(str(exc).split())[:200]
            raise DiarizationError(
                f"cannot load diarization models from {seg.parent}: {msg}"
            ) from None
        _CACHE[key] = sd
    else:
        sd.set_config(config)  # only the clustering part is taken, which is all that varies
    return sd


def _run(
    sd: sherpa_onnx.OfflineSpeakerDiarization,
    audio: np.ndarray,
    progress: Callable[[int, int], Any] | None,
) -> list[SpeakerSegment]:
    def callback(done: int, total: int) -> int:
        if progress is not None:
            progress(done, total)
        return 0  # non-zero would abort

    result = sd.process(audio, callback=callback).sort_by_start_time()
    return [SpeakerSegment(float(s.start), float(s.end), f"#{s.speaker}") for s in result]


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
        segments = _run(_pipeline(options, fixed), audio, progress)
        if fixed == -1 and segments:
            found = len({s.speaker for s in segments})
            lo, hi = options.min_speakers, options.max_speakers
            target = None
            if lo is not None and found < lo:
                target = lo
            elif hi is not None and found > hi:
                target = hi
            if target is not None:
                segments = _run(_pipeline(options, target), audio, progress)
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
        return list(pool.map(lambda span: embed(extractor, audio, *span), spans))


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
