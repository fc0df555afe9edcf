"""Which language is spoken: per speech unit from its audio (Whisper), per turn from its text.

Audio: each unit of speech (one speaker, ≤ 30 s; see `units.speech_units`) is classified by
Whisper's language head on an encoder pass over that unit's own audio only. Whisper's encoder
accepts inputs shorter than its 30-s window, and the cost falls with the length (measured on
2 CPU cores, base int8: 3 s of audio 0.027 CPU s, padded to 30 s 0.67 CPU s), so every unit can
be checked: a 3-second remark in another language is found. Short units are unreliable alone
(a 2.5-s "Bonjour, est-ce que vous allez bien ?" came out Polish), so the recording's evidence,
all units' probabilities weighted by duration, is a prior, and an unsure unit keeps to the
languages its speaker otherwise speaks (`choose_languages`).

Text: py3langid classifies a sentence in ~0.1 ms; `turn_language_fn` trusts it only when sure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cache
from typing import TYPE_CHECKING

from confindex.speech.audio import SAMPLE_RATE

if TYPE_CHECKING:
    import numpy as np

    from confindex.speech.decoder import Decoder
    from confindex.speech.units import Unit

# Languages we let the classifier choose among: those with stemmers in the index, plus the
# recording's own language. A small set keeps short sentences from drifting to rare languages.
CANDIDATES = ("en", "fr", "ru", "de", "es", "it", "pt", "nl", "sv", "da", "no", "fi", "hu", "ro")
MIN_WORDS = 4
MIN_CONFIDENCE = 0.9

# Units shorter than this (s) take a neighbour's language: one second alone is a guess (a 1-s
# piece of French radio came out Latin, an AMI second Urdu). 1.5 rather than 1.0: 90 of 91
# units of the 10-min bench file right instead of 88, 12 fewer encoder passes; 2.0 gains no
# more there and would leave ~2-s remarks unjudged (bench/transcription.py --detect). Since
# unsure units keep to their speaker's languages (SPEAKER_EVIDENCE), 1.0, 1.5 and 2.0 all
# read 91 of 91; 1.5 still saves 12 passes and judges 1.5-s remarks.
MIN_DETECT = 1.5
DETECT_SECONDS = 6.0  # at most this much of a unit (its middle) goes through the encoder
# score(lang) = log p_unit(lang) + PRIOR_WEIGHT · log(prior(lang) + PRIOR_FLOOR): a unit needs
# strong evidence to leave the recording's languages (tests/test_asr_languages.py).
PRIOR_WEIGHT = 0.5
PRIOR_FLOOR = 0.01
NEIGHBOUR_SECONDS = 30.0
# A unit may be in a language that is not otherwise the recording's (under ESTABLISHED of its
# judged speech) only when Whisper is this sure of it: a 3-s Russian remark in French is 0.95.
ESTABLISHED = 0.1
NEW_LANGUAGE_MIN = 0.8
# An unsure unit keeps to its speaker's languages (those of the recording's that make
# ESTABLISHED of the speaker's other judged speech) once that speaker has this much judged
# speech (s). On the 10-min bench file a 2.9-s unit of an AMI speaker with 14.8 s of English
# was heard as French (0.32, English 0.14): decoded in French it looped "si, non," 50 times.
# Intersected with the recording's languages: two of another AMI speaker's units, heard as
# Polish (0.36, 0.42), would otherwise establish Polish for each other.
SPEAKER_EVIDENCE = 10.0

Probs = dict[str, float]


def _restrict(probs: Probs, candidates: Sequence[str] | None) -> Probs:
    if not candidates:
        return probs
    kept = {lang: probs.get(lang, 0.0) for lang in candidates}
    total = sum(kept.values())
    return {k: v / total for k, v in kept.items()} if total > 0 else kept


def detect_languages(
    decoder: Decoder,
    audio: np.ndarray,
    units: Sequence[Unit],
    candidates: Sequence[str] | None = None,
) -> list[Probs | None]:
    """Language probabilities of each unit (None for units under MIN_DETECT seconds): the
    decoder judges the middle DETECT_SECONDS of each unit alone."""
    spans: dict[int, tuple[float, float]] = {}
    for i, u in enumerate(units):
        if u.duration >= MIN_DETECT:
            mid = (u.start + u.end) / 2
            spans[i] = (
                max(u.start, mid - DETECT_SECONDS / 2),
                min(u.end, mid + DETECT_SECONDS / 2),
            )
    found = decoder.detect(audio, list(spans.values())) if spans else []
    judged = {i: _restrict(p, candidates) for i, p in zip(spans, found, strict=True)}
    out: list[Probs | None] = [judged.get(i) for i in range(len(units))]
    if units and not judged:
        # Only short bits of speech: judge them together (their first 30 s) rather than not
        # at all.
        import numpy as np

        joined = np.concatenate(
            [audio[int(u.start * SAMPLE_RATE) : int(u.end * SAMPLE_RATE)] for u in units]
        )
        probs = _restrict(decoder.detect(joined, [(0.0, 30.0)])[0], candidates)
        out = [probs] * len(units)
    return out


def recording_prior(probs: Sequence[Probs | None], units: Sequence[Unit]) -> Probs:
    """The recording's languages: unit probabilities weighted by the unit's duration."""
    prior: Probs = {}
    weight = 0.0
    for p, u in zip(probs, units, strict=True):
        if p is None:
            continue
        weight += u.duration
        for lang, v in p.items():
            prior[lang] = prior.get(lang, 0.0) + v * u.duration
    return {k: v / weight for k, v in prior.items()} if weight else {}


def _votes(probs: Sequence[Probs | None], units: Sequence[Unit]) -> list[tuple[str, float] | None]:
    """Each judged unit's top language and its seconds."""
    return [
        (max(p, key=p.__getitem__), u.duration) if p else None
        for p, u in zip(probs, units, strict=True)
    ]


def _established(
    votes: Sequence[tuple[str, float] | None],
    groups: Sequence[object] | None = None,
    min_seconds: float = 0.0,
) -> Callable[[int], set[str]]:
    """A function i → the languages that are the top language of at least ESTABLISHED of the
    judged speech, unit i left out: a unit cannot establish its own language. (In a 24-s AMI
    excerpt one 2.1-s unit heard as Latvian at 0.22 was 14% of the judged speech, so it counted
    as one of the recording's languages and was decoded in Latvian: "deskļļļļ…".)
    With `groups` (a key per unit, e.g. its speaker), only the speech of unit i's group counts,
    and none is known for a key of None or for less than `min_seconds` of judged speech."""
    keys = list(groups) if groups is not None else [0] * len(votes)
    seconds: dict[object, dict[str, float]] = {}
    for v, key in zip(votes, keys, strict=True):
        if v is not None and key is not None:
            mine = seconds.setdefault(key, {})
            mine[v[0]] = mine.get(v[0], 0.0) + v[1]

    def without(i: int) -> set[str]:
        if keys[i] is None:
            return set()
        rest = dict(seconds.get(keys[i], {}))
        if votes[i] is not None:
            lang, sec = votes[i]
            rest[lang] -= sec
        total = sum(rest.values())
        if total < min_seconds:
            return set()
        return {lang for lang, sec in rest.items() if sec > 0 and sec >= ESTABLISHED * total}

    return without


def choose_languages(
    probs: Sequence[Probs | None], units: Sequence[Unit], candidates: Sequence[str] | None = None
) -> list[str]:
    """One language per unit: its own evidence plus the recording's prior; units too short to
    judge take the language of the same speaker's nearest unit (else the nearest unit's)."""
    prior = recording_prior(probs, units)
    fallback = max(prior, key=prior.__getitem__) if prior else (candidates or ["en"])[0]
    votes = _votes(probs, units)
    established_without = _established(votes)
    speaker_without = _established(votes, [u.speaker for u in units], SPEAKER_EVIDENCE)

    def score(p: Probs, lang: str) -> float:
        return math.log(p[lang] + 1e-6) + PRIOR_WEIGHT * math.log(
            prior.get(lang, 0.0) + PRIOR_FLOOR
        )

    chosen: list[str | None] = []
    for i, p in enumerate(probs):
        if p is None:
            chosen.append(None)
            continue
        best = max(p, key=lambda lang, p=p: score(p, lang))
        if p[best] < NEW_LANGUAGE_MIN:
            # Unsure evidence for a language the speaker or the recording does not otherwise
            # speak (espeak French "Merci à tous" came out Latin at 0.67): keep to the
            # speaker's languages when known, else to the recording's.
            established = established_without(i) or {fallback}
            allowed = (speaker_without(i) & established) or established
            if best not in allowed:
                best = max(
                    allowed, key=lambda lang, p=p: score({**p, lang: p.get(lang, 0.0)}, lang)
                )
        chosen.append(best)
    decided = [(u, lang) for u, lang in zip(units, chosen, strict=True) if lang is not None]
    out: list[str] = []
    for u, lang in zip(units, chosen, strict=True):
        if lang is None:
            lang = _neighbour(u, decided) or fallback
        out.append(lang)
    return out


def _neighbour(unit: Unit, decided: Sequence[tuple[Unit, str]]) -> str | None:
    def gap(other: Unit) -> float:
        return max(other.start - unit.end, unit.start - other.end, 0.0)

    near = [(u, lang) for u, lang in decided if gap(u) <= NEIGHBOUR_SECONDS]
    same = [(u, lang) for u, lang in near if u.speaker == unit.speaker]
    pool = same or near
    return min(pool, key=lambda x: gap(x[0]))[1] if pool else None


@cache
def _identifier(languages: tuple[str, ...]):
    import py3langid.langid as langid

    ident = langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)
    # Whisper knows codes py3langid does not (haw, yue…): leave those out.
    ident.set_languages([lang for lang in languages if lang in set(ident.nb_classes)])
    return ident


def turn_language_fn(default: str | None) -> Callable[[str], str | None]:
    """A function text → language: the classifier's answer when sure, else `default`."""
    languages = tuple(sorted(set(CANDIDATES) | ({default} if default else set())))

    def language_of(text: str) -> str | None:
        if len(text.split()) < MIN_WORDS:
            return default
        lang, confidence = _identifier(languages).classify(text)
        return lang if confidence >= MIN_CONFIDENCE else default

    return language_of


def classify_fn(default: str | None) -> Callable[[str], tuple[str | None, float]]:
    """A function text → (language, confidence) for texts of MIN_WORDS words or more; shorter
    texts, and answers under MIN_CONFIDENCE, give (None, confidence)."""
    languages = tuple(sorted(set(CANDIDATES) | ({default} if default else set())))

    def classify(text: str) -> tuple[str | None, float]:
        if len(text.split()) < MIN_WORDS:
            return None, 0.0
        lang, confidence = _identifier(languages).classify(text)
        return (lang if confidence >= MIN_CONFIDENCE else None), float(confidence)

    return classify
