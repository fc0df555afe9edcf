"""A hit in context: where the search's query is said on a recording's page.

The recording page marks every passage the query matched, so a reader can step through them
(next/previous). The turns are the ones the search itself found in this recording (fields,
filters and exclusions included: `search` decides), and each turn's passages come from the
same match tree the search used (search/locate.py), on the very words the page shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from confindex.store.transcript import Transcript

MAX_TURNS = 1000  # matched turns looked at in one recording


@dataclass
class Match:
    """One passage: the page's word indices (in transcript order) and its start second."""

    words: list[int]
    time: float

    def to_dict(self) -> dict[str, Any]:
        return {"words": self.words, "t": round(self.time, 2)}


def page_words(t: Transcript) -> list[tuple[int, int]]:
    """(first, count) of each turn's word elements on the page, as web/app.py renders them:
    one element per word with text, one for a turn without word timings."""
    out, n = [], 0
    for turn in t.turns:
        k = sum(1 for w in turn.words if w.text.strip()) or 1
        out.append((n, k))
        n += k
    return out


def matches(t: Transcript, query: str, turn_ids: set[int], langs: tuple[str, ...]) -> list[Match]:
    """The query's passages in the given turns of `t`, in spoken order."""
    from confindex.search.compile import compile as compile_query
    from confindex.search.documents import turn_text
    from confindex.search.grammar import parse
    from confindex.search.locate import TurnTokens, passages

    tree = compile_query(parse(query), langs).tree
    out: list[Match] = []
    for turn, (first, count) in zip(t.turns, page_words(t), strict=True):
        if turn.id not in turn_ids:
            continue
        text, wt = turn_text(turn)
        if not text:
            continue
        tt = TurnTokens.of(text, turn.language or t.language, wt)
        found = passages(tree, tt)
        if not found:
            # Matched on fields alone (speaker:, title:): the whole turn is the passage.
            out.append(Match(list(range(first, first + count)), turn.start))
            continue
        for p in found:
            idx = sorted({tt.word_of(i) for i in p.matched})
            if count == 1 and not wt:  # one element holds the whole turn
                idx = [0]
            words = [first + i for i in idx if 0 <= i < count]
            time = tt.time_of(p.first, turn.start)
            out.append(Match(words, turn.start if time is None else time))
    out.sort(key=lambda m: (m.time, m.words))
    return out
