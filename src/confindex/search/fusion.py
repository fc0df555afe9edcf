"""Hybrid search: lexical hits (hits.py) and meaning hits (vectors.py) fused by reciprocal
rank, each hit a passage cited at its first word; and `related`: passages close in meaning to
a moment of a recording.

The query's words are embedded as one text (e5's `query: ` form); its fields (speaker:, lang:,
date:, recording:, title:, channel:, flag:, at:/after:/before:) filter both sides — the lexical
side through the index, the semantic side on the vector rows here, with the same parser.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from typing import Any

from confindex.formats.links import link as make_link
from confindex.search import hits as hits_mod
from confindex.search import index as ix_mod
from confindex.search import vectors
from confindex.search.analysis import fold, title_analyzer, tokens
from confindex.search.grammar import (
    TIME_FIELDS,
    And,
    Field,
    Node,
    Not,
    Or,
    Parsed,
    Phrase,
    Word,
    parse,
    parse_date_range,
)
from confindex.search.hits import Hit, SearchResult
from confindex.store.workspace import Workspace

log = logging.getLogger("confindex.search.fusion")

# Reciprocal-rank fusion (Cormack et al. 2009): score = Σ 1 / (RRF_K + rank) over both lists.
RRF_K = 60
DEPTH = 50  # candidates taken from each side (more when a later page is asked for)
# Below this cosine a passage is not offered as a meaning match: multilingual-e5 puts unrelated
# sentences at 0.70–0.78 (see bench/README.md, semantic); matches measured 0.80–0.91.
MIN_SIMILARITY = 0.78
LogFn = Callable[[str], None]


# ---------------------------------------------------------------------------------------------
# The query: words to embed, fields to filter


def semantic_text(node: Node) -> str:
    """The query's words and phrases (not the excluded ones), in order, as one text."""
    if isinstance(node, Word | Phrase):
        return node.text
    if isinstance(node, And | Or):
        return " ".join(t for t in (semantic_text(n) for n in node.nodes) if t)
    return ""  # a field, or a NOT


def filter_node(node: Node) -> Node | None:
    """The query without its words: only what restricts where (None: no restriction)."""
    if isinstance(node, Word | Phrase):
        return None
    if isinstance(node, Field):
        return None if node.name in TIME_FIELDS else node  # time windows: Parsed.time_ranges
    if isinstance(node, Not):
        inner = filter_node(node.node)
        return None if inner is None else Not(inner)
    kids = [filter_node(n) for n in node.nodes]
    if isinstance(node, Or):
        if any(k is None for k in kids):
            return None  # a word OR a field: any passage may match by the word
        return Or(tuple(kids))  # type: ignore[arg-type]
    kept = tuple(k for k in kids if k is not None)
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else And(kept)


def _np() -> Any:
    import numpy as np

    return np


def row_mask(
    store: vectors.Store, parsed: Parsed, recs: dict[str, dict[str, Any]], ws: Workspace
) -> Any:
    """Boolean per vector row: allowed by the query's fields and time windows (None: all)."""
    np = _np()
    node = filter_node(parsed.node)
    mask = None if node is None else _eval(store, node, recs, ws)
    if parsed.time_ranges:
        st, en = np.asarray(store.rows["start"]), np.asarray(store.rows["end"])
        m = np.ones(len(store), dtype=bool)
        for lo, hi in parsed.time_ranges:
            m &= en >= lo
            if hi is not None:
                m &= st <= hi
        mask = m if mask is None else mask & m
    return mask


def _eval(store: vectors.Store, node: Node, recs: dict[str, dict[str, Any]], ws: Workspace) -> Any:
    np = _np()
    if isinstance(node, Not):
        return ~_eval(store, node.node, recs, ws)
    if isinstance(node, And | Or):
        masks = [_eval(store, n, recs, ws) for n in node.nodes]
        out = masks[0].copy()
        for m in masks[1:]:
            out = out & m if isinstance(node, And) else out | m
        return out
    assert isinstance(node, Field)
    rows = store.rows
    name, value = node.name, node.value
    if name == "lang":
        v = value.lower()
        ok = np.array(
            [lg.lower() == v or lg.lower().startswith(v + "-") for lg in store.meta["langs"]]
            + [False]
        )
        return ok[np.asarray(rows["lang"])]  # -1 (no language) reads the last: False
    if name == "speaker":
        return _speaker_mask(store, value, recs)
    if name == "flag":
        return _flag_mask(store, node, ws)
    per_rec = np.array([_rec_ok(name, node, recs.get(r) or {}, r) for r in store.rids] + [False])
    return per_rec[np.asarray(rows["rec"])]


def _rec_ok(name: str, node: Field, meta: dict[str, Any], rid: str) -> bool:
    value = node.value
    if name == "recording":
        return rid.startswith(value.rstrip("*"))
    if name == "date":
        d = meta.get("upload_date") or ""
        lo, hi = parse_date_range(value)
        if ".." not in value:
            return bool(d) and lo is not None and d.startswith(lo)
        return bool(d) and (lo is None or d >= lo) and (hi is None or d <= hi)
    if name in ("title", "channel"):
        text = meta.get("title") if name == "title" else meta.get("channel") or meta.get("uploader")
        have = [t.text for t in title_analyzer()(text or "")]
        want = [t for t, _, _ in tokens(value)]
        if node.quoted and len(want) > 1:
            n = len(want)
            return any(have[i : i + n] == want for i in range(len(have) - n + 1))
        return bool(want) and all(w in have for w in want)
    return True


def _speaker_mask(store: vectors.Store, value: str, recs: dict[str, dict[str, Any]]) -> Any:
    """speaker:V as the index reads it: the label (folded) or the display name's words."""
    np = _np()
    labels = store.meta["speakers"]
    want = [t for t, _, _ in tokens(value)]
    n_sp = len(labels) + 1
    ok = np.zeros(len(store.rids) * n_sp, dtype=bool)
    for r, rid in enumerate(store.rids):
        names = (recs.get(rid) or {}).get("speakers") or {}
        for s, label in enumerate(labels):
            if fold(label) == fold(value):
                ok[r * n_sp + s] = True
                continue
            have = [t for t, _, _ in tokens(names.get(label) or "")]
            k = len(want)
            if k and any(have[i : i + k] == want for i in range(len(have) - k + 1)):
                ok[r * n_sp + s] = True
    sp = np.asarray(store.rows["speaker"]).astype(np.int64)
    key = np.asarray(store.rows["rec"]).astype(np.int64) * n_sp + np.where(sp < 0, n_sp - 1, sp)
    return ok[key]


def _flag_mask(store: vectors.Store, node: Field, ws: Workspace) -> Any:
    """flag:KIND through the index (flags are per turn): the turns it holds, then their rows."""
    np = _np()
    from whoosh import query as wq

    from confindex.search.compile import _field

    q = _field(node, 0.0)  # validates the kind as a lexical search does
    mask = np.zeros(len(store), dtype=bool)
    s = hits_mod.searcher(ws)
    if s is None or q is None or not isinstance(q, wq.Query):
        return mask
    reader = s.reader()
    for d in q.docs(s):
        if reader.is_deleted(d):
            continue
        f = s.stored_fields(d)
        sl = store.rows_of(f["recording"])
        turns = np.asarray(store.rows["turn"][sl])
        mask[sl.start : sl.stop] |= turns == int(f.get("turn", -1))
    return mask


# ---------------------------------------------------------------------------------------------
# Hybrid search


NO_VECTORS = (
    "semantic search has no vectors for this archive yet: run confindex index "
    "(it embeds each passage once)"
)


def _live_store(ws: Workspace, log_fn: LogFn | None) -> vectors.Store | None:
    """The live vector store. A read never writes (as for the index): with no store, it says
    which command builds one. A stale or damaged one raises, naming `index --rebuild`."""
    store = vectors.open_store(ws)
    if store is None and ws.transcript_ids():
        if log_fn:
            log_fn(NO_VECTORS + "; lexical hits only")
        else:
            log.warning("%s; lexical hits only", NO_VECTORS)
    return store


def _passage_row(store: vectors.Store, rid: str, turn: int, time: float) -> int | None:
    """The row of the passage of `rid`'s turn `turn` that holds second `time`."""
    np = _np()
    sl = store.rows_of(rid)
    if sl.stop <= sl.start:
        return None
    rows = store.rows[sl]
    idx = np.flatnonzero(np.asarray(rows["turn"]) == turn)
    if not len(idx):
        return None
    starts = np.asarray(rows["start"])[idx]
    before = idx[starts <= time + 0.005]
    return sl.start + int(before[-1] if len(before) else idx[0])


def _semantic_hit(
    store: vectors.Store, row: int, sim: float, recs: dict[str, dict[str, Any]]
) -> Hit:
    p = store.passage(row)
    rid = store.recording_id(row)
    meta = recs.get(rid) or {}
    rec = hits_mod._recording(rid, {}, recs)
    names = meta.get("speakers") or {}
    return Hit(
        rank=0,
        recording_id=rid,
        title=meta.get("title") or rid,
        channel=meta.get("channel") or meta.get("uploader") or "",
        date=meta.get("upload_date") or "",
        speaker=p.speaker,
        speaker_name=names.get(p.speaker) or p.speaker if p.speaker else None,
        language=(p.language or "").lower(),
        turn_id=p.turn,
        start=p.start,
        end=p.end,
        time=p.start,
        snippet=p.text,
        spans=[],
        link=make_link(rec, p.start),
        score=0.0,
        mentions=[hits_mod.Mention(p.start, make_link(rec, p.start), p.text, [])],
        match="semantic",
        similarity=round(float(sim), 4),
    )


def _as_passage(h: Hit, store: vectors.Store | None, recs: dict[str, dict[str, Any]]) -> tuple:
    """A lexical hit as a passage: cited at the first word of the passage holding its first
    mention (its mentions keep each matched word's own second). Returns (key, hit)."""
    row = None if store is None else _passage_row(store, h.recording_id, h.turn_id, h.time)
    if row is None:
        return (h.recording_id, "turn", h.turn_id), dataclasses.replace(h, match="lexical")
    p = store.passage(row)  # type: ignore[union-attr]
    rec = hits_mod._recording(h.recording_id, {}, recs)
    hit = dataclasses.replace(
        h, start=p.start, end=p.end, time=p.start, link=make_link(rec, p.start), match="lexical"
    )
    return (h.recording_id, row), hit


def hybrid_search(
    ws: Workspace,
    query: str | Parsed,
    limit: int = 10,
    offset: int = 0,
    group: bool = False,
    context: int = 0,
    *,
    log: LogFn | None = None,
) -> SearchResult:
    """Lexical and semantic hits fused by reciprocal rank (`Hit.match` says which side found
    each; `Hit.similarity` the cosine of semantic ones). Every hit is a passage cited at its
    first word. The query's fields filter both sides."""
    parsed = query if isinstance(query, Parsed) else parse(query)  # QueryError before any I/O
    limit, offset = max(0, int(limit)), max(0, int(offset))
    depth = max(DEPTH, 2 * (offset + limit))
    lexical = hits_mod.search(ws, parsed, limit=depth, log=log)
    store = _live_store(ws, log)
    recs = ix_mod.load_recordings(ws)
    fused: dict[Any, list[Any]] = {}  # key -> [score, hit]
    for rank, h in enumerate(lexical.hits, 1):
        key, hit = _as_passage(h, store, recs)
        if key not in fused:
            fused[key] = [1.0 / (RRF_K + rank), hit]
    text = semantic_text(parsed.node).strip()
    n_sem = 0
    if text and store is not None and len(store):
        from confindex.search.embed import embed_query

        mask = row_mask(store, parsed, recs, ws)
        rows, sims = store.search(embed_query(text), depth, mask)
        for rank, (row, sim) in enumerate(zip(rows.tolist(), sims.tolist(), strict=True), 1):
            if sim < MIN_SIMILARITY:
                break
            n_sem = rank
            key = (store.recording_id(row), row)
            entry = fused.get(key)
            if entry is None:
                fused[key] = [1.0 / (RRF_K + rank), _semantic_hit(store, row, sim, recs)]
            else:
                entry[0] += 1.0 / (RRF_K + rank)
                entry[1] = dataclasses.replace(entry[1], match="both", similarity=round(sim, 4))
    ordered = sorted(fused.values(), key=lambda e: (-e[0], e[1].date or "~", e[1].time))
    if group:
        seen: set[str] = set()
        ordered = [
            e for e in ordered if not (e[1].recording_id in seen or seen.add(e[1].recording_id))
        ]
    page = ordered[offset : offset + limit]
    out: list[Hit] = []
    transcripts: dict[str, Any] = {}
    for i, (score, h) in enumerate(page):
        hit = dataclasses.replace(h, rank=offset + i + 1, score=round(score, 6))
        if context > 0:
            hits_mod._add_context(ws, hit, context, transcripts)
        out.append(hit)
    exact = lexical.exact and len(lexical.hits) < depth and n_sem < depth
    return SearchResult(out, len(ordered), parsed.text, exact)


def cited_passages(ws: Workspace, query: str, limit: int = 10) -> list[Hit]:
    """`hybrid_search`'s hits scored by the second each cites (its passage's first word), not
    by its matched words: what `eval search --semantic` measures."""
    result = hybrid_search(ws, query, limit=limit)
    return [dataclasses.replace(h, mentions=[]) for h in result.hits]


# ---------------------------------------------------------------------------------------------
# Related passages


_SPACE = re.compile(r"\s+")


def related(
    ws: Workspace,
    recording_id: str,
    at: float,
    limit: int = 10,
    *,
    same_recording: bool = False,
    log: LogFn | None = None,
) -> tuple[Hit, list[Hit]]:
    """The passages across the archive closest in meaning to the one spoken at second `at` of
    `recording_id`: (that passage as a hit, the related ones best first). Passages of the same
    recording are left out unless `same_recording`."""
    from confindex.errors import NotFoundError

    np = _np()
    ix_mod.warn_if_stale(ws, log)
    store = vectors.open_store(ws)
    recs = ix_mod.load_recordings(ws)
    sl = store.rows_of(recording_id) if store is not None else slice(0, 0)
    if store is None:
        raise NotFoundError(NO_VECTORS)
    if sl.stop <= sl.start:
        raise NotFoundError(
            f"no passages of {recording_id!r} in the vector store: run confindex index"
        )
    starts = np.asarray(store.rows["start"][sl])
    ends = np.asarray(store.rows["end"][sl])
    inside = np.flatnonzero((starts <= at + 0.005) & (ends >= at - 0.005))
    if len(inside):
        row = sl.start + int(inside[-1])
    else:  # between passages: the one that starts next, else the last
        after = np.flatnonzero(starts > at)
        row = sl.start + int(after[0] if len(after) else len(starts) - 1)
    here = _semantic_hit(store, row, 1.0, recs)
    here.match = None
    here.similarity = None
    q = store.vectors(np.array([row]))[0]
    mask = np.ones(len(store), dtype=bool)
    if not same_recording:
        mask[sl] = False
    else:
        mask[row] = False
    rows, sims = store.search(q, limit, mask)
    out = []
    for i, (r, s) in enumerate(zip(rows.tolist(), sims.tolist(), strict=True), 1):
        h = _semantic_hit(store, r, s, recs)
        h.rank, h.score = i, round(s, 4)
        out.append(h)
    return here, out
