"""Quality flags: the few passages of a transcript that are likely wrong, each with a reason and
a score. Pure functions over what faster-whisper returned (segment log-probabilities, no-speech
probabilities, word probabilities) and the speech regions a VAD found — no model, no I/O.

Four kinds, one passage per stretch of trouble (not one red word per doubt):

- `loop`: a repetition loop — a phrase repeated back to back (≥ 4 times for one word, ≥ 3 for a
  phrase), or a segment whose text compresses like a loop (zlib ratio > 2.4, Whisper's own
  threshold). Whisper's loops can be confident (faster-whisper issue 506): probability alone is
  no guard.
- `nonspeech`: text where there is no speech — mostly outside the VAD's speech regions, or a
  segment Whisper itself thought silent (no-speech probability > 0.6 with a low log-probability),
  or one of the phrases Whisper is known to invent over silence ("Sous-titres réalisés par…").
- `lowconf`: a span of words whose mean probability stays low (a rolling mean over 5 words under
  0.35, at least 3 words): invented text over babble or noise, garbled names.
- `language`: the text reads as another language than the one it was decoded in (a confident
  text classifier disagrees), or the language was detected with low confidence.
- `undecoded`: speech the decoder failed on even when decoded alone (`undecoded_flags`): the
  recording is kept, this stretch has no text.

A transcript keeps every word: exports collapse a loop to its first repetition and a marker
(`collapse_loops`); the JSON keeps them all.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

from confindex.store.transcript import Flag, Segment, Transcript, Turn, Word


class Kind(str, Enum):
    LOOP = "loop"
    NONSPEECH = "nonspeech"
    LOWCONF = "lowconf"
    LANGUAGE = "language"
    UNDECODED = "undecoded"  # speech the decoder failed on (asr.AsrResult.failed): no text
    MISSED = "missed"


KINDS = tuple(k.value for k in Kind)

# Whisper's own thresholds (openai/whisper transcribe(): compression_ratio_threshold=2.4,
# logprob_threshold=-1.0, no_speech_threshold=0.6).
COMPRESSION_RATIO = 2.4
NO_SPEECH = 0.6
LOW_LOGPROB = -1.0
MIN_REPEATS_WORD = 4  # "merci merci merci merci": a one-word phrase repeated 4 times
MIN_REPEATS_PHRASE = 3  # a phrase of 2+ words repeated 3 times back to back
MAX_UNIT = 16  # longest repeated phrase looked for, in words
LOWCONF_WINDOW = 5  # words in the rolling mean
LOWCONF_MEAN = 0.35  # rolling mean word probability below this is a low-confidence span
LOWCONF_MIN_WORDS = 3
SPEECH_COVERAGE = 0.3  # a segment with less of its time inside VAD speech is text over silence
MERGE_GAP = 1.0  # flags of one kind closer than this (seconds) are one passage
LANGUAGE_CONFIDENT = 0.6  # a detected language below this probability is in doubt

# Text Whisper produces over silence and music (from its subtitle-laden training data), as
# normalized by `_norm`: matched against a whole segment.
KNOWN_HALLUCINATIONS = (
    "sous titres realises par la communaute d amara org",
    "sous titrage st 501",
    "sous titrage societe radio canada",
    "merci d avoir regarde cette video",
    "merci d avoir regarde",
    "thanks for watching",
    "thank you for watching",
    "please subscribe to my channel",
    "subtitles by the amara org community",
    "untertitel im auftrag des zdf fur funk 2017",
    "untertitel der amara org community",
    "продолжение следует",
    "субтитры сделал dimatorzok",
    "редактор субтитров а семкин корректор а егорова",
    "ご視聴ありがとうございました",
)


@dataclass
class Signals:
    """What `assess` looks at besides the segments."""

    speech: list[tuple[float, float]] | None = None  # VAD speech regions (seconds); None: unknown
    # The decoder's own VAD regions (asr.vad_chunks: more sensitive than `speech`); None: unknown.
    heard: list[tuple[float, float]] | None = None
    # A more sensitive VAD (MISSED_VAD_THRESHOLD) for `missed`; None: `heard` is used.
    listened: list[tuple[float, float]] | None = None
    language: str | None = None  # the recording's language
    language_probability: float | None = None  # its detection probability (None: forced)
    language_of: Callable[[str], tuple[str | None, float]] | None = None  # text → (lang, p)


@dataclass
class _Hit:
    kind: Kind
    start: float
    end: float
    score: float
    reason: str
    segments: set[int] = field(default_factory=set)
    unit: str | None = None
    repeats: int = 0


# ------------------------------------------------------------------------------ helpers
def _norm(text: str) -> str:
    """Lower-case, accents and punctuation off: what two repetitions have in common."""
    s = unicodedata.normalize("NFKD", text.lower())
    s = "".join(c for c in s if not unicodedata.combining(c))
    return " ".join(re.findall(r"\w+", s))


def compression_ratio(text: str) -> float:
    """Whisper's loop measure: bytes of the text over bytes of its zlib compression."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def speech_coverage(start: float, end: float, speech: Sequence[tuple[float, float]]) -> float:
    """Share of [start, end] inside the speech regions (1.0 for an empty interval in speech)."""
    if end <= start:
        return 1.0 if any(a <= start <= b for a, b in speech) else 0.0
    inside = sum(max(0.0, min(b, end) - max(a, start)) for a, b in speech)
    return min(1.0, inside / (end - start))


def _words(segments: Sequence[Segment]) -> list[tuple[Word, int]]:
    out = []
    for s in segments:
        if s.words:
            out.extend((w, s.id) for w in s.words if w.text.strip())
        elif s.text.strip():
            out.append((Word(s.start, s.end, s.text.strip(), 1.0), s.id))
    return out


# ------------------------------------------------------------------------------ detectors
def find_loops(segments: Sequence[Segment]) -> list[_Hit]:
    """Phrases repeated back to back (across segment boundaries too), and segments whose text
    compresses like a loop."""
    words = _words(segments)
    toks = [_norm(w.text) for w, _ in words]
    hits: list[_Hit] = []
    i = 0
    while i < len(toks):
        best: tuple[int, int] | None = None  # (n, repeats) covering the most words
        for n in range(1, MAX_UNIT + 1):
            if i + 2 * n > len(toks):
                break
            unit = toks[i : i + n]
            if not all(unit):
                continue
            r = 1
            while toks[i + r * n : i + (r + 1) * n] == unit:
                r += 1
            need = MIN_REPEATS_WORD if n == 1 else MIN_REPEATS_PHRASE
            if r >= need and (best is None or n * r > best[0] * best[1]):
                best = (n, r)
        if best is None:
            i += 1
            continue
        n, r = best
        span = words[i : i + n * r]
        unit_text = " ".join(w.text.strip() for w, _ in words[i : i + n])
        hits.append(
            _Hit(
                Kind.LOOP,
                span[0][0].start,
                span[-1][0].end,
                round(1 - 1 / r, 2),
                f"“{_cut(unit_text)}” repeated {r}× back to back",
                {sid for _, sid in span},
                unit=unit_text,
                repeats=r,
            )
        )
        i += n * r
    for s in segments:
        cr = compression_ratio(s.text)
        if cr > COMPRESSION_RATIO and not any(s.id in h.segments for h in hits):
            score = round(min(1.0, 0.5 + (cr - COMPRESSION_RATIO) / 4), 2)
            reason = f"text compresses like a loop (ratio {cr:.1f} > {COMPRESSION_RATIO})"
            hits.append(_Hit(Kind.LOOP, s.start, s.end, score, reason, {s.id}))
    return hits


def find_nonspeech(
    segments: Sequence[Segment],
    speech: Sequence[tuple[float, float]] | None,
    heard: Sequence[tuple[float, float]] | None = None,
):
    """Text over silence, noise or music: only where the evidence agrees. The strict VAD alone
    missed quiet or short speech (3 of 3 such flags on real recordings were on speech), so it
    counts only when the decoder's own, more sensitive VAD heard no speech there either
    (bench/flags.py: every shared real recording against its reference speech)."""
    hits: list[_Hit] = []
    for s in segments:
        if not s.text.strip():
            continue
        reasons: list[str] = []
        score = 0.0
        words = [w for w in s.words if w.text.strip()]
        a, b = (words[0].start, words[-1].end) if words else (s.start, s.end)
        if speech is not None:
            cov = speech_coverage(a, b, speech)
            # Unknown `heard` (a caller with one VAD only): the strict VAD decides alone.
            heard_cov = speech_coverage(a, b, heard) if heard is not None else cov
            if cov < SPEECH_COVERAGE and heard_cov < SPEECH_COVERAGE:
                both = max(cov, heard_cov)
                to = "either VAD" if heard is not None else "the VAD"
                reasons.append(f"{round(100 * both)}% of it is speech to {to}")
                score = max(score, 1 - both)
        ns, lp = s.no_speech_prob, s.avg_logprob
        if ns is not None and lp is not None and ns > NO_SPEECH and lp < LOW_LOGPROB:
            reasons.append(f"Whisper: no-speech probability {ns:.2f}, log-probability {lp:.2f}")
            score = max(score, ns)
        if _norm(s.text) in KNOWN_HALLUCINATIONS:
            reasons.append("a phrase Whisper invents over silence")
            known = 0.9 if reasons[:-1] or (ns or 0) > 0.5 else 0.5
            score = max(score, known)
        if reasons:
            hits.append(_Hit(Kind.NONSPEECH, a, b, round(score, 2), "; ".join(reasons), {s.id}))
    return hits


MISSED_MIN = 2.0  # seconds of heard speech without a word: the decoder skipped speech
MISSED_EDGE = 0.4  # the decoder's VAD pads speech by 400 ms: that much at each end is silence
# Silero threshold of the VAD `missed` listens with (bench/flags.py, every shared real
# recording: at the decoder's 0.35, and at 0.25, no flag, though 8.5 s of quiet AMI speech came
# out without words; at 0.2, 2 flags, 98% reference speech, 4.0 s caught, 0.1 s wrongly; at
# 0.15, 5 flags, 10.5 s of them not speech).
MISSED_VAD_THRESHOLD = 0.2


def find_missed(
    segments: Sequence[Segment], heard: Sequence[tuple[float, float]] | None
) -> list[_Hit]:
    """Stretches where a VAD heard speech but no word came out (speech the transcript silently
    lacks: quiet speech at the start of an AMI meeting, issue 31)."""
    if not heard:
        return []
    spans = sorted(
        [(w.start, w.end) for s in segments for w in s.words if w.text.strip()]
        + [(s.start, s.end) for s in segments if not s.words and s.text.strip()]
    )
    hits: list[_Hit] = []
    for a0, b0 in heard:
        a, b = a0 + MISSED_EDGE, b0 - MISSED_EDGE
        at = a
        for x, y in [*[(x, y) for x, y in spans if x < b and y > a], (b, b)]:
            if x - at >= MISSED_MIN:
                n = x - at
                reason = f"{n:.1f} s of speech to the VAD with no word"
                score = round(min(1.0, 0.5 + n / 20), 2)
                hits.append(_Hit(Kind.MISSED, round(at, 3), round(x, 3), score, reason))
            at = max(at, y)
    return hits


def find_lowconf(segments: Sequence[Segment]) -> list[_Hit]:
    """Spans where the rolling mean word probability stays low (not single red words)."""
    words = _words(segments)
    if len(words) < LOWCONF_MIN_WORDS:
        return []
    probs = [w.probability for w, _ in words]
    k = min(LOWCONF_WINDOW, len(probs))
    low = [False] * len(probs)
    for i in range(len(probs) - k + 1):
        if sum(probs[i : i + k]) / k < LOWCONF_MEAN:
            for j in range(i, i + k):
                low[j] = True
    hits: list[_Hit] = []
    i = 0
    while i < len(low):
        if not low[i]:
            i += 1
            continue
        j = i
        while j < len(low) and low[j]:
            j += 1
        # Trim confident words at the edges of the span: they are not in doubt.
        a, b = i, j
        while a < b and probs[a] >= LOWCONF_MEAN:
            a += 1
        while b > a and probs[b - 1] >= LOWCONF_MEAN:
            b -= 1
        if b - a >= LOWCONF_MIN_WORDS:
            span = words[a:b]
            mean = sum(probs[a:b]) / (b - a)
            reason = f"{b - a} words with mean probability {mean:.2f}"
            hits.append(
                _Hit(
                    Kind.LOWCONF,
                    span[0][0].start,
                    span[-1][0].end,
                    round(1 - mean, 2),
                    reason,
                    {sid for _, sid in span},
                )
            )
        i = j
    return hits


def find_language(segments: Sequence[Segment], signals: Signals) -> list[_Hit]:
    """Text that reads as another language than it was decoded in; a doubtful detection."""
    hits: list[_Hit] = []
    if signals.language_of is not None:
        for s in segments:
            decoded = s.language or signals.language
            if not decoded or len(s.text.split()) < 4:
                continue
            lang, p = signals.language_of(s.text)
            if lang and lang != decoded:
                reason = f"decoded as {decoded}, the text reads as {lang} (p={p:.2f})"
                hits.append(_Hit(Kind.LANGUAGE, s.start, s.end, round(p, 2), reason, {s.id}))
    p = signals.language_probability
    if p is not None and p < LANGUAGE_CONFIDENT and segments:
        first, last = segments[0], segments[-1]
        reason = f"language detected as {signals.language} with probability {p:.2f}"
        hits.append(
            _Hit(
                Kind.LANGUAGE,
                first.start,
                last.end,
                round(1 - p, 2),
                reason,
                {s.id for s in segments},
            )
        )
    return hits


def _merge(hits: list[_Hit]) -> list[_Hit]:
    """One passage per stretch: flags of one kind closer than MERGE_GAP become one."""
    out: list[_Hit] = []
    for h in sorted(hits, key=lambda h: (h.kind.value, h.start)):
        last = out[-1] if out else None
        if (
            last is not None
            and last.kind == h.kind
            and h.start - last.end < MERGE_GAP
            and (h.kind != Kind.LOOP or not (last.unit and h.unit))
        ):
            last.end = max(last.end, h.end)
            last.score = max(last.score, h.score)
            if h.reason not in last.reason:
                last.reason = f"{last.reason}; {h.reason}"
            last.segments |= h.segments
            last.unit = last.unit or h.unit
            last.repeats = max(last.repeats, h.repeats)
        else:
            out.append(replace(h, segments=set(h.segments)))
    return sorted(out, key=lambda h: (h.start, h.kind.value))


def assess(segments: Sequence[Segment], signals: Signals | None = None) -> list[Flag]:
    """Every flag of a transcript's segments, as passages in time order."""
    sig = signals or Signals()
    hits = [
        *find_loops(segments),
        *find_nonspeech(segments, sig.speech, sig.heard),
        *find_missed(segments, sig.listened if sig.listened is not None else sig.heard),
        *find_lowconf(segments),
        *find_language(segments, sig),
    ]
    return [
        Flag(
            kind=h.kind.value,
            start=round(h.start, 3),
            end=round(h.end, 3),
            score=h.score,
            reason=h.reason,
            segments=sorted(h.segments),
            **({"unit": h.unit, "repeats": h.repeats} if h.unit else {}),
        )
        for h in _merge(hits)
    ]


def undecoded_flags(failed: Iterable[tuple[float, float, str]]) -> list[Flag]:
    """One flag per stretch of speech the decoder failed on (start, end, why)."""
    return [
        Flag(
            kind=Kind.UNDECODED.value,
            start=round(a, 3),
            end=round(b, 3),
            score=1.0,
            reason=f"not transcribed: decoding failed ({why})",
        )
        for a, b, why in failed
    ]


def language_flags(elsewhere: Iterable[tuple[float, float, str, float]]) -> list[Flag]:
    """One `language` flag per stretch a forced language left as first decoded, because the
    detector heard another language there (asr.AsrResult.elsewhere: start, end, why, score)."""
    return [
        Flag(kind=Kind.LANGUAGE.value, start=a, end=b, score=score, reason=why)
        for a, b, why, score in elsewhere
    ]


def _cut(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


# ------------------------------------------------------------------------------ turns
def _inside(w: Word, f: Flag) -> bool:
    mid = (w.start + w.end) / 2
    return f.start - 1e-3 <= mid <= f.end + 1e-3


def flags_of_turn(turn: Turn, flags: Iterable[Flag]) -> list[Flag]:
    """The flags a turn's words fall in (by time; a turn without words by overlap)."""
    out = []
    for f in flags:
        if turn.words:
            if any(_inside(w, f) for w in turn.words):
                out.append(f)
        elif min(turn.end, f.end) > max(turn.start, f.start):
            out.append(f)
    return out


def turn_flags(t: Transcript) -> dict[int, list[Flag]]:
    """Turn id → the flags in it (only flagged turns)."""
    out = {}
    for turn in t.turns:
        fs = flags_of_turn(turn, t.flags)
        if fs:
            out[turn.id] = fs
    return out


# ------------------------------------------------------------------------------ exports
LOOP_MARKER = "[… ×{n} — repetition loop, see the JSON]"


def collapse_loops(t: Transcript) -> Transcript:
    """A copy of `t` for exports: each loop keeps its first repetition, then one marker word
    (`[… ×12 — repetition loop, see the JSON]`) spans the rest. The transcript itself (JSON)
    keeps every word."""
    loops = [f for f in t.flags if f.kind == Kind.LOOP.value and f.unit and f.repeats > 1]
    if not loops:
        return t
    turns = []
    for turn in t.turns:
        words = list(turn.words)
        changed = False
        for f in loops:
            idx = [i for i, w in enumerate(words) if _inside(w, f) and not _is_marker(w)]
            n = len((f.unit or "").split())
            if n == 0 or len(idx) <= n:
                continue
            drop = idx[n:]
            first, last = words[drop[0]], words[drop[-1]]
            marker = Word(first.start, last.end, LOOP_MARKER.format(n=f.repeats), 1.0,
                          first.speaker)  # fmt: skip
            dropped = set(drop)
            words = [marker if i == drop[0] else w for i, w in enumerate(words)
                     if i not in dropped or i == drop[0]]  # fmt: skip
            changed = True
        if changed:
            text = " ".join(w.text.strip() for w in words)
            turns.append(replace(turn, words=words, text=text))
        else:
            turns.append(turn)
    return replace(t, turns=turns)


def _is_marker(w: Word) -> bool:
    return w.text.startswith("[… ×")


# ------------------------------------------------------------------------------ review
@dataclass
class Passage:
    """A flagged passage as `confindex review` shows it."""

    kind: str
    start: float
    end: float
    score: float
    reason: str
    speaker: str | None  # display name of who (Whisper says) speaks there
    text: str  # the words in the passage
    link: str  # opens the recording at the passage

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def review(
    t: Transcript, kinds: Iterable[str] | None = None, min_score: float = 0.0
) -> list[Passage]:
    """The flagged passages of `t` to check, in time order, with their words and a link."""
    from confindex.formats.links import link

    wanted = set(kinds or KINDS)
    out: list[Passage] = []
    for f in t.flags:
        if f.kind not in wanted or f.score < min_score:
            continue
        words, speakers = [], []
        for turn in t.turns:
            for w in turn.words:
                if _inside(w, f):
                    words.append(w.text.strip())
                    speakers.append(turn.speaker)
        # Who says most of it; on a tie, who speaks first (max over a set broke ties by string
        # hashes, so one passage of README's review example changed speaker from run to run).
        who = max(speakers, key=speakers.count) if speakers else None
        out.append(
            Passage(
                f.kind,
                f.start,
                f.end,
                f.score,
                f.reason,
                t.speaker_name(who),
                " ".join(words),
                link(t.recording, f.start),
            )
        )
    return out
