"""What to try when a search finds nothing: suggestions drawn from the index itself.

Two kinds, each checked to find hits before it is offered:
- **near terms**: a word of the query replaced by a word the archive really holds, within edit
  distance 2 (`soiouz` → `soyouz`), the most frequent first; and the fuzzy form of the word
  (`soiouz~2`), which finds every such spelling at once;
- **a filter dropped**: the same query without the one filter that emptied it
  (`apollo lang:de` → `apollo`).

The query text is edited as the user wrote it (a word is replaced where it stands, a filter
cut out where it stands), so a suggestion reads like the query it came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

MAX_SUGGESTIONS = 5
NEAR_PER_WORD = 2
MAX_DIST = 2
MIN_WORD = 4  # shorter words have too many neighbours at distance 2 to be worth suggesting

# One token of the query as its tokenizer splits it: a quoted phrase (=" exact too), a field
# with a quoted value, or a run of non-space characters; with an optional leading `-`.
_TOKEN = re.compile(r'-?(?:=?"[^"]*"|[A-Za-z]+:"[^"]*"|[^\s()"]+)')
_FIELD = re.compile(r"-?([A-Za-z]+):")
_LETTERS = re.compile(r"\w+", re.UNICODE)


@dataclass
class Suggestion:
    query: str
    kind: str  # "near" (a word the index holds), "fuzzy" (word~2), "unfiltered" (a filter dropped)
    reason: str  # for people: "soyouz is in 3 turns", "without lang:de"
    hits: int  # hits the suggested query finds (a lower bound when Whoosh estimates)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Piece:
    start: int
    end: int
    text: str
    field: str | None  # the field's name, for a filter


def _pieces(query: str, fields: frozenset[str]) -> list[_Piece]:
    out = []
    for m in _TOKEN.finditer(query):
        f = _FIELD.match(m.group(0))
        name = f.group(1).lower() if f and f.group(1).lower() in fields else None
        out.append(_Piece(m.start(), m.end(), m.group(0), name))
    return out


def _words(query: str, pieces: list[_Piece]) -> list[tuple[int, int, str]]:
    """(start, end, word) of every word searched for: not in a filter, not excluded, no
    operator, not already fuzzy or a prefix."""
    out = []
    for p in pieces:
        if p.field or p.text.startswith("-") or p.text in ("AND", "OR", "NOT"):
            continue
        if p.text.endswith(("*", "~")) or re.search(r"~\d$", p.text):
            continue
        for m in _LETTERS.finditer(p.text):
            w = m.group(0)
            if len(w) >= MIN_WORD and not w.isdigit():
                out.append((p.start + m.start(), p.start + m.end(), w))
    return out


def _tidy(text: str) -> str:
    text = re.sub(r"\(\s*\)", " ", text)
    return " ".join(text.split())


def near_terms(reader: Any, word: str, limit: int = NEAR_PER_WORD) -> list[tuple[str, int]]:
    """Indexed words within edit distance 2 of `word` (same first letter), most common first:
    [(term, turns holding it)]."""
    from rapidfuzz.distance import OSA

    from confindex.search.analysis import fold

    folded = fold(word)
    found = []
    for term in reader.terms_within("text", folded, MAX_DIST, prefix=1):
        if term == folded:
            continue
        d = OSA.distance(folded, term)
        if d <= MAX_DIST:
            found.append((d, -reader.doc_frequency("text", term), term))
    found.sort()
    return [(term, -negdf) for _d, negdf, term in found[:limit]]


def suggest(
    query: str,
    reader: Any,
    count: Callable[[str], int],
    fields: frozenset[str],
) -> list[Suggestion]:
    """Suggestions for a query that found nothing; `count(q)` is how many hits `q` finds
    (0 for a query that does not parse)."""
    pieces = _pieces(query, fields)
    out: list[Suggestion] = []
    seen: set[str] = {_tidy(query)}

    def offer(q: str, kind: str, reason: str) -> None:
        q = _tidy(q)
        if q in seen or not q or len(out) >= MAX_SUGGESTIONS:
            return
        seen.add(q)
        n = count(q)
        if n > 0:
            out.append(Suggestion(q, kind, reason, n))

    # A filter that emptied the results: the query without it (the words alone found hits).
    filters = [p for p in pieces if p.field]
    for p in filters:
        offer(query[: p.start] + query[p.end :], "unfiltered", f"without {p.text}")
    if filters:
        rest = query
        for p in reversed(filters):
            rest = rest[: p.start] + rest[p.end :]
        if len(filters) > 1:
            offer(rest, "unfiltered", "without its filters")
    # Words the archive does not hold: the nearest ones it does.
    for start, end, w in _words(query, pieces):
        near = near_terms(reader, w)
        for term, df in near:
            turns = f"{df} turn{'' if df == 1 else 's'}"
            offer(query[:start] + term + query[end:], "near", f"{term} is said in {turns}")
        if near:
            dist = max(1, min(MAX_DIST, max(_osa(w, t) for t, _ in near)))
            offer(query[:start] + f"{w}~{dist}" + query[end:], "fuzzy", f"{w} spelt loosely")
    return out


def for_query(reader: Any, query: str, count: Callable[[str], int]) -> list[Suggestion]:
    """Suggestions for `query` from the live index's reader (none without an index)."""
    from confindex.errors import QueryError
    from confindex.search.grammar import FIELDS

    if reader is None:
        return []

    def safe_count(text: str) -> int:
        try:
            return count(text)
        except QueryError:  # an edit that does not parse is no suggestion
            return 0

    return suggest(query, reader, safe_count, frozenset(FIELDS))


def _osa(a: str, b: str) -> int:
    from rapidfuzz.distance import OSA

    from confindex.search.analysis import fold

    return int(OSA.distance(fold(a), b))
