"""The speech engine behind one seam: what the pipeline asks of a speech recogniser.

`Decoder` is everything asr.py, language.py, span.py and the job call on a model: the languages
it knows, where speech is (VAD), the language of stretches of audio (Whisper's language head on
encoder output), decoding chunks of speech units in one language (batched or sequentially), and
a description for the transcript's provenance. `FasterWhisperDecoder` is the one engine: every
faster-whisper and CTranslate2 import of the package is in this module, inside the functions
that need them (`confindex search` never loads them). Adding an engine means another class
with these methods and a branch in `load_model`. speech/fake.py is a scripted stand-in
for tests, chosen by setting CONFINDEX_FAKE_DECODER to its script.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from confindex.errors import DeviceError, ModelError
from confindex.log import suppressed
from confindex.speech.audio import SAMPLE_RATE
from confindex.speech.heap import keep_freed_memory
from confindex.speech.model_files import ModelSpec, dir_sha256, resolve_model
from confindex.speech.units import Unit, as_float, clip_seconds, pack, restore_times
from confindex.store.transcript import Engine, Segment, Word

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("confindex.speech.decoder")

# A JSON script (speech/fake.py) that stands in for the model: for tests that do not measure
# recognition, in this process and in the subprocesses and Dask workers it starts.
FAKE_ENV = "CONFINDEX_FAKE_DECODER"
# Set by `make test-fast`: loading a real model is then an error, so that a test that needs the
# model but lacks its `slow` mark fails instead of quietly loading it.
NO_MODEL_ENV = "CONFINDEX_NO_MODEL"

Probs = dict[str, float]


@dataclass(frozen=True)
class VadSettings:
    """Where speech is: Silero VAD's settings (asr.py chooses them)."""

    threshold: float
    min_silence_ms: int
    pad_ms: int
    max_seconds: float = math.inf  # longer speech is cut into pieces this long


@dataclass
class DecodeSettings:
    """How to decode: one language, beam search, prompts, and engine options passed as they
    are (faster-whisper's hallucination guards, `no_repeat_ngram_size`, `max_new_tokens`)."""

    language: str
    batch_size: int  # > 1: the batched pipeline; 0 or 1: sequential decoding
    beam_size: int = 5
    word_timestamps: bool = True
    initial_prompt: str | None = None
    hotwords: str | None = None
    condition_on_previous_text: bool = False  # sequential decoding only
    options: dict[str, Any] = field(default_factory=dict)


class Decoder(Protocol):
    """A loaded speech recogniser (see the module docstring)."""

    device: str  # "cpu" | "cuda"
    compute_type: str

    @property
    def multilingual(self) -> bool:
        """False for an English-only model: nothing to detect."""
        ...

    def languages(self) -> list[str]:
        """The language codes the model can decode."""
        ...

    def speech(self, audio: np.ndarray, vad: VadSettings) -> list[tuple[float, float]]:
        """Stretches of speech (seconds) in 16 kHz mono `audio`."""
        ...

    def detect(self, audio: np.ndarray, spans: Sequence[tuple[float, float]]) -> list[Probs]:
        """Language probabilities of each (start, end) stretch of `audio`, judged alone."""
        ...

    def decode(
        self, audio: np.ndarray, chunks: Sequence[Sequence[Unit]], settings: DecodeSettings
    ) -> list[Segment]:
        """Segments with words of the units of `chunks` (each chunk ≤ 30 s of speech, one
        clip), times on `audio`'s clock, in time order within each chunk."""
        ...

    def describe(self) -> Engine:
        """Engine, version, model and its sha256: the transcript's provenance."""
        ...


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


@cache
def known_languages() -> frozenset[str]:
    """The language codes Whisper knows, without loading a model (to check `--language`
    before any work). The one read of faster-whisper's private list: a loaded model says the
    same through `WhisperModel.supported_languages` (FasterWhisperDecoder.languages)."""
    openmp_policy()  # importing faster_whisper loads CTranslate2 (and OpenMP)
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return frozenset(_LANGUAGE_CODES)


def runtime_loaded() -> bool:
    """Whether CTranslate2 (and the OpenMP it links) is loaded in this process already: its
    environment (OMP_WAIT_POLICY, thread limits) is read once, at that moment."""
    return "ctranslate2" in sys.modules


def openmp_policy() -> None:
    """The default OpenMP spin-wait makes CTranslate2 collapse below real time on busy cores
    (NOTES.md: float32 5-14x realtime, stable with PASSIVE). OpenMP reads it once, when
    CTranslate2 loads: set it just before (unless the user did), not at import."""
    if not runtime_loaded():
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cuda_device_count() -> int:
    openmp_policy()
    import ctranslate2

    try:
        return ctranslate2.get_cuda_device_count()
    except Exception:  # a broken CUDA install must not stop CPU users
        log.debug("CTranslate2 could not count CUDA devices", exc_info=True)
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
                with suppressed(log, f"loading {lib.name}", OSError):
                    ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)


_LOADED: dict[tuple[str, str, str, int], FasterWhisperDecoder] = {}


def load_model(
    model: str | None = None,
    device: str = "auto",
    compute_type: str | None = None,
    cpu_threads: int = 0,
) -> Decoder:
    """Load (once per process) a Whisper model on the chosen device; the scripted
    FakeDecoder instead when $CONFINDEX_FAKE_DECODER names a script."""
    if os.environ.get(FAKE_ENV):
        from confindex.speech.fake import FakeDecoder

        return FakeDecoder.from_file(Path(os.environ[FAKE_ENV]))
    if os.environ.get(NO_MODEL_ENV):
        raise ModelError(f"loading a speech model is turned off here ({NO_MODEL_ENV} is set)")
    spec = resolve_model(model)
    dev, ctype = choose_device(device, compute_type)
    key = (spec.path, dev, ctype, cpu_threads)
    if key in _LOADED:
        return _LOADED[key]
    if dev == "cuda":
        _preload_cuda_libraries()
    openmp_policy()
    keep_freed_memory()  # Archive.fetch did it already; for library users (speech/heap.py)
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
    loaded = FasterWhisperDecoder(wm, spec, dev, ctype)
    _LOADED[key] = loaded
    return loaded


def _hub_model_sha256(name: str, hint: Path) -> str | None:
    """sha256 of a hub model's model.bin from faster-whisper's local download (online users)."""
    with suppressed(log, f"hashing the cached model {name}"):
        from faster_whisper.utils import download_model

        return dir_sha256(Path(download_model(name, local_files_only=True)))
    return None


def check_model(model: str | None, device: str = "auto", compute_type: str | None = None) -> None:
    """Everything about the model that can be checked before any download or decoding: a
    directory must hold a model, a hub model must be cached (or downloaded now, online), the
    device must exist. Raises ModelError/DeviceError; nothing is loaded."""
    if os.environ.get(FAKE_ENV):
        from confindex.speech.fake import FakeDecoder

        FakeDecoder.from_file(Path(os.environ[FAKE_ENV]))  # a bad script fails here
        return
    spec = resolve_model(model)
    if not spec.offline:
        _fetch_hub_model(spec.name)
    choose_device(device, compute_type)


def _fetch_hub_model(name: str) -> None:
    """A hub model is in the local cache, or downloaded now: before any decoding, so that a
    machine without network fails in a second, not after decoding a whole recording."""
    from faster_whisper.utils import download_model

    try:
        download_model(name, local_files_only=True)
        return
    except Exception:  # huggingface_hub raises several types for "not in the cache"
        log.debug("model %s is not in the local cache", name, exc_info=True)
        if _hub_offline():
            raise ModelError(
                f"cannot get model {name!r}: not in the local cache and the Hugging Face "
                "Hub is offline (HF_HUB_OFFLINE=1); pass --model DIR or use the embedded model"
            ) from None
    log.info("downloading model %s from the Hugging Face Hub", name)
    try:
        download_model(name)
    except Exception as exc:  # network, repository or disk errors, in many types
        raise ModelError(
            f"cannot get model {name!r} from the Hugging Face Hub ({type(exc).__name__}); "
            "offline, pass --model DIR or use the embedded model"
        ) from None


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


# Pieces of one length go through the encoder together, this many at a time, each with the
# probabilities it gets alone: the 65 pieces of the 10-min bench file cost 6.6 CPU s (3.3 s
# wall) instead of 8.8 (4.6) one by one, the same 91 of 91 units right (bench/transcription.py
# --detect, AMD EPYC, 2 cores). Batches of 20 cost more than batches of 8.
DETECT_BATCH = 8


class FasterWhisperDecoder:
    """A Whisper model loaded by faster-whisper (CTranslate2): `load_model` makes one."""

    name = "faster-whisper"

    def __init__(self, model: Any, spec: ModelSpec, device: str, compute_type: str) -> None:
        self.model = model  # faster_whisper.WhisperModel
        self.spec = spec
        self.device = device
        self.compute_type = compute_type
        self._batched: Any = None

    @property
    def multilingual(self) -> bool:
        return bool(self.model.model.is_multilingual)

    def languages(self) -> list[str]:
        return list(self.model.supported_languages)

    def describe(self) -> Engine:
        runtime = _version("ctranslate2")
        return Engine(
            name=self.name,
            version=_version("faster-whisper"),
            model=self.spec.name,
            sha256=self.spec.sha256,
            runtime=f"ctranslate2 {runtime}" if runtime else None,
        )

    def speech(self, audio: np.ndarray, vad: VadSettings) -> list[tuple[float, float]]:
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        found = get_speech_timestamps(
            audio,
            VadOptions(
                threshold=vad.threshold,
                min_silence_duration_ms=vad.min_silence_ms,
                speech_pad_ms=vad.pad_ms,
                max_speech_duration_s=vad.max_seconds,
            ),
        )
        return [(c["start"] / SAMPLE_RATE, c["end"] / SAMPLE_RATE) for c in found]

    def detect(self, audio: np.ndarray, spans: Sequence[tuple[float, float]]) -> list[Probs]:
        """Each stretch encoded unpadded: Whisper's encoder accepts inputs shorter than its 30-s
        window and the cost falls with the length (language.py); stretches of one length
        share encoder passes of up to DETECT_BATCH (most are DETECT_SECONDS long exactly)."""
        import numpy as np

        pieces = [audio[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE)] for a, b in spans]
        found: dict[int, Probs] = {}
        by_length: dict[int, list[int]] = {}
        for i, piece in enumerate(pieces):
            by_length.setdefault(len(piece), []).append(i)
        for idx in by_length.values():
            for k in range(0, len(idx), DETECT_BATCH):
                batch = idx[k : k + DETECT_BATCH]
                features = np.stack([self._features(pieces[i]) for i in batch])
                encoded = self.model.encode(features)
                for i, result in zip(batch, self.model.model.detect_language(encoded), strict=True):
                    found[i] = {token[2:-2]: float(p) for token, p in result}
        # Filled by index and read back in order: a missing result raises, never shifts.
        return [found[i] for i in range(len(pieces))]

    def _features(self, samples: np.ndarray) -> np.ndarray:
        """Whisper's log-mel features of `samples`, unpadded."""
        fe = self.model.feature_extractor
        return fe(samples)[..., :-1][..., : fe.nb_max_frames]

    def decode(
        self, audio: np.ndarray, chunks: Sequence[Sequence[Unit]], settings: DecodeSettings
    ) -> list[Segment]:
        """The units' speech packed end to end (as faster-whisper's own VAD path does), each
        chunk one clip, decoded, and mapped back to `audio`'s clock (units.restore_times)."""
        import numpy as np

        packing = pack(chunks, total=len(audio))
        if not packing.clips:
            return []
        pieces = [audio[a:b] for a, b in packing.pieces]
        packed = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        options = dict(settings.options)
        longest = max((b - a for a, b in packing.clips), default=0.0)
        cap = token_cap(longest, self._prompt_room(settings))
        if cap is not None and "max_new_tokens" not in options:
            options["max_new_tokens"] = cap
        kwargs: dict[str, Any] = dict(
            language=settings.language,
            beam_size=settings.beam_size,
            word_timestamps=settings.word_timestamps,
            initial_prompt=settings.initial_prompt,
            hotwords=settings.hotwords,
            vad_filter=False,
            **options,
        )
        if settings.batch_size > 1:
            # The batched pipeline drops timestamps by default: keep them for turns and citations.
            segments_iter, _ = self._batched_pipeline().transcribe(
                packed,
                batch_size=settings.batch_size,
                without_timestamps=False,
                clip_timestamps=[
                    {"start": clip_seconds(a), "end": clip_seconds(b)} for a, b in packing.clips
                ],
                **kwargs,
            )
        else:
            segments_iter, _ = self.model.transcribe(
                packed,
                clip_timestamps=[t for clip in packing.clips for t in clip],
                condition_on_previous_text=settings.condition_on_previous_text,
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
                avg_logprob=as_float(s.avg_logprob, 4),
                no_speech_prob=as_float(s.no_speech_prob, 4),
            )
            out.extend(restore_times(seg, packing.spans))
        return out

    def align(
        self, samples: np.ndarray, words: Sequence[str], language: str | None
    ) -> list[tuple[float, float, float]]:
        """(start, end, probability) of each of `words` spoken in `samples` (≤ 30 s, seconds
        from its start): forced alignment of the given text with this model's cross-attention
        (`WhisperModel.find_alignment`, how faster-whisper times its own words). For edits
        (issue 27); speech/align.py does the windowing. Not part of the Decoder protocol: an
        engine without it leaves edited words estimated."""
        import numpy as np
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer

        model = self.model
        if not words:
            return []
        tokenizer = Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
            language=language or "en",
        )  # fmt: skip
        features = model.feature_extractor(samples)
        num_frames = min(features.shape[-1], model.feature_extractor.nb_max_frames)
        encoder_output = model.encode(pad_or_trim(features[:, :num_frames]))
        # Tokens per word, so that the aligner's own word split maps back to the given words.
        pieces = [tokenizer.encode(" " + w) for w in words]
        tokens = [tok for p in pieces for tok in p]
        (aligned,) = model.find_alignment(tokenizer, [tokens], encoder_output, num_frames)
        per_token: list[tuple[float, float, float]] = []
        for a in aligned:
            timing = (float(a["start"]), float(a["end"]), float(a["probability"]))
            per_token.extend([timing] * len(a["tokens"]))
        if not per_token:  # nothing aligned (a window of silence)
            return [(0.0, 0.0, 0.0) for _ in words]
        out, k = [], 0
        for p in pieces:
            span = per_token[k : k + len(p)] or per_token[-1:]
            k += len(p)
            out.append((span[0][0], span[-1][1], float(np.mean([x[2] for x in span]))))
        return out

    def _batched_pipeline(self) -> Any:
        if self._batched is None:
            from faster_whisper import BatchedInferencePipeline

            self._batched = BatchedInferencePipeline(model=self.model)
        return self._batched

    def _prompt_room(self, settings: DecodeSettings) -> int:
        """Whisper's 448 tokens less the longest prompt faster-whisper may build: the
        previous text (the initial prompt, or what conditioning carries, ≤ 223 tokens),
        hotwords and a prefix (≤ 223 each), and 5 control tokens."""

        def tokens(text: object) -> int:
            if not text:
                return 0
            ids = self.model.hf_tokenizer.encode(" " + str(text).strip(), add_special_tokens=False)
            return min(len(ids.ids), PROMPT_PART_MAX)

        previous = PROMPT_PART_MAX  # conditioning (sequential) may carry this much
        hot = tokens(settings.hotwords)
        prefix = tokens(settings.options.get("prefix"))
        return WHISPER_MAX_LENGTH - (5 + previous + hot + prefix)


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
            last.end = as_float(p.end)
            last.probability = min(last.probability, as_float(p.probability, 4))
        else:
            words.append(
                Word(as_float(p.start), as_float(p.end), text.strip(), as_float(p.probability, 4))
            )
    return words
