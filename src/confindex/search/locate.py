"""Where a query matches inside a turn: mentions, on the index's own analysis (pure functions).

The index stores each turn's text and the start offset of each word; `index.analyse` gives the
very tokens (stems, folding, elision, compounds) the index was built from. The query's match
tree (compile.compile) runs on those tokens, so a mention's time is the time of the tokens that
made the turn match — never a differently analysed form, never a silent turn start.

A mention is a passage: one occurrence of a word or phrase, or, for several words, the
tightest window holding one occurrence of each. A turn with several separate passages has
several mentions.
"""

from __future__ import annotations

import bisect
from array import array
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz.distance import OSA

from confindex.search.analysis import Token, analyse, compounds, stem_lang
from confindex.search.compile import Alt, MAll, MAny, MNode, MNot, Slot, SlotKind, Unit


@dataclass(frozen=True)
class Passage:
    first: int  # token indices, inclusive
    last: int
    matched: tuple[int, ...]  # the tokens that matched a query word (highlighted)


@dataclass
class TurnTokens:
    """A stored turn, analysed as the index analysed it, with its word timings."""

    text: str
    toks: list[Token]
    compounds: dict[int, str]  # first token index -> concatenated term (spans 2 tokens)
    word_starts: list[int]  # character offset of each word (words joined by single spaces)
    offsets: array  # centiseconds from the turn start, per word (empty: no word timings)

    @classmethod
    def of(cls, text: str, lang: str | None, wt: bytes = b"") -> TurnTokens:
        toks = analyse(text, stem_lang(lang))
        starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == " "]
        offsets = array("I")
        offsets.frombytes(wt or b"")
        return cls(text, toks, dict(compounds(text, toks)), starts, offsets)

    def word_of(self, tok: int) -> int:
        return bisect.bisect_right(self.word_starts, self.toks[tok].start) - 1

    def time_of(self, tok: int, turn_start: float) -> float | None:
        """The start of the word holding token `tok`; None when the turn has no word timings."""
        wi = self.word_of(tok)
        if 0 <= wi < len(self.offsets):
            return turn_start + self.offsets[wi] / 100.0
        return None


# ---------------------------------------------------------------------------------------------
# Matching one slot / alternative / unit


@lru_cache(maxsize=100_000)
def _fuzzy_ok(token: str, word: str, dist: int) -> bool:
    # Same first letter, as the index's FuzzyTerm(prefixlength=1); OSA counts a swap as 1.
    return bool(token) and token[0] == word[0] and OSA.distance(token, word) <= dist


def _slot_ok(slot: Slot, tok: Token) -> bool:
    kind = slot.kind
    if kind is SlotKind.STEM:
        return tok.stem in slot.forms
    if kind is SlotKind.EXACT:
        return tok.folded == slot.word
    if kind is SlotKind.PREFIX:
        return tok.folded.startswith(slot.word)
    return _fuzzy_ok(tok.folded, slot.word, slot.dist)


def _alt_at(alt: Alt, tt: TurnTokens, i: int) -> Passage | None:
    toks = tt.toks
    if len(alt) == 1:
        s = alt[0]
        if _slot_ok(s, toks[i]):
            return Passage(i, i, (i,))
        joined = tt.compounds.get(i)
        if (
            joined is not None
            and s.kind in (SlotKind.STEM, SlotKind.EXACT)
            and (joined in s.forms or joined == s.word)
        ):
            return Passage(i, i + 1, (i, i + 1))
        return None
    if i + len(alt) > len(toks):
        return None
    for k, s in enumerate(alt):
        if not _slot_ok(s, toks[i + k]):
            return None
    return Passage(i, i + len(alt) - 1, tuple(range(i, i + len(alt))))


def occurrences(unit: Unit, tt: TurnTokens) -> list[Passage]:
    """Every place where one of the unit's alternatives is said, left to right."""
    out: list[Passage] = []
    for i in range(len(tt.toks)):
        best = None
        for alt in unit.alts:
            p = _alt_at(alt, tt, i)
            if p is not None and (best is None or p.last > best.last):
                best = p  # the longest alternative at this token ("trois minutes" > "trois")
        if best is not None and not (out and best.first <= out[-1].last):
            out.append(best)
    return out


# ---------------------------------------------------------------------------------------------
# The match tree


def satisfied(m: MNode, tt: TurnTokens) -> bool:
    """Whether the turn's tokens satisfy the tree (fields count as satisfied: Whoosh checked)."""
    r = _sat(m, tt)
    return True if r is None else r


def _sat(m: MNode, tt: TurnTokens) -> bool | None:
    if m is None:
        return None
    if isinstance(m, Unit):
        return bool(occurrences(m, tt))
    if isinstance(m, MNot):
        r = _sat(m.node, tt)
        return None if r is None else not r
    rs = [r for r in (_sat(n, tt) for n in m.nodes) if r is not None]
    if not rs:
        return None
    return all(rs) if isinstance(m, MAll) else any(rs)


def passages(m: MNode, tt: TurnTokens) -> list[Passage]:
    """The mentions of the tree in the turn: separate passages, left to right."""
    if m is None or isinstance(m, MNot):
        return []
    if isinstance(m, Unit):
        return occurrences(m, tt)
    kids = [passages(n, tt) for n in m.nodes]
    if isinstance(m, MAny):
        return _merge([p for k in kids for p in k])
    lists = [k for k in kids if k]
    if len(lists) != len([n for n in m.nodes if _positive(n)]):
        return []  # a required word is missing (the candidate does not really match)
    return lists[0] if len(lists) == 1 else _tightest(lists)


def _positive(m: MNode) -> bool:
    if isinstance(m, Unit):
        return True
    if isinstance(m, MAll | MAny):
        return any(_positive(n) for n in m.nodes)
    return False


def _merge(ps: list[Passage]) -> list[Passage]:
    """Overlapping or touching passages become one (BFM + TV said together is one mention)."""
    out: list[Passage] = []
    for p in sorted(ps, key=lambda p: (p.first, -p.last)):
        if out and p.first <= out[-1].last + 1:
            q = out[-1]
            out[-1] = Passage(q.first, max(q.last, p.last), tuple(sorted({*q.matched, *p.matched})))
        else:
            out.append(p)
    return out


def _tightest(lists: list[list[Passage]]) -> list[Passage]:
    """Non-overlapping windows holding one passage of each list, the tightest first chosen."""
    cands: list[Passage] = []
    for c, lst in enumerate(lists):
        for p in lst:
            chosen = [p]
            for d, other in enumerate(lists):
                if d == c:
                    continue
                after = [o for o in other if o.first >= p.first]
                if not after:
                    break
                chosen.append(min(after, key=lambda o: o.last))
            else:
                cands.append(
                    Passage(
                        p.first,
                        max(o.last for o in chosen),
                        tuple(sorted({t for o in chosen for t in o.matched})),
                    )
                )
    picked: list[Passage] = []
    for w in sorted(cands, key=lambda w: (w.last - w.first, w.first)):
        if all(w.last < q.first or w.first > q.last for q in picked):
            picked.append(w)
    return sorted(picked, key=lambda w: w.first)


def char_spans(tt: TurnTokens, p: Passage) -> list[tuple[int, int]]:
    """Character ranges of the matched tokens, adjacent ones joined (**space diplomacy**)."""
    spans: list[tuple[int, int]] = []
    for i in p.matched:
        t = tt.toks[i]
        if spans and tt.text[spans[-1][1] : t.start].strip(" -\u00a0'’") == "":
            spans[-1] = (spans[-1][0], t.end)
        else:
            spans.append((t.start, t.end))
    return spans
