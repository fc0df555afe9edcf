"""Text analysis shared by the index, the query compiler and `locate`: tokenise, fold accents,
split French elisions and compounds, stem each turn in its own language (Snowball).

Everything that decides which *terms* a word becomes lives here, so that indexing (index.py),
query compilation (compile.py) and hit location (locate.py) can never disagree.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Iterator
from functools import cache, lru_cache
from typing import Any, NamedTuple

from whoosh.analysis import Filter, RegexTokenizer
from whoosh.lang import stemmer_for_language

# Languages stemmed into the `stem` field; turns in other languages index folded words there.
STEM_LANGS: tuple[str, ...] = ("en", "fr", "ru", "de", "es", "it", "pt", "nl")

# French/Italian-style elided articles and pronouns: l'espace → espace.
_ELISIONS = frozenset(
    {
        *("l", "d", "j", "m", "n", "s", "t", "c", "qu", "jusqu", "lorsqu", "puisqu", "quoiqu"),
        *("presqu", "quelqu", "dell", "all", "dall", "nell", "sull"),
    }
)
TOKEN_PATTERN = r"\w+(?:['’]\w+)*"


@lru_cache(maxsize=200_000)
def fold(word: str) -> str:
    """Lowercase and strip accents from Latin letters (Chrétien → chretien, Soïouz → soiouz).

    Cyrillic keeps й (the Russian stemmer needs it) but ё → е, as Russian writers do.
    """
    w = word.lower().replace("ё", "е").replace("’", "'")
    if w.isascii():
        return w
    out = []
    for ch in w:
        if ord(ch) < 0x250:  # Latin: drop combining marks (é → e, ï → i); ß, œ, æ expand
            base = unicodedata.normalize("NFKD", ch)
            out.append("".join(c for c in base if not unicodedata.combining(c)))
        else:
            out.append(ch)
    return "".join(out).replace("œ", "oe").replace("æ", "ae").replace("ß", "ss")


def strip_elision(word: str) -> tuple[str, int]:
    """`l'espace` → (`espace`, 2): the word without its elided prefix and the chars removed."""
    i = word.find("'")
    if i > 0 and word[:i] in _ELISIONS and i + 1 < len(word):
        return word[i + 1 :], i + 1
    return word, 0


@cache
def _stemmer(lang: str) -> Callable[[str], str]:
    return stemmer_for_language(lang)


@lru_cache(maxsize=400_000)
def normalize(word: str, lang: str | None = None) -> str:
    """The indexed form of one token: folded, elision stripped, and stemmed when `lang` is given.

    Latin text is folded *before* stemming so accented and unaccented spellings stem alike
    (activité/activites → activit); Russian is stemmed on its own letters.
    """
    w, _ = strip_elision(fold(word))
    if lang is None:
        return w
    return _stemmer(lang)(w)


class NormalizeFilter(Filter):
    """Lowercase + fold + elision (+ stem) in one pass; one cache lookup per token."""

    def __init__(self, lang: str | None = None) -> None:
        self.lang = lang

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NormalizeFilter) and other.lang == self.lang

    def __hash__(self) -> int:
        return hash(("NormalizeFilter", self.lang))

    def __call__(self, tokens: Iterator[Any]) -> Iterator[Any]:
        lang = self.lang
        for t in tokens:
            text = t.text
            if t.chars and ("'" in text or "’" in text):
                _, cut = strip_elision(fold(text))
                t.startchar += cut
            t.text = normalize(text, lang)
            if t.text:
                yield t


def analyzer(lang: str | None = None):
    """Tokenizer + NormalizeFilter: the plain (folded, unstemmed) analyzer or a stemmed one."""
    return RegexTokenizer(TOKEN_PATTERN) | NormalizeFilter(lang)


# pyannote_sample, SpaceDiplomacy2024: titles are often file names; index their parts too.
_CAMEL_CUT = re.compile(
    r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])"
)


def compound_parts(word: str) -> list[str]:
    """`pyannote_sample` → [pyannote, sample]; `SpaceDiplomacy2024` → [Space, Diplomacy, 2024];
    `космосе_part1` → [космосе, part1, part, 1]: each `_` segment whole too, so `title:part1`
    finds it (it once matched only `part` and `1`)."""
    segments = [s for s in word.split("_") if s]
    out: list[str] = []
    for seg in segments:
        parts = [p for p in _CAMEL_CUT.split(seg) if p]
        if len(segments) > 1:
            out.append(seg)
        if len(parts) > 1 or len(segments) == 1:
            out.extend(parts)
    return out


class CompoundSplitFilter(Filter):
    """Yields each token, then its parts when it is a snake_case or camelCase compound (at the
    same position: `title:pyannote` and `title:pyannote_sample` both match)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CompoundSplitFilter)

    def __hash__(self) -> int:
        return hash("CompoundSplitFilter")

    def __call__(self, tokens: Iterator[Any]) -> Iterator[Any]:
        for t in tokens:
            whole = t.text
            parts = compound_parts(whole)
            yield t
            if len(parts) > 1:
                for part in parts:
                    t.text = part
                    yield t
                t.text = whole


def title_analyzer():
    """Like the plain analyzer, plus the parts of compound words (titles and channels)."""
    return RegexTokenizer(TOKEN_PATTERN) | CompoundSplitFilter() | NormalizeFilter(None)


def tokens(text: str, lang: str | None = None) -> list[tuple[str, int, int]]:
    """(normalized term, startchar, endchar) for each token of `text`."""
    return [
        (t.text, t.startchar, t.endchar) for t in analyzer(lang)(text, chars=True, positions=False)
    ]


_WORD_RE = re.compile(TOKEN_PATTERN)


class Token(NamedTuple):
    """One analysed token of a turn: what the index holds for it and where it was spoken."""

    start: int  # characters in the text
    end: int
    folded: str  # the `text` field's form (folded, elision stripped)
    stem: str  # the `stem` field's form (stemmed in the turn's language; folded otherwise)


def analyse(text: str, lang: str | None) -> list[Token]:
    """The tokens of `text` exactly as the index analyses them (stem_text is built from this).

    Search locates matches with the same function, so the time of a hit comes from the very
    tokens that matched — never from a differently analysed form.
    """
    out = []
    for m in _WORD_RE.finditer(text):
        raw = m.group()
        folded = normalize(raw)
        if not folded:
            continue
        start = m.start()
        if "'" in raw or "’" in raw:
            start += strip_elision(fold(raw))[1]
        out.append(Token(start, m.end(), folded, normalize(raw, lang) if lang else folded))
    return out


# Spacing variants of names and acronyms: "BFM TV" / "BFMTV", "Jean-Loup" / "Jeanloup". Two
# adjacent tokens joined by a hyphen, or two short all-capital acronyms, also index their
# concatenation; a query word finds it as any other term, and a query of several words also
# tries the concatenation (compile.py). Only these pairs: indexing every pair grew the index 2.5×.
_ACRONYM_MAX = 5


def compounds(text: str, toks: list[Token]) -> list[tuple[int, str]]:
    """(index of the first token, concatenated term) for each joined pair in `toks`."""
    out = []
    for i, (a, b) in enumerate(itertools.pairwise(toks)):
        gap = text[a.end : b.start]
        if gap in ("-", "\u2011") or (
            _is_acronym(text, a) and gap.isspace() and _is_acronym(text, b)
        ):
            out.append((i, a.folded + b.folded))
    return out


def _is_acronym(text: str, t: Token) -> bool:
    w = text[t.start : t.end]
    return len(w) <= _ACRONYM_MAX and w.isalpha() and w.isupper()


def stem_text(text: str, lang: str | None, toks: list[Token] | None = None) -> str:
    """The turn's words stemmed in its own language plus its compounds (pre-analysed `stem`)."""
    toks = analyse(text, lang) if toks is None else toks
    return " ".join([t.stem for t in toks] + [c for _, c in compounds(text, toks)])


@cache
def common_words() -> frozenset[str]:
    """Stop words of the stemmed languages, folded: the words whose pairs get indexed."""
    from whoosh.lang.stopwords import stoplists

    return frozenset(normalize(w) for lang in STEM_LANGS for w in stoplists.get(lang, ()))


def pair(a: str, b: str) -> str:
    return f"{a}|{b}"


def is_common_pair(a: str, b: str) -> bool:
    common = common_words()
    return a in common and b in common


def has_common(a: str, b: str) -> bool:
    common = common_words()
    return a in common or b in common


def pairs_text(text: str, lang: str | None = None, toks: list[Token] | None = None) -> str:
    """Stems of adjacent words where either is a common word (`of|the`, `la|station`), as
    Lucene's CommonGrams does.

    A phrase is found from these terms and the words' own stems (no positions), then checked
    in order on the tokens (locate.py). Whoosh's positional check in Python cost 216 ms p95 at
    500k turns, and checking candidates that merely hold a common word and a rarer one cost
    as much (measured: "this international" read 2,560 turns). Every pair (not only those
    with a common word) grew the index 2.5×.
    """
    toks = analyse(text, lang) if toks is None else toks
    return " ".join(
        pair(a.stem, b.stem) for a, b in itertools.pairwise(toks) if has_common(a.folded, b.folded)
    )


def stem_lang(language: str | None) -> str | None:
    """The stemmer language for a turn's language code (`fr`, `fr-FR`, `French`…), if any."""
    if not language:
        return None
    code = language.lower().replace("_", "-").split("-")[0]
    return code if code in STEM_LANGS else None
