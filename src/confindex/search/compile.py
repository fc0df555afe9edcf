"""Compilation: a parsed query → the Whoosh query that finds candidate turns AND the match tree
that `locate.py` runs on the same analysed tokens to time every mention.

Words and "phrases" match inflected forms (stems, accents, elision), phrases in order and
adjacent; ="…" keeps the exact written form. Numbers match as digits or words (fr/en/ru),
and two words also match written as one ("BFM TV" / BFMTV). Score weights: ranking.py.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from functools import cache, lru_cache
from typing import Any

from whoosh import query as wq

from confindex.search.analysis import STEM_LANGS, common_words, has_common, normalize, pair, tokens
from confindex.search.grammar import (
    _FIELD_EXAMPLES,
    And,
    Field,
    Node,
    Not,
    Or,
    Parsed,
    Phrase,
    Word,
    _fail,
    parse_date_range,
    parse_time_range,
)
from confindex.search.ranking import boost_terms

# ---------------------------------------------------------------------------------------------
# Compilation: one match tree for finding (Whoosh) and for locating (locate.py)


class SlotKind(Enum):
    STEM = "stem"  # any inflected form: the token's stem in its turn's language is in `forms`
    EXACT = "exact"  # the written form, folded
    PREFIX = "prefix"
    FUZZY = "fuzzy"  # optimal-string-alignment distance <= dist, same first letter


@dataclass(frozen=True)
class Slot:
    """One token position of a unit, matched on the index's own analysis (index.analyse)."""

    kind: SlotKind
    word: str  # the folded query token
    forms: frozenset[str] = frozenset()  # STEM: acceptable stems; EXACT: {word}
    dist: int = 0


Alt = tuple[Slot, ...]  # one way of saying a unit: tokens in order, adjacent


@dataclass(frozen=True)
class Unit:
    """A word or phrase of the query and the ways it can be spoken (numbers, spellings)."""

    alts: tuple[Alt, ...]

    @property
    def positional(self) -> bool:
        return any(len(a) > 1 for a in self.alts)


@dataclass(frozen=True)
class MAll:
    nodes: tuple[MNode, ...]


@dataclass(frozen=True)
class MAny:
    nodes: tuple[MNode, ...]


@dataclass(frozen=True)
class MNot:
    node: MNode


MNode = Unit | MAll | MAny | MNot | None  # None: a field, which Whoosh checks alone


@dataclass
class Compiled:
    query: wq.Query  # candidate turns (a superset when `verify`)
    tree: MNode
    verify: bool  # some unit needs tokens in order: candidates are checked on their tokens

    @property
    def has_text(self) -> bool:
        return _has_positive_unit(self.tree, negated=False)

    @property
    def all_common(self) -> bool:
        """Every word it looks for is a common word (of, the, la…): ranking means little."""
        words = [s.word for u in _units(self.tree) for alt in u.alts for s in alt]
        return bool(words) and all(w in common_words() for w in words)


def _units(m: MNode) -> list[Unit]:
    if isinstance(m, Unit):
        return [m]
    if isinstance(m, MAll | MAny):
        return [u for n in m.nodes for u in _units(n)]
    return []  # negated units and fields do not count


def _has_positive_unit(m: MNode, negated: bool) -> bool:
    if isinstance(m, Unit):
        return not negated
    if isinstance(m, MNot):
        return _has_positive_unit(m.node, not negated)
    if isinstance(m, MAll | MAny):
        return any(_has_positive_unit(n, negated) for n in m.nodes)
    return False


# Numbers said as words find digits and back, in these languages (num2words writes them,
# text2num reads fr/en; Russian is read back through num2words' own spelling of 0–1000,
# runs of number words summed in phrases).
NUMBER_LANGS = ("fr", "en", "ru")
MAX_NUMBER = 10**6


def _stem_forms(word: str, langs: tuple[str, ...]) -> frozenset[str]:
    forms = {normalize(word)} | {normalize(word, lang) for lang in langs}
    if "fr" in langs:
        forms |= {normalize(v, "fr") for v in _fr_number_variants(normalize(word))}
    if "ru" in langs:
        forms |= _ru_case_stems(normalize(word))
    return frozenset(forms - {""})


# Case endings of Russian nouns and names (-ов/-ев/-ин surnames inflect like nouns).
_RU_ENDINGS = (
    *("а", "у", "ом", "е", "ы", "ов", "ам", "ами", "ах", "ой", "ою", "ую", "я", "ю", "ем"),
    *("ей", "и", "ев", "ям", "ями", "ях", "ым", "ыми", "ых", "им", "ими", "их"),
)


@lru_cache(maxsize=4096)
def _ru_case_stems(w: str) -> frozenset[str]:
    """The stems of a Russian word's case forms, for those Snowball stems apart.

    Snowball reads the -ов of a surname as a genitive plural and the -ан of Иван as a
    suffix: Королёв → корол but Королёва → королев, Иван → ива but Ивану → иван, so a
    name in one case missed every other. The query looks up the stems of all the forms.
    """
    if len(w) < 3 or not all("а" <= c <= "я" for c in w) or w in common_words():
        return frozenset()
    roots = {w} | {w[: -len(e)] for e in _RU_ENDINGS if w.endswith(e) and len(w) - len(e) >= 3}
    return frozenset(normalize(r + e, "ru") for r in roots for e in ("", *_RU_ENDINGS))


# Words ending like a plural that are not one of the word beside them (je peux ≠ peu).
_FR_NOT_PLURAL = frozenset({"peu", "peux"})


def _fr_number_variants(w: str) -> tuple[str, ...]:
    """The other grammatical number of a French word whose plural Snowball keeps apart.

    Snowball's French stemmer leaves the plural s/x after o and u: photo/photos, vidéo/vidéos,
    euro/euros, jeu/jeux, pneu/pneus stem differently (a researcher typing "vidéo" missed
    "vidéos"). The query looks up the other form too; the index keeps its analysis.
    """
    if len(w) < 3 or not w.isascii() or not w.isalpha() or w in _FR_NOT_PLURAL | common_words():
        return ()
    if w[-2] in "ou" and (w[-1] == "x" or (w[-1] == "s" and len(w) > 4)):
        return (w[:-1],)  # not plus → plu, bus → bu
    if w[-1] in "ou":
        return (w + "s", w + "x") if w.endswith(("eu", "au", "ou")) else (w + "s",)
    return ()


def _seq(text: str, langs: tuple[str, ...], exact: bool = False) -> Alt:
    out = []
    for t, _, _ in tokens(text):
        if exact:
            out.append(Slot(SlotKind.EXACT, t, frozenset({t})))
        else:
            out.append(Slot(SlotKind.STEM, t, _stem_forms(t, langs)))
    return tuple(out)


@lru_cache(maxsize=4096)
def number_words(n: int) -> tuple[str, ...]:
    """`7` → ('sept', 'seven', 'семь'): how the number is said in NUMBER_LANGS.

    Feminine and neuter forms too (`1 heure` is "une heure", `2 недели` "две недели"):
    num2words writes the Russian ones; French only changes a final "un" to "une".
    """
    from num2words import num2words

    said = [num2words(n, lang=lang) for lang in NUMBER_LANGS]
    said += [num2words(n, lang="ru", gender=g) for g in ("f", "n")]
    said += [re.sub(r"\bun$", "une", said[0])]
    return tuple(dict.fromkeys(said))


@cache
def _ru_numbers() -> dict[str, int]:
    from num2words import num2words

    table: dict[str, int] = {}
    for n in (*range(0, 101), *range(200, 1001, 100)):
        for gender in ("m", "f", "n"):  # один, одна, одно; два, две
            w = num2words(n, lang="ru", gender=gender)
            if " " not in w:
                table.setdefault(normalize(w), n)
    return table


@lru_cache(maxsize=4096)
def number_value(text: str) -> int | None:
    """`trois`, `vingt-trois`, `three`, `семь` → the number; None when it is not one.

    Common words (un, one, a) are never read as numbers: they are articles far more often.
    """
    folded = " ".join(t for t, _, _ in tokens(text))
    if not folded or any(t in common_words() for t in folded.split()):
        return None
    from text_to_num import text2num

    for lang in ("fr", "en"):
        try:
            return int(text2num(text.lower(), lang))
        except (ValueError, TypeError):
            continue
    return _ru_numbers().get(folded)


def _number_alts(terms: list[str], text: str, langs: tuple[str, ...]) -> list[Alt]:
    """Other ways of saying a number: words for digits, digits for words."""
    if len(terms) == 1 and terms[0].isdigit() and int(terms[0]) <= MAX_NUMBER:
        return [_seq(w, langs) for w in number_words(int(terms[0]))]
    value = number_value(text)
    if value is not None:
        return [(Slot(SlotKind.EXACT, str(value), frozenset({str(value)})),)]
    return []


def _ru_alpha2digit(text: str) -> str:
    """ "двадцать три дня" → "23 дня": runs of Russian number words, each smaller in place
    than the one before (сто двадцать три), become digits (text2num has no Russian)."""
    table = _ru_numbers()
    out: list[str] = []
    run: list[int] = []

    def flush() -> None:
        if run:
            out.append(str(sum(run)))
            run.clear()

    for word in text.split():
        value = table.get(normalize(word))
        if value is None or value == 0:
            flush()
            out.append(word)
            continue
        if run:
            place = 10 ** len(str(value))
            if not (run[-1] >= place and run[-1] % place == 0):
                flush()  # "три двадцать" is two numbers, not 23
        run.append(value)
    flush()
    return " ".join(out)


def _phrase_number_alts(text: str, langs: tuple[str, ...]) -> list[Alt]:
    """ "trois minutes" → "3 minutes"; "3 minutes" → "trois minutes", "three minutes"…"""
    from text_to_num import alpha2digit

    out = []
    for lang in ("fr", "en"):
        converted = alpha2digit(text, lang)
        if converted != text:
            out.append(_seq(converted, langs))
    converted = _ru_alpha2digit(text)
    if converted != " ".join(text.split()):
        out.append(_seq(converted, langs))
    parts = re.split(r"(\d+)", text)
    if len(parts) > 1 and all(int(p) <= MAX_NUMBER for p in parts[1::2]):
        for k in range(max(len(number_words(int(p))) for p in parts[1::2])):
            said = "".join(
                number_words(int(p))[min(k, len(number_words(int(p))) - 1)] if i % 2 else p
                for i, p in enumerate(parts)
            )
            out.append(_seq(said, langs))
    return out


def _compound_alt(seq: Alt, langs: tuple[str, ...]) -> list[Alt]:
    """Two tokens also match written as one (BFM TV → bfmtv), as index.compounds indexes."""
    if len(seq) != 2 or has_common(seq[0].word, seq[1].word):
        return []  # names and acronyms, not "la station" → "lastation" (nor its stems)
    joined = seq[0].word + seq[1].word
    return [(Slot(SlotKind.STEM, joined, _stem_forms(joined, langs)),)]


def _unit(node: Word | Phrase, langs: tuple[str, ...]) -> Unit | None:
    terms = [t for t, _, _ in tokens(node.text)]
    if not terms:
        return None
    if isinstance(node, Phrase) and node.exact:
        return Unit((_seq(node.text, langs, exact=True),))
    if isinstance(node, Word) and node.prefix:
        head = _seq(" ".join(terms[:-1]), langs, exact=True)
        return Unit(((*head, Slot(SlotKind.PREFIX, terms[-1])),))
    if isinstance(node, Word) and node.fuzzy:
        return Unit(((Slot(SlotKind.FUZZY, terms[0], dist=node.fuzzy),),))
    main = _seq(node.text, langs)
    alts = [main, *_compound_alt(main, langs)]
    if isinstance(node, Phrase) and len(terms) > 1:
        alts += _phrase_number_alts(node.text, langs)
    else:
        alts += _number_alts(terms, node.text, langs)
    return Unit(tuple(dict.fromkeys(alts)))


def compile(
    parsed: Parsed, langs: Iterable[str] = STEM_LANGS, max_seconds: float = 0.0
) -> Compiled:
    """The Whoosh query and the match tree for `parsed`, stems limited to `langs`.

    Words must match the turn text; title/speaker matches only add to the score (AndMaybe).
    """
    langs = tuple(langs)
    boost: list[wq.Query] = []
    tree = _tree(parsed.node, langs)
    verify = _positional(tree)
    q = _translate(parsed.node, tree, max_seconds, boost, negated=False, langs=langs)
    if q is None:
        raise _fail("nothing to search for (the words hold no letters or digits)")
    if boost:
        q = wq.AndMaybe(q, wq.Or(boost))
    return Compiled(q, tree, verify)


def to_whoosh(
    parsed: Parsed, langs: Iterable[str] = STEM_LANGS, max_seconds: float = 0.0
) -> wq.Query:
    return compile(parsed, langs, max_seconds).query


def _tree(node: Node, langs: tuple[str, ...]) -> MNode:
    if isinstance(node, Not):
        inner = _tree(node.node, langs)
        return None if inner is None else MNot(inner)
    if isinstance(node, And | Or):
        kids = tuple(_tree(n, langs) for n in node.nodes)
        if isinstance(node, And):
            variant = _and_variant(node, langs)
            if variant is not None:
                return MAny((MAll(kids), variant))
            spaced = _spaced_pairs(node, kids, langs)
            return MAny((MAll(kids), *spaced)) if spaced else MAll(kids)
        return MAny(kids)
    if isinstance(node, Field):
        return None
    return _unit(node, langs)


def _and_variant(node: And, langs: tuple[str, ...]) -> Unit | None:
    """Other ways of writing plain words typed side by side: as one word, or as one number."""
    alts: list[Alt] = []
    spaced = _joined(*node.nodes, langs) if len(node.nodes) == 2 else None  # BFM TV
    if spaced is not None:
        alts += spaced.alts
    alts += _number_run_alts(node, langs)
    return Unit(tuple(dict.fromkeys(alts))) if alts else None


def _number_run_alts(node: And, langs: tuple[str, ...]) -> list[Alt]:
    """`twenty five`, `двадцать пять`, `mille neuf cent quatre-vingt-six` typed without quotes
    also find "25", "1986": each word alone only finds its own digits (vingt → 20)."""
    words = node.nodes
    if not all(isinstance(w, Word) and not (w.prefix or w.fuzzy) for w in words):
        return []
    text = " ".join(w.text for w in words)  # type: ignore[union-attr]
    n = len(tokens(text))
    return [a for a in _phrase_number_alts(text, langs) if len(a) < n]


def _joined(a: Node, b: Node, langs: tuple[str, ...]) -> Unit | None:
    """Two plain one-token words as one (`BFM` `TV` → bfmtv, as index.compounds indexes)."""
    if not all(isinstance(w, Word) and not (w.prefix or w.fuzzy) for w in (a, b)):
        return None
    ta, tb = tokens(a.text), tokens(b.text)
    if len(ta) != 1 or len(tb) != 1 or has_common(ta[0][0], tb[0][0]):
        return None
    joined = ta[0][0] + tb[0][0]  # folded, as index.compounds writes it; stems for one-word text
    return Unit(((Slot(SlotKind.STEM, joined, _stem_forms(joined, langs)),),))


def _spaced_pairs(node: And, kids: tuple[MNode, ...], langs: tuple[str, ...]) -> list[MAll]:
    """The same AND with two adjacent plain words joined (`BFM TV recording:x lang:fr -poker`
    also finds BFMTV with the same filters and exclusions): one alternative per such pair."""
    pairs = enumerate(zip(node.nodes, node.nodes[1:], strict=False))
    joined = [(i, u) for i, (a, b) in pairs if (u := _joined(a, b, langs)) is not None]
    return [MAll((*kids[:i], u, *kids[i + 2 :])) for i, u in joined[:3]]  # 3 pairs at most


def _positional(m: MNode) -> bool:
    if isinstance(m, Unit):
        return m.positional
    if isinstance(m, MNot):
        return _positional(m.node)
    if isinstance(m, MAll | MAny):
        return any(_positional(n) for n in m.nodes)
    return False


def _translate(
    node: Node,
    m: MNode,
    max_s: float,
    boost: list[wq.Query],
    negated: bool,
    langs: tuple[str, ...] = (),
) -> wq.Query | None:
    if isinstance(node, Not):
        assert m is None or isinstance(m, MNot)
        if m is not None and _positional(m.node):
            return None  # candidates cannot exclude a phrase; the token check does
        inner = _translate(node.node, m.node if m else None, max_s, boost, not negated, langs)
        return None if inner is None else wq.Not(inner)
    if isinstance(node, And | Or):
        kids_m: tuple[MNode, ...]
        variants: tuple[MNode, ...] = ()
        if isinstance(m, MAny) and isinstance(node, And):  # an And with its spacing variants
            kids_m, variants = m.nodes[0].nodes, m.nodes[1:]  # type: ignore[union-attr]
        else:
            kids_m = m.nodes if isinstance(m, MAll | MAny) else (None,) * len(node.nodes)
        parts = [
            _translate(n, k, max_s, boost, negated, langs)
            for n, k in zip(node.nodes, kids_m, strict=True)
        ]
        kept = [p for p in parts if p is not None]
        if not kept:
            return None
        q = kept[0] if len(kept) == 1 else (wq.And(kept) if isinstance(node, And) else wq.Or(kept))
        alts = [q]
        for v in variants:
            if isinstance(v, Unit):  # the whole AND written otherwise
                alts.append(_unit_query(v, langs))
            elif isinstance(v, MAll):  # one pair joined (at i), every other part as it is
                i = next(k for k, n in enumerate(v.nodes) if n is not kids_m[k])
                rest = [p for k, p in enumerate(parts) if k not in (i, i + 1) and p is not None]
                joined = _unit_query(v.nodes[i], langs)  # type: ignore[arg-type]
                alts.append(wq.And([joined, *rest]))
        return alts[0] if len(alts) == 1 else wq.Or(alts)
    if isinstance(node, Field):
        return _field(node, max_s)
    if not isinstance(m, Unit):
        return None
    if not negated:
        boost_terms([t for t, _, _ in tokens(node.text)], boost)
    return _unit_query(m, langs)


def _unit_query(u: Unit, langs: tuple[str, ...]) -> wq.Query:
    qs = list(dict.fromkeys(_alt_query(a, langs) for a in u.alts))
    return qs[0] if len(qs) == 1 else wq.Or(qs)


def _slot_query(s: Slot) -> wq.Query:
    if s.kind is SlotKind.PREFIX:
        return wq.Prefix("text", s.word)
    if s.kind is SlotKind.FUZZY:
        # prefixlength=1: misspellings rarely touch the first letter and it cuts expansion 10×.
        return OsaFuzzyTerm("text", s.word, maxdist=s.dist, prefixlength=1)
    if s.kind is SlotKind.EXACT:
        return wq.Term("text", s.word)
    # Any of its stems in the archive's languages (the folded form covers unstemmed ones).
    # No extra exact-form Term on `text`: its positional postings made a one-word search 3×
    # slower at 500k turns (20.6 vs 6.0 ms CPU p50, measured).
    terms = [wq.Term("stem", f) for f in sorted(s.forms)]
    return terms[0] if len(terms) == 1 else wq.Or(terms)


def _alt_query(alt: Alt, langs: tuple[str, ...]) -> wq.Query:
    """One token: its term(s). Several: candidates holding all of them, checked in order later.

    Adjacent words where one is common are an indexed stem pair (`la|station`: CommonGrams,
    index.pairs_text); the other words are their stems in the unpositioned `stem` field.
    Whoosh's positional Phrase on `text` cost 216 ms p95 at 500k turns (bench).
    """
    if len(alt) == 1:
        return _slot_query(alt[0])
    covered: set[int] = set()
    parts: list[wq.Query] = []
    for i, (a, b) in enumerate(itertools.pairwise(alt)):
        if SlotKind.PREFIX in (a.kind, b.kind) or SlotKind.FUZZY in (a.kind, b.kind):
            continue
        if not has_common(a.word, b.word):
            continue
        terms = [
            wq.Term("pairs", pair(x, y))
            for x in sorted(_indexed_forms(a, langs))
            for y in sorted(_indexed_forms(b, langs))
        ]
        parts.append(terms[0] if len(terms) == 1 else wq.Or(terms))
        covered |= {i, i + 1}
    parts += [_slot_query(s) for i, s in enumerate(alt) if i not in covered]
    return parts[0] if len(parts) == 1 else wq.And(parts)


def _indexed_forms(s: Slot, langs: tuple[str, ...]) -> frozenset[str]:
    """The stems under which the index may hold this slot's word (pairs hold stems)."""
    return s.forms if s.kind is SlotKind.STEM else _stem_forms(s.word, langs)


class OsaFuzzyTerm(wq.FuzzyTerm):
    """FuzzyTerm that counts a swapped pair of letters as one edit, as Lucene does.

    Whoosh's automaton is plain Levenshtein (apostel → apostle is 2 edits); the transposed
    variants are looked up as terms (d=1) or expanded by d-1 (d=2), which stays cheap.
    """

    def _btexts(self, ixreader: Any) -> Iterable[Any]:
        name, text, d, pre = self.fieldname, self.text, self.maxdist, self.prefixlength
        seen = set(ixreader.terms_within(name, text, d, prefix=pre))
        for i in range(max(pre, 0), len(text) - 1):
            if text[i] == text[i + 1]:
                continue
            v = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
            if d == 1:
                if (name, v) in ixreader:
                    seen.add(v)
            else:
                seen.update(ixreader.terms_within(name, v, d - 1, prefix=pre))
        return sorted(seen)


def _field(f: Field, max_s: float) -> wq.Query | None:
    name, value = f.name, f.value
    if name == "speaker":
        terms = [t for t, _, _ in tokens(value)]
        name_q: wq.Query | None = None
        if len(terms) == 1:
            name_q = wq.Term("speaker_name", terms[0])
        elif terms:
            name_q = wq.Phrase("speaker_name", terms)
        from confindex.search.analysis import fold

        label = wq.Term("speaker", fold(value))
        return label if name_q is None else wq.Or([label, name_q])
    if name in ("title", "channel", "chapter"):
        terms = [t for t, _, _ in tokens(value)]
        if not terms:
            raise _fail(f"{name}: needs a word, e.g. {_FIELD_EXAMPLES[name]}")
        if len(terms) == 1:
            return wq.Term(name, terms[0])
        if f.quoted:
            return wq.Phrase(name, terms)
        return wq.And([wq.Term(name, t) for t in terms])
    if name == "lang":
        v = value.lower()
        if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})?", v):
            raise _fail(f"lang: takes a language code like fr, en, ru (got {value!r})")
        return wq.Or([wq.Term("lang", v), wq.Prefix("lang", v + "-")])
    if name == "recording":
        return wq.Prefix("recording", value.rstrip("*"))
    if name == "flag":
        from confindex.speech.quality import KINDS

        v = value.lower()
        if v not in (*KINDS, "any"):
            raise _fail(f"flag: takes {', '.join(KINDS)} or any (got {value!r})")
        return wq.Term("flag", v)
    if name == "verified":
        v = value.lower()
        if v not in ("yes", "no"):
            raise _fail(f"verified: takes yes or no (got {value!r})")
        yes = wq.Term("verified", "yes")
        return yes if v == "yes" else wq.And([wq.Every(), wq.Not(yes)])
    if name == "date":
        lo, hi = parse_date_range(value)
        if lo is not None and hi is not None and hi == lo:
            return wq.Term("date", lo)
        if ".." not in value and lo is not None:
            return wq.Prefix("date", lo)
        return wq.TermRange("date", lo, hi, startexcl=False, endexcl=False)
    # at/after/before: coarse minute terms here; search applies the exact window on times.
    lo, hi = parse_time_range(name, value)
    top = hi if hi is not None else max(max_s, lo)
    first, last = int(lo // 60), int(top // 60)
    if last - first > 2000:
        return None  # too wide to enumerate: the exact window check alone filters
    return wq.Or([wq.Term("minutes", f"m{m}") for m in range(first, last + 1)])
