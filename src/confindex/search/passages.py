"""Passages: each turn split into sentence-sized pieces that keep their word timings.

A passage is what semantic search embeds and cites: its second is the start of its first word.
Pure functions, no model: `semantic` (vectors.py) embeds these, and topic segmentation
(chapters) reuses them.

Sentences come from pysbd (a maintained rule-based splitter with abbreviation lists for
fr/ru/en/de/…) run in the turn's language; a sentence longer than `MAX_WORDS` words or
`MAX_SECONDS` seconds (Whisper sometimes writes a minute without a full stop) is cut at its
longest pause, and a sentence of fewer than `MIN_WORDS` words ("Oui.", "Thank you.") joins its
neighbour, where a vector of its own would match anything.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

MAX_WORDS = 40
MAX_SECONDS = 20.0
MIN_WORDS = 3


@dataclass(frozen=True)
class Passage:
    """One passage of a recording, in spoken order (`pos` 0, 1, … across the recording)."""

    pos: int
    turn: int  # Turn.id
    start: float  # start of its first word: the second it is cited at
    end: float  # end of its last word
    speaker: str | None  # the turn's speaker label
    language: str | None  # the turn's language (else the transcript's)
    text: str
    w0: int  # index in turn.words of its first word (-1 when the turn has no word timings)
    w1: int  # one past its last word (-1 likewise)


@cache
def _segmenter(lang: str) -> Any:
    import pysbd

    return pysbd.Segmenter(language=lang, clean=False)


def _pysbd_lang(language: str | None) -> str:
    from pysbd.languages import LANGUAGE_CODES

    code = (language or "").lower().replace("_", "-").split("-")[0]
    return code if code in LANGUAGE_CODES else "en"


def sentences(text: str, language: str | None) -> list[tuple[int, int]]:
    """(start, end) character ranges of the sentences of `text`, in order, covering it.

    pysbd's own char_span finds each sentence by searching the text, which places a repeated
    sentence at its first occurrence; walking a cursor keeps every range after the last."""
    if not text.strip():
        return []
    out: list[tuple[int, int]] = []
    pos = 0
    for sent in _segmenter(_pysbd_lang(language)).segment(text):
        s = sent.strip()
        if not s:
            continue
        i = text.find(s, pos)
        if i < 0:  # pysbd changed the text (it should not with clean=False): keep going
            continue
        out.append((i, i + len(s)))
        pos = i + len(s)
    return out


def _word_texts(turn: Any) -> list[str]:
    return [" ".join(w.text.split()) for w in turn.words]


def _cut(words: Sequence[Any], lo: int, hi: int) -> list[tuple[int, int]]:
    """[lo, hi) as pieces of at most MAX_WORDS words and MAX_SECONDS, each cut at the longest
    pause in the middle half of the piece (a breath is where the speaker ends a thought)."""
    n = hi - lo
    if n <= 1:
        return [(lo, hi)]
    long_time = words[hi - 1].end - words[lo].start > MAX_SECONDS
    if n <= MAX_WORDS and not long_time:
        return [(lo, hi)]
    a, b = lo + max(1, n // 4), hi - max(1, n // 4)
    if b <= a:
        a, b = lo + 1, hi - 1
    cut = max(
        range(a, b + 1), key=lambda i: (words[i].start - words[i - 1].end, -abs(2 * i - lo - hi))
    )
    if cut <= lo or cut >= hi:
        cut = lo + n // 2
    return _cut(words, lo, cut) + _cut(words, cut, hi)


def _merge_short(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Word ranges with a range of fewer than MIN_WORDS words joined to the next (the last to
    the previous), unless that would pass MAX_WORDS."""
    out: list[tuple[int, int]] = []
    carry: tuple[int, int] | None = None
    for lo, hi in ranges:
        if carry is not None:
            if hi - carry[0] <= MAX_WORDS:
                lo = carry[0]
            else:
                out.append(carry)
            carry = None
        if hi - lo < MIN_WORDS:
            carry = (lo, hi)
        else:
            out.append((lo, hi))
    if carry is not None:
        if out and carry[1] - out[-1][0] <= MAX_WORDS:
            out[-1] = (out[-1][0], carry[1])
        else:
            out.append(carry)
    return out


def turn_passages(turn: Any, language: str | None = None, pos: int = 0) -> list[Passage]:
    """The passages of one turn (`language`: the transcript's, when the turn has none)."""
    lang = turn.language or language
    texts = _word_texts(turn)
    idx = [i for i, t in enumerate(texts) if t]
    if not idx:  # no word timings: sentences of the text, each cited at the turn start
        text = " ".join((turn.text or "").split())
        return [
            Passage(pos + k, turn.id, turn.start, turn.end, turn.speaker, lang, text[s:e], -1, -1)
            for k, (s, e) in enumerate(sentences(text, lang))
        ]
    words = [turn.words[i] for i in idx]
    # The turn's text as the index writes it (index.turn_text): words joined by single spaces.
    starts: list[int] = []
    parts: list[str] = []
    c = 0
    for i in idx:
        starts.append(c)
        parts.append(texts[i])
        c += len(texts[i]) + 1
    text = " ".join(parts)
    ranges: list[tuple[int, int]] = []
    k = 0
    for _s, e in sentences(text, lang):
        lo = k
        while k < len(words) and starts[k] < e:
            k += 1
        if k > lo:
            ranges.append((lo, k))
    if k < len(words):
        ranges.append((k, len(words)))
    pieces = [p for lo, hi in ranges for p in _cut(words, lo, hi)]
    out = []
    for j, (lo, hi) in enumerate(_merge_short(pieces)):
        out.append(
            Passage(
                pos=pos + j,
                turn=turn.id,
                start=float(words[lo].start),
                end=float(words[hi - 1].end),
                speaker=turn.speaker,
                language=lang,
                text=" ".join(parts[lo:hi]),
                w0=idx[lo],
                w1=idx[hi - 1] + 1,
            )
        )
    return out


def iter_passages(t: Any) -> Iterator[Passage]:
    """Every passage of a transcript, in spoken (turn) order."""
    pos = 0
    for turn in t.turns:
        ps = turn_passages(turn, t.language, pos)
        pos += len(ps)
        yield from ps


def passages(t: Any) -> list[Passage]:
    return list(iter_passages(t))
