"""Who spoke when: sherpa-onnx speaker diarization with models shipped in the package.

Pipeline (all inside sherpa-onnx, CPU, no torch): pyannote segmentation-3.0 finds up to three
local speakers in 10 s windows, CAM++ (3D-Speaker zh-en) embeds each local speaker, and the
embeddings are clustered, by a cosine-distance threshold or into a fixed number of speakers.
The fp32 ONNX files live in `confindex/models/diarization/` (see its README for provenance and
for the measurements behind the defaults of DiarizeOptions).

sherpa_onnx is imported inside functions only: `confindex search` must not pay for it.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ConfindexError
from .transcript import SpeakerSegment

if TYPE_CHECKING:
    import sherpa_onnx

SAMPLE_RATE = 16000
MODEL_DIR = Path(__file__).resolve().parent / "models" / "diarization"
# File names looked up in DiarizeOptions.model_dir (any sherpa-onnx compatible pair works:
# a pyannote segmentation model, and a 3D-Speaker / WeSpeaker / NeMo embedding model).
SEGMENTATION_FILE = "segmentation.onnx"
EMBEDDING_FILE = "embedding.onnx"
# Below this, there is not enough speech to embed: answer "nobody" rather than guess.
MIN_SAMPLES = SAMPLE_RATE // 2


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
    min_duration_on: float = 0.3  # drop speech shorter than this (s)
    min_duration_off: float = 0.5  # bridge same-speaker gaps shorter than this (s)
    # Segmentation windows (10 s) advance by this fraction of a window; segmentation and
    # embedding cost are both inversely proportional to it: 0.3 costs 0.04-0.05 CPU s per
    # audio s, 0.1 costs 0.11-0.13. The clustering threshold must be tuned with it (at 0.25 and
    # threshold 0.5, the two pyannote speakers merge).
    window_shift: float = 0.3

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


def relabel(segments: list[SpeakerSegment]) -> list[SpeakerSegment]:
    """Sort by start and name speakers SPEAKER_00, SPEAKER_01… in order of first appearance."""
    names: dict[str, str] = {}
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
    """Speaker segments of 16 kHz mono float32 `audio`, labelled SPEAKER_00… by first appearance.

    Silence or audio too short to embed gives []. With min/max speakers, clustering by threshold
    runs first; when the count falls outside the range, the recording is diarized again with the
    count clamped. sherpa-onnx does not expose its embeddings, so that second pass recomputes
    them (it doubles the cost only for recordings outside the range).
    `progress(done, total)` is called with the number of 10 s windows processed.
    """
    options = options or DiarizeOptions()
    options.validate()
    audio = _check_audio(audio)
    if audio.size < MIN_SAMPLES or not np.any(np.abs(audio) > 1e-4):
        return []
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
    return relabel(segments)


@functools.lru_cache(maxsize=8)
def _sha256(path: str, mtime_ns: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def describe(options: DiarizeOptions | None = None) -> dict[str, Any]:
    """What produced a diarization, for the transcript's provenance (no model is loaded)."""
    from importlib.metadata import PackageNotFoundError, version

    options = options or DiarizeOptions()
    seg, emb = options.model_paths()
    try:
        engine_version = version("sherpa-onnx")
    except PackageNotFoundError:
        engine_version = None
    return {
        "engine": "sherpa-onnx",
        "engine_version": engine_version,
        "segmentation": seg.name if options.model_dir is None else str(seg),
        "embedding": emb.name if options.model_dir is None else str(emb),
        "segmentation_sha256": _sha256(str(seg), seg.stat().st_mtime_ns),
        "embedding_sha256": _sha256(str(emb), emb.stat().st_mtime_ns),
        "num_speakers": options.num_speakers,
        "min_speakers": options.min_speakers,
        "max_speakers": options.max_speakers,
        "threshold": options.threshold,
        "window_shift": options.window_shift,
    }
