"""Measure confindex against references: ASR (WER/CER), diarization (DER), search (recall@k).

Text normalisation decides what a WER means, so every result names its normaliser:

- ``whisper-english``: OpenAI Whisper's EnglishTextNormalizer (from the `whisper-normalizer`
  package): lower case, no punctuation, spelled-out numbers to digits, British to American
  spelling, contractions expanded. The normaliser Whisper's own English WERs are reported with.
- ``whisper-basic``: Whisper's BasicTextNormalizer, for every other language: lower case,
  punctuation and symbols to spaces, diacritics kept (``é`` ≠ ``e`` in French).
- ``none``: whitespace only; every comma and capital counts.

WER and CER are computed by jiwer on the normalised texts; CER counts the spaces between words.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confindex.errors import InputError

if TYPE_CHECKING:
    from confindex.speech.asr import AsrOptions, AsrResult
    from confindex.speech.decoder import Decoder
    from confindex.store.workspace import Workspace

NORMALISERS = ("auto", "whisper-english", "whisper-basic", "none")


@dataclass(frozen=True)
class Normaliser:
    name: str
    fn: Callable[[str], str]

    def __call__(self, text: str) -> str:
        return " ".join(self.fn(text).split())


def normaliser(name: str = "auto", language: str | None = None) -> Normaliser:
    """A named normaliser; ``auto`` picks whisper-english for English, whisper-basic otherwise."""
    if name == "auto":
        name = "whisper-english" if (language or "").lower().startswith("en") else "whisper-basic"
    if name == "none":
        return Normaliser("none", str)
    if name not in NORMALISERS:
        raise InputError(f"unknown normaliser {name!r}: use one of {', '.join(NORMALISERS)}")
    try:
        if name == "whisper-english":
            from whisper_normalizer.english import EnglishTextNormalizer

            return Normaliser(name, EnglishTextNormalizer())
        from whisper_normalizer.basic import BasicTextNormalizer

        return Normaliser(name, BasicTextNormalizer())
    except ImportError:
        raise InputError(
            f"the {name} normaliser needs the whisper-normalizer package: "
            "pip install whisper-normalizer (or use --normaliser none)"
        ) from None


@dataclass
class ErrorRates:
    """Word and character error rates of a hypothesis against a reference, after normalising."""

    wer: float
    cer: float
    substitutions: int
    deletions: int
    insertions: int
    ref_words: int
    hyp_words: int
    normaliser: str
    reference: str  # normalised
    hypothesis: str  # normalised

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def error_rates(reference: str, hypothesis: str, norm: Normaliser | None = None) -> ErrorRates:
    """WER and CER of `hypothesis` against `reference` (normalised with `norm`, default none).

    An empty reference is an input error: no error rate is defined against nothing.
    """
    import jiwer

    norm = norm or normaliser("none")
    ref, hyp = norm(reference), norm(hypothesis)
    if not ref:
        raise InputError("the reference is empty after normalising: nothing to score against")
    if not hyp:  # jiwer refuses empty strings; everything was deleted
        n = len(ref.split())
        return ErrorRates(1.0, 1.0, 0, n, 0, n, 0, norm.name, ref, hyp)
    words = jiwer.process_words(ref, hyp)
    chars = jiwer.process_characters(ref, hyp)
    return ErrorRates(
        wer=float(words.wer),
        cer=float(chars.cer),
        substitutions=words.substitutions,
        deletions=words.deletions,
        insertions=words.insertions,
        ref_words=len(ref.split()),
        hyp_words=len(hyp.split()),
        normaliser=norm.name,
        reference=ref,
        hypothesis=hyp,
    )


def wer(reference: str, hypothesis: str, norm: Normaliser | None = None) -> float:
    return error_rates(reference, hypothesis, norm).wer


def cer(reference: str, hypothesis: str, norm: Normaliser | None = None) -> float:
    return error_rates(reference, hypothesis, norm).cer


# ---------------------------------------------------------------------------------------------
# ASR


@dataclass
class AsrEvaluation:
    audio: str
    duration: float
    language: str | None
    model: str
    device: str
    compute_type: str
    seconds: float  # transcription wall time
    rates: ErrorRates

    @property
    def speed(self) -> float:
        """Seconds of audio per wall second."""
        return self.duration / self.seconds if self.seconds > 0 else math.inf

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rates"] = self.rates.as_dict()
        d["speed"] = round(self.speed, 2)
        return d


def evaluate_asr(
    audio_path: str | Path,
    reference: str,
    loaded: Decoder,
    options: AsrOptions | None = None,
    normaliser_name: str = "auto",
) -> AsrEvaluation:
    """Decode and transcribe `audio_path` as confindex does, and score it against `reference`."""
    from confindex.speech import audio
    from confindex.speech.asr import transcribe

    samples = audio.decode(audio_path)
    result = transcribe(loaded, samples, options)
    return score_asr(str(audio_path), reference, result, loaded, normaliser_name)


def score_asr(
    audio_name: str,
    reference: str,
    result: AsrResult,
    loaded: Decoder,
    normaliser_name: str = "auto",
) -> AsrEvaluation:
    """Score an ASR result; the normaliser follows the detected (or forced) language.

    A mixed-language result gets whisper-basic under ``auto``: the English normaliser would
    rewrite the other language's words (numbers, spellings) on one side only.
    """
    hypothesis = " ".join(s.text for s in result.segments)
    languages = getattr(result, "languages", None) or {}
    language = None if len(languages) > 1 else result.language
    norm = normaliser(normaliser_name, language)
    return AsrEvaluation(
        audio=audio_name,
        duration=round(result.duration, 3),
        language=result.language,
        model=loaded.describe().model,
        device=loaded.device,
        compute_type=loaded.compute_type,
        seconds=round(result.seconds, 3),
        rates=error_rates(reference, hypothesis, norm),
    )


# ---------------------------------------------------------------------------------------------
# Diarization


@dataclass
class DiarizationEvaluation:
    audio: str
    der: float
    missed: float
    false_alarm: float
    confusion: float
    total: float
    collar: float
    ref_speakers: int
    hyp_speakers: int
    mapping: dict[str, str]
    seconds: float
    # DER of the stretches where two or more reference speakers talk at once, and their length
    # (reference seconds, each speaker counted).
    overlap_der: float = 0.0
    overlap_total: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_diarization(
    audio_path: str | Path,
    rttm_path: str | Path,
    options: Any = None,
    collar: float = 0.25,
) -> DiarizationEvaluation:
    """Diarize `audio_path` with confindex.speech.diarize and score it against an RTTM reference."""
    import time

    from confindex.evaluation.der import der, read_rttm
    from confindex.speech import audio
    from confindex.speech.diarize import diarize

    reference = read_rttm(rttm_path)
    if not reference:
        raise InputError(f"{rttm_path} holds no SPEAKER lines")
    samples = audio.decode(audio_path)
    t0 = time.perf_counter()
    hypothesis = diarize(samples, options)
    seconds = time.perf_counter() - t0
    r = der(reference, hypothesis, collar=collar)
    return DiarizationEvaluation(
        audio=str(audio_path),
        der=r.der,
        missed=r.missed,
        false_alarm=r.false_alarm,
        confusion=r.confusion,
        total=r.total,
        collar=collar,
        ref_speakers=len({s.speaker for s in reference}),
        hyp_speakers=len({s.speaker for s in hypothesis}),
        mapping=dict(r.mapping),
        seconds=round(seconds, 3),
        overlap_der=r.overlap_der,
        overlap_total=r.overlap_total,
    )


# ---------------------------------------------------------------------------------------------
# Speaker recognition (voice library)


@dataclass
class NameScore:
    """Names given to a test recording's speakers against the truth (reference overlap)."""

    named: int  # speakers the library named
    correct: int  # ... with the right name
    recognisable: int  # speakers whose true person is enrolled
    # diarization label -> {"truth": ref label or None, "name": given or None, "score": ...}
    speakers: dict[str, dict[str, Any]]

    @property
    def precision(self) -> float:
        return self.correct / self.named if self.named else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.recognisable if self.recognisable else 1.0


def score_names(
    given: dict[str, str | None], truth: dict[str, str | None], enrolled: set[str]
) -> NameScore:
    """Precision (right names among names given) and recall (right names among speakers whose
    person is enrolled). Pure."""
    named = sum(1 for n in given.values() if n)
    correct = sum(1 for k, n in given.items() if n and truth.get(k) == n)
    recognisable = sum(1 for k in given if truth.get(k) in enrolled)
    speakers = {k: {"truth": truth.get(k), "name": n} for k, n in given.items()}
    return NameScore(named, correct, recognisable, speakers)


@dataclass
class SpeakerEvaluation:
    enroll_audio: str
    test_audio: str
    enrolled: list[str]
    precision: float
    recall: float
    named: int
    correct: int
    recognisable: int
    speakers: dict[str, dict[str, Any]]
    threshold: float
    margin: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_speakers(
    enroll_audio: str | Path,
    enroll_rttm: str | Path,
    test_audio: str | Path,
    test_rttm: str | Path,
    options: Any = None,
) -> SpeakerEvaluation:
    """Enroll the reference speakers of one recording (each diarized speaker under the reference
    speaker it overlaps most), then name the speakers of another with the voice library."""
    from confindex.evaluation.der import der, read_rttm
    from confindex.speech import audio, voices
    from confindex.speech.diarize import diarize_with_voices
    from confindex.store.transcript import Voiceprint

    refs = []
    for path in (enroll_rttm, test_rttm):
        r = read_rttm(path)
        if not r:
            raise InputError(f"{path} holds no SPEAKER lines")
        refs.append(r)
    enroll_samples = audio.decode(enroll_audio)
    test_samples = audio.decode(test_audio)
    lib = voices.Library()
    enrolled = diarize_with_voices(enroll_samples, options)
    for label, ref in der(refs[0], enrolled.segments).mapping.items():
        vp = enrolled.voiceprints.get(label)
        if vp is not None:
            lib.enroll(ref, "enroll", label, Voiceprint(vp.vector, vp.seconds))
    test = diarize_with_voices(test_samples, options)
    truth: dict[str, str | None] = dict(der(refs[1], test.segments).mapping)
    given: dict[str, str | None] = {}
    scores: dict[str, float | None] = {}
    for label in sorted({s.speaker for s in test.segments}):
        vp = test.voiceprints.get(label)
        m = voices.best_match(lib.scores(vp.vector)) if vp is not None else None
        given[label] = m.name if m else None
        scores[label] = m.score if m else None
    ns = score_names(given, truth, {p.name for p in lib.people.values()})
    for label, info in ns.speakers.items():
        info["score"] = scores[label]
    return SpeakerEvaluation(
        enroll_audio=str(enroll_audio),
        test_audio=str(test_audio),
        enrolled=sorted(p.name for p in lib.people.values()),
        precision=ns.precision,
        recall=ns.recall,
        named=ns.named,
        correct=ns.correct,
        recognisable=ns.recognisable,
        speakers=ns.speakers,
        threshold=voices.THRESHOLD,
        margin=voices.MARGIN,
    )


# ---------------------------------------------------------------------------------------------
# Search


@dataclass(frozen=True)
class SearchRef:
    """A query and where its answer is: a recording (id, prefix or source) and a time."""

    query: str
    recording: str
    time: float


@dataclass
class SearchOutcome:
    query: str
    recording: str  # resolved recording id
    time: float
    rank: int | None  # rank of the first hit in that recording (1-based), None: not in top k
    hit_time: float | None  # time of the closest hit in that recording within the top k
    time_error: float | None  # |hit_time - time|


@dataclass
class SearchEvaluation:
    k: int
    tolerance: float | None
    outcomes: list[SearchOutcome] = field(default_factory=list)

    @property
    def found(self) -> list[SearchOutcome]:
        return [o for o in self.outcomes if o.rank is not None]

    @property
    def recall(self) -> float:
        return len(self.found) / len(self.outcomes) if self.outcomes else 0.0

    @property
    def mrr(self) -> float:
        return sum(1 / o.rank for o in self.found if o.rank) / max(len(self.outcomes), 1)

    @property
    def mean_time_error(self) -> float | None:
        errs = [o.time_error for o in self.found if o.time_error is not None]
        return sum(errs) / len(errs) if errs else None

    @property
    def max_time_error(self) -> float | None:
        errs = [o.time_error for o in self.found if o.time_error is not None]
        return max(errs) if errs else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "tolerance": self.tolerance,
            "queries": len(self.outcomes),
            "recall": self.recall,
            "mrr": self.mrr,
            "mean_time_error": self.mean_time_error,
            "max_time_error": self.max_time_error,
            "outcomes": [asdict(o) for o in self.outcomes],
        }


def _read_json(p: Path) -> Any:
    from confindex.store.workspace import check_file

    check_file(p)  # a FIFO or a device would be read for ever
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"no such file: {p}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{p.name} is not JSON ({exc})") from None


def read_search_refs(
    path: str | Path, words: Sequence[tuple[str, float]] | None = None, lang: str | None = None
) -> list[SearchRef]:
    """Read `[{"query", "recording", "time"}, …]` (or `{"queries": [...]}`) from a JSON file.

    `time` may be seconds or a clock string such as "0:26" or "1m05s". With `words` (a
    word-timed reference, see read_word_timings) an entry may leave `time` out: it expects
    every moment where the reference says the query (one reference per moment).
    """
    from confindex.timefmt import parse_time

    p = Path(path)
    data = _read_json(p)
    items = data.get("queries") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise InputError(f"{p.name}: expected a non-empty list of {{query, recording, time}}")
    refs = []
    for i, item in enumerate(items, 1):
        need = {"query", "recording"} if words is not None else {"query", "recording", "time"}
        if not isinstance(item, dict) or not need <= item.keys():
            what = "query and recording" if words is not None else "query, recording and time"
            raise InputError(f"{p.name}: entry {i} needs {what}")
        query, rec = str(item["query"]), str(item["recording"])
        if "time" in item:
            t = item["time"]
            seconds = float(t) if isinstance(t, (int, float)) else parse_time(str(t))
            refs.append(SearchRef(query, rec, seconds))
            continue
        assert words is not None
        found = said_at(query, words, lang)
        if not found:
            raise InputError(f"{p.name}: entry {i}: the reference never says {query!r}")
        refs += [SearchRef(query, rec, t) for t in found]
    return refs


def read_word_timings(path: str | Path) -> list[tuple[str, float]]:
    """A word-timed reference: `[{"text", "start"}, …]` (or `{"words": [...]}`), in order."""
    p = Path(path)
    data = _read_json(p)
    items = data.get("words") if isinstance(data, dict) else data
    try:
        out = [(str(w["text"]), float(w["start"])) for w in items]
    except (TypeError, KeyError, ValueError):
        raise InputError(f"{p.name}: expected a list of {{text, start}} words") from None
    if not out:
        raise InputError(f"{p.name}: no words")
    return out


def said_at(query: str, words: Sequence[tuple[str, float]], lang: str | None) -> list[float]:
    """Where the reference says the query: the start of each mention, found by the same
    analysis and matching the search uses (locate.py), run on the reference's words."""
    from array import array

    from confindex.search.analysis import STEM_LANGS
    from confindex.search.compile import compile
    from confindex.search.grammar import parse
    from confindex.search.locate import TurnTokens, passages

    clean = [(" ".join(t.split()).replace(" ", "\u00a0"), s) for t, s in words]
    clean = [(t, s) for t, s in clean if t]
    text = " ".join(t for t, _ in clean)
    offsets = array("I", (max(0, round(s * 100)) for _, s in clean)).tobytes()
    tt = TurnTokens.of(text, lang, offsets)
    tree = compile(parse(query), STEM_LANGS).tree
    times = [tt.time_of(p.first, 0.0) for p in passages(tree, tt)]
    return [round(t, 2) for t in times if t is not None]


def _times(hit: Any) -> list[float]:
    """Every mention's time in a hit (a hit without mentions: its own time)."""
    return [m.time for m in getattr(hit, "mentions", None) or []] or [hit.time]


def evaluate_search(
    ws: Workspace,
    refs: Sequence[SearchRef],
    k: int = 10,
    tolerance: float | None = None,
    search_fn: Callable[..., Iterable[Any]] | None = None,
) -> SearchEvaluation:
    """Run each query against the workspace index and score where the expected answer ranks.

    A reference counts as found when a hit from its recording is in the top `k` (and, with
    `tolerance`, one of its mentions starts within that many seconds of the expected time).
    The time error is measured on the closest mention.
    """
    from confindex.store.transcript import resolve_recording

    if search_fn is None:
        from confindex.search.hits import search as search_fn
    ev = SearchEvaluation(k=k, tolerance=tolerance)
    resolved: dict[str, str] = {}
    for ref in refs:
        if ref.recording not in resolved:
            resolved[ref.recording] = resolve_recording(ws, ref.recording).recording.id
        rid = resolved[ref.recording]
        hits = list(search_fn(ws, ref.query, limit=k))[:k]
        best: tuple[int, float] | None = None  # (rank, hit time) of the closest matching hit
        for rank, hit in enumerate(hits, 1):
            if hit.recording_id != rid:
                continue
            t = min(_times(hit), key=lambda x: abs(x - ref.time))  # its closest mention
            err = abs(t - ref.time)
            if tolerance is not None and err > tolerance:
                continue
            if best is None or err < abs(best[1] - ref.time):
                best = (rank, t)
        first_rank = None
        if best is not None:  # rank of the first qualifying hit, not of the closest one
            first_rank = next(
                r
                for r, h in enumerate(hits, 1)
                if h.recording_id == rid
                and (tolerance is None or min(abs(x - ref.time) for x in _times(h)) <= tolerance)
            )
        ev.outcomes.append(
            SearchOutcome(
                query=ref.query,
                recording=rid,
                time=ref.time,
                rank=first_rank,
                hit_time=best[1] if best else None,
                time_error=round(abs(best[1] - ref.time), 3) if best else None,
            )
        )
    return ev
