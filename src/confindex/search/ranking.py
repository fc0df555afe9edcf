"""Ranking, in one place: the score model, field boosts, the tie order and the broad-query policy.

To change how hits are ordered, change this file: compile.py asks it for boost terms, hits.py
for the weighting, the tie key and whether a query is too broad to rank.
"""

from __future__ import annotations

from typing import Any

from whoosh import query as wq
from whoosh import scoring

from confindex.search.analysis import common_words

# BM25F with Whoosh's own defaults, written out so that a change is a change here.
B = 0.75
K1 = 1.2

# Title/speaker matches of the query words add to a turn's score (optional boost terms).
TITLE_BOOST = 2.0
SPEAKER_BOOST = 1.5

# A query of common words only with more candidates than this is "broad": the best of the first
# matches in index order, not a ranking of all of them (hits._broad).
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
