"""Facets of a search: how the hits spread over speakers, recordings, languages, channels and
years, each with the query filter that narrows to it (pure functions over search hits).

Counted over the first `FACET_HITS` hits of the same `search()` the page shows, so the counts
follow the query language exactly; the page says when they cover only part of the hits.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

FACET_HITS = 500
TOP = 8
FIELDS = ("speaker", "recording", "lang", "channel", "date")


def _quoted(value: str) -> str | None:
    """A filter value as the query language reads it (None when it cannot be written)."""
    if '"' in value or not value.strip():
        return None
    return f'"{value}"' if any(c.isspace() or c in "():" for c in value) else value


def counts(hits: Iterable[Any]) -> dict[str, list[tuple[str, str, int]]]:
    """field -> [(shown value, query filter, hits)], most hits first, TOP per field."""
    hits = list(hits)
    c: dict[str, Counter[tuple[str, str]]] = {f: Counter() for f in FIELDS}
    # `speaker:X` matches a name or a label, and labels repeat across recordings (SPEAKER_00 of
    # one may be named in another): count what the filter will match.
    names = {h.speaker_name for h in hits if h.speaker_name}
    for v in names:
        c["speaker"][(v, v)] = sum(1 for h in hits if v in (h.speaker_name, h.speaker))
    for h in hits:
        c["recording"][(h.title or h.recording_id, h.recording_id)] += 1
        if h.language:
            c["lang"][(h.language, h.language)] += 1
        if h.channel:
            c["channel"][(h.channel, h.channel)] += 1
        if h.date:
            c["date"][(h.date[:4], h.date[:4])] += 1
    out: dict[str, list[tuple[str, str, int]]] = {}
    for f, counter in c.items():
        rows = []
        for (shown, raw), n in counter.most_common():
            value = _quoted(raw)
            if value is not None:
                rows.append((shown, f"{f}:{value}", n))
            if len(rows) == TOP:
                break
        if rows:
            out[f] = rows
    return out


def refine(query: str, filt: str) -> str:
    """The query narrowed by one more filter. `a OR b speaker:X` would read as
    `a OR (b AND speaker:X)`, so a query with OR is put in parentheses first — unless it holds
    a time filter, which the query language allows only at the top level."""
    from confindex.errors import QueryError
    from confindex.search.grammar import parse

    q = query.strip()
    if re.search(r"(^|\s)OR(\s|$)", q):
        wrapped = f"({q}) {filt}"
        try:
            parse(wrapped)
            return wrapped
        except QueryError:
            pass
    return f"{q} {filt}".strip()


def as_json(query: str, total: int, hits: list[Any]) -> dict[str, Any]:
    return {
        "query": query,
        "total": total,
        "counted": len(hits),
        "facets": {
            f: [
                {"value": shown, "filter": filt, "query": refine(query, filt), "hits": n}
                for shown, filt, n in rows
            ]
            for f, rows in counts(hits).items()
        },
    }
