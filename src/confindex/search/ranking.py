"""Ranking, in one place: the score model, field boosts, the tie order and the broad-query policy.

To change how hits are ordered, change this file: compile.py asks it for boost terms, hits.py
for the weighting, the tie key and whether a query is too broad to rank.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from whoosh import query as wq
from whoosh import scoring

from confindex.search.analysis import common_words

if TYPE_CHECKING:
    from whoosh.searching import Searcher

# BM25F with Whoosh's own defaults, written out so that a change is a change here.
B = 0.75
K1 = 1.2

# Title/speaker matches of the query words add to a turn's score (optional boost terms).
TITLE_BOOST = 2.0
SPEAKER_BOOST = 1.5

# A query of common words only with more candidates than this is "broad": the best of the first
# matches in index order, not a ranking of all of them (broad_rows).
BROAD_DOCS = 10_000
BROAD_SCAN = 5_000

Row = tuple[float, dict[str, Any], int]  # (score, stored fields, docnum)


def weighting() -> scoring.WeightingModel:
    return scoring.BM25F(B=B, K1=K1)


def boost_terms(terms: list[str], boost: list[wq.Query]) -> None:
    """Append the optional title/speaker boost queries for the query's stems."""
    # Common words are left out: "the" in a title says nothing about a turn, and the optional
    # boost had to score every turn of every such recording: "of the" took 160 ms at 500k
    # turns with it, one pair term without (bench).
    common = common_words()
    for t in terms:
        if t in common:
            continue
        boost.append(wq.Term("title", t, boost=TITLE_BOOST))
        boost.append(wq.Term("speaker_name", t, boost=SPEAKER_BOOST))


def tie_key(row: Row) -> tuple[float, str, float]:
    """Best score first; equal scores (to 6 digits) by date, then time in the recording.
    Undated recordings ("~" sorts after every ISO date) come last."""
    score, fields, _ = row
    return (-round(score, 6), fields.get("date") or "~", fields["start"])


def rank(rows: list[Row]) -> list[Row]:
    rows.sort(key=tie_key)
    return rows


def may_be_broad(scored: bool, group: bool, all_common: bool) -> bool:
    """Only an ungrouped, scored query of common words only is ever treated as broad."""
    return scored and not group and all_common


def broad_rows(
    s: Searcher,
    q: Any,
    keep: Callable[[dict[str, Any]], bool],
    allow: set[int] | None,
    want: int,
) -> list[Row] | None:
    """For a query of common words only ("of the") matching many turns, the best of the
    first matches in index order instead of a ranking of all of them; else None.

    BM25 over tens of thousands of near-identical postings cannot skip blocks: "of the"
    (42k turns) cost 185 ms at 500k turns to rank (bench), for an order that means nothing.
    Reading matches in order stops after the page (~2 ms). `total` is Whoosh's estimate.
    """
    reader = s.reader()
    if q.estimate_size(reader) < BROAD_DOCS:
        return None
    n = want + 20
    m = q.matcher(s, s.context())
    rows: list[Row] = []
    scanned = 0
    while m.is_active() and len(rows) < n and scanned < BROAD_SCAN:
        d = m.id()
        scanned += 1
        if not reader.is_deleted(d) and (allow is None or d in allow):
            f = s.stored_fields(d)
            if keep(f):  # e.g. a phrase's words in order (checked on the turn's tokens)
                rows.append((float(m.score()), f, d))
        m.next()
    if len(rows) < n and m.is_active():
        return None  # the words are common but rarely in this order: rank them properly
    rank(rows)
    return rows
