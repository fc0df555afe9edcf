"""Search the archive: hits with the time of the first matched word, highlights and links."""

from __future__ import annotations

import bisect
import logging
import threading
from array import array
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from whoosh import sorting
from whoosh.searching import Searcher

from . import index as ix_mod
from .links import link as make_link
from .query import Field, Highlight, Parsed, Phrase, Word, parse, to_whoosh
from .transcript import Recording, Transcript, load
from .workspace import Workspace

log = logging.getLogger("confindex.search")

SNIPPET_CHARS = 220
LogFn = Callable[[str], None]


@dataclass
class ContextTurn:
    turn_id: int
    speaker: str | None
    speaker_name: str | None
    start: float
    end: float
    text: str


@dataclass
class Hit:
    rank: int
    recording_id: str
    title: str
    channel: str
    date: str
    speaker: str | None
    speaker_name: str | None
    language: str
    turn_id: int
    start: float  # the turn
    end: float
    time: float  # start of the first matched word (the turn start when nothing is marked)
    snippet: str  # plain text around the first match
    spans: list[tuple[int, int]]  # matched character ranges in `snippet`
    link: str
    score: float
    matches: int = 1  # with group=True: matching turns in this recording
    before: list[ContextTurn] = field(default_factory=list)
    after: list[ContextTurn] = field(default_factory=list)

    def styled(self, open_mark: str, close_mark: str) -> str:
        """The snippet with each match wrapped in the given marks (ANSI codes on a TTY)."""
        out, pos = [], 0
        for s, e in self.spans:
            out += [self.snippet[pos:s], open_mark, self.snippet[s:e], close_mark]
            pos = e
        out.append(self.snippet[pos:])
        return "".join(out)

    @property
    def fragment(self) -> str:
        """The snippet with matches marked `**like this**`."""
        return self.styled("**", "**")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fragment"] = self.fragment
        d["spans"] = [list(s) for s in self.spans]
        return d


@dataclass
class SearchResult:
    hits: list[Hit]
    total: int  # matching turns (recordings with group=True); a lower bound unless exact
    query: str = ""
    exact: bool = True  # False: `total` is Whoosh's estimate (an upper bound)

    def __iter__(self):
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)


# ---------------------------------------------------------------------------------------------
# Searcher cache: opening costs ~1.7 s on a big index; a process that searches twice reuses it.

_LOCK = threading.Lock()
_SEARCHERS: dict[Path, Searcher] = {}


def searcher(ws: Workspace) -> Searcher | None:
    """A (cached, refreshed when stale) searcher on the live index, or None when there is none."""
    st = ix_mod.state(ws)
    if st.schema != ix_mod.SCHEMA_VERSION or st.generation is None:
        return None
    with _LOCK:
        s = _SEARCHERS.get(st.generation)
        if s is not None:
            if s.up_to_date():
                return s
            # Not refresh(): it reuses segment readers whose deletions are stale, so re-added
            # recordings showed twice (measured). A fresh searcher after a write is correct.
            _SEARCHERS.pop(st.generation).close()
        for old in list(_SEARCHERS):  # a rebuild swapped generations: drop the old searcher
            _SEARCHERS.pop(old).close()
        ix = ix_mod.open_index(ws)
        if ix is None:
            return None
        s = ix.searcher()
        _SEARCHERS[st.generation] = s
        return s


def close_all() -> None:
    with _LOCK:
        for s in _SEARCHERS.values():
            s.close()
        _SEARCHERS.clear()


_INFO: dict[int, tuple[tuple[str, ...], float]] = {}


def _archive_info(recs: dict[str, dict[str, Any]]) -> tuple[tuple[str, ...], float]:
    """(stemmer languages present, longest duration), cached per recordings table.

    Stems in languages absent from the archive would only be wasted terms.
    """
    key = id(recs)
    if key not in _INFO:
        present = {ix_mod.stem_lang(x) for r in recs.values() for x in r.get("languages") or ()}
        langs = tuple(lang for lang in ix_mod.STEM_LANGS if lang in present)
        max_s = max((float(r.get("duration") or 0) for r in recs.values()), default=0.0)
        _INFO.clear()
        _INFO[key] = (langs, max_s)
    return _INFO[key]


# ---------------------------------------------------------------------------------------------


def search(
    ws: Workspace,
    query: str | Parsed,
    limit: int = 10,
    offset: int = 0,
    group: bool = False,
    context: int = 0,
    *,
    log: LogFn | None = None,
) -> SearchResult:
    """Search the workspace's index (built or rebuilt first when missing or stale).

    `group` keeps the best turn per recording (`Hit.matches` counts its matching turns);
    `context` adds that many transcript turns before and after each hit.
    """
    parsed = query if isinstance(query, Parsed) else parse(query)  # QueryError before any I/O
    limit, offset = max(0, int(limit)), max(0, int(offset))
    ix_mod.ensure(ws, log=log)
    with ix_mod.damage_named():
        return _search(ws, parsed, limit, offset, group, context)


def _search(
    ws: Workspace, parsed: Parsed, limit: int, offset: int, group: bool, context: int
) -> SearchResult:
    s = searcher(ws)
    if s is None:
        return SearchResult([], 0, parsed.text)
    recs = ix_mod.load_recordings(ws)
    langs, max_s = _archive_info(recs)
    q = to_whoosh(parsed, langs, max_seconds=max_s)

    allow = _time_filter(s, q, parsed) if parsed.time_ranges else None
    if allow is not None and not allow:  # Whoosh treats an empty filter set as "no filter"
        return SearchResult([], 0, parsed.text)
    scored = _has_scoring_terms(parsed.node)
    want = offset + limit
    kwargs: dict[str, Any] = {"filter": allow, "terms": False}
    if not scored:
        # Filters only: every score ties, so order by date then time explicitly.
        kwargs["sortedby"] = [sorting.FieldFacet("date"), sorting.FieldFacet("start_col")]
    if group:
        kwargs["collapse"] = "recording"
    # A few extra so equal scores at the page edge are ordered by date then time.
    results_limit = max(want + 20, 1) if scored else max(want, 1)
    results = s.search(q, limit=results_limit, **kwargs)
    if group:
        counts = _recording_counts(s, q, allow)
        total = len(counts)
        exact = True
    else:
        counts = {}
        total, exact = _count(results, results_limit)

    rows = []
    for h in results:
        f = h.fields()
        # With sortedby, Whoosh's hit.score is the sort key, not a relevance score.
        rows.append((float(h.score or 0.0) if scored else 0.0, f, h.docnum))
    if scored:
        rows.sort(key=lambda r: (-round(r[0], 6), r[1].get("date") or "~", r[1]["start"]))
    rows = rows[offset:want]

    hits: list[Hit] = []
    transcripts: dict[str, Transcript] = {}
    for i, (score, f, _doc) in enumerate(rows):
        hit = _make_hit(offset + i + 1, score, f, parsed.highlight, recs)
        if group:
            hit.matches = int(counts.get(f["recording"], 1))
        if context > 0:
            _add_context(ws, hit, context, transcripts)
        hits.append(hit)
    return SearchResult(hits, total, parsed.text, exact)


def _count(results: Any, limit: int) -> tuple[int, bool]:
    """(matching turns, exact?): exact when Whoosh knows it, else its estimate.

    With block-max skipping Whoosh does not know the total, and recounting the matches cost
    more than the search itself: 69 ms p50 for a filtered query at 500k turns (measured).
    """
    if results.has_exact_length():
        return len(results), True
    if results.scored_length() < limit:  # the heap never filled: nothing was skipped
        return results.scored_length(), True
    return max(results.scored_length(), results.estimated_length()), False


def _has_scoring_terms(node: Any) -> bool:
    from .query import And, Not, Or

    if isinstance(node, Word | Phrase):
        return True
    if isinstance(node, And | Or):
        return any(_has_scoring_terms(n) for n in node.nodes)
    if isinstance(node, Not | Field):
        return False
    return False


def _recording_counts(s: Searcher, q: Any, allow: set[int] | None) -> dict[str, int]:
    """Matching turns per recording (read from the recording column: no stored-field I/O)."""
    col = s.reader().column_reader("recording")
    counts: dict[str, int] = {}
    for d in q.docs(s):
        if allow is None or d in allow:
            rid = col[d]
            rid = rid.decode("utf-8") if isinstance(rid, bytes) else rid
            counts[rid] = counts.get(rid, 0) + 1
    return counts


def _time_filter(s: Searcher, q: Any, parsed: Parsed) -> set[int]:
    """Docnums whose turn overlaps every at:/after:/before: window (exact, on stored times).

    The query already holds coarse minute terms, so only those candidates are checked.
    """
    starts = s.reader().column_reader("start_col")
    ends = s.reader().column_reader("end_col")
    allowed = set()
    for d in q.docs(s):
        st, en = starts[d], ends[d]
        if all(st <= (hi if hi is not None else st) and en >= lo for lo, hi in parsed.time_ranges):
            allowed.add(d)
    return allowed


def _make_hit(
    rank: int, score: float, f: dict[str, Any], hl: Highlight, recs: dict[str, dict[str, Any]]
) -> Hit:
    text: str = f.get("text", "")
    lang = f.get("lang") or ""
    spans = mark(text, lang, hl)
    t0 = _match_time(text, f, spans)
    snippet, snip_spans = make_snippet(text, spans)
    rid = f["recording"]
    rec = _recording(rid, f, recs)
    return Hit(
        rank=rank,
        recording_id=rid,
        title=f.get("title") or rid,
        channel=f.get("channel") or "",
        date=f.get("date") or "",
        speaker=f.get("speaker_label"),
        speaker_name=f.get("speaker_name") or f.get("speaker_label"),
        language=lang,
        turn_id=int(f.get("turn", 0)),
        start=float(f["start"]),
        end=float(f["end"]),
        time=t0,
        snippet=snippet,
        spans=snip_spans,
        link=make_link(rec, t0),
        score=round(float(score), 4),
    )


def _recording(rid: str, f: dict[str, Any], recs: dict[str, dict[str, Any]]) -> Recording:
    m = recs.get(rid)
    if m is None:  # metadata missing (a crash between commit and sidecar): best effort
        return Recording(id=rid, title=f.get("title") or rid, source=rid)
    keys = ("title", "source", "kind", "webpage_url", "extractor", "extractor_id")
    return Recording(id=rid, **{k: m.get(k) for k in keys})  # type: ignore[arg-type]


def _match_time(text: str, f: dict[str, Any], spans: list[tuple[int, int]]) -> float:
    start = float(f["start"])
    raw = f.get("wt") or b""
    if not spans or not raw:
        return start
    offsets = array("I")
    offsets.frombytes(raw)
    # Word i begins right after the i-th space (the index joined words with single spaces).
    word_starts = [0]
    for i, ch in enumerate(text):
        if ch == " ":
            word_starts.append(i + 1)
    wi = bisect.bisect_right(word_starts, spans[0][0]) - 1
    if 0 <= wi < len(offsets):
        return start + offsets[wi] / 100.0
    return start


# ---------------------------------------------------------------------------------------------
# Highlighting: our own, over the stored text, so it knows about stems, folding and phrases.


def mark(text: str, lang: str, hl: Highlight) -> list[tuple[int, int]]:
    """Character ranges of `text` that match the query's positive words and phrases."""
    plain = ix_mod.tokens(text)
    if not plain:
        return []
    sl = ix_mod.stem_lang(lang)
    stems_wanted = hl.stems.get(sl, set()) if sl else set()
    stemmed: dict[int, str] = {}
    if stems_wanted:
        stemmed = {s: t for t, s, _ in ix_mod.tokens(text, sl)}
    hit = [False] * len(plain)
    for i, (t, s, _e) in enumerate(plain):
        if (
            t in hl.terms
            or stemmed.get(s) in stems_wanted
            or any(t.startswith(p) for p in hl.prefixes)
            or any(_within(t, w, d) for w, d in hl.fuzzy)
        ):
            hit[i] = True
    terms = [t for t, _, _ in plain]
    for ph in hl.phrases:
        k = len(ph)
        for i in range(len(terms) - k + 1):
            if terms[i : i + k] == ph:
                for j in range(i, i + k):
                    hit[j] = True
    spans: list[tuple[int, int]] = []
    for i, (_t, s, e) in enumerate(plain):
        if hit[i]:
            if spans and i > 0 and hit[i - 1] and text[spans[-1][1] : s].strip() == "":
                spans[-1] = (spans[-1][0], e)  # join adjacent matches: **space diplomacy**
            else:
                spans.append((s, e))
    return spans


def _within(a: str, b: str, maxdist: int) -> bool:
    """Damerau-Levenshtein distance(a, b) <= maxdist, first letter equal (as the query asks)."""
    if abs(len(a) - len(b)) > maxdist or not a or a[0] != b[0]:
        return False
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > maxdist:
            return False
        prev2, prev = prev, cur
    return prev[-1] <= maxdist


def make_snippet(
    text: str, spans: list[tuple[int, int]], width: int = SNIPPET_CHARS
) -> tuple[str, list[tuple[int, int]]]:
    """About `width` characters around the first match, cut at word boundaries, with `…`."""
    if len(text) <= width:
        return text, list(spans)
    first = spans[0][0] if spans else 0
    lo = max(0, first - width // 4)
    if lo > 0:
        sp = text.rfind(" ", 0, lo)
        lo = sp + 1 if sp >= 0 else 0
    hi = min(len(text), lo + width)
    if hi < len(text):
        sp = text.rfind(" ", lo, hi)
        hi = sp if sp > lo else hi
    prefix = "… " if lo > 0 else ""
    suffix = " …" if hi < len(text) else ""
    shift = len(prefix) - lo
    out = [(s + shift, min(e, hi) + shift) for s, e in spans if s >= lo and s < hi]
    return prefix + text[lo:hi] + suffix, out


# ---------------------------------------------------------------------------------------------


def _add_context(ws: Workspace, hit: Hit, n: int, cache: dict[str, Transcript]) -> None:
    t = cache.get(hit.recording_id)
    if t is None:
        try:
            t = cache[hit.recording_id] = load(ws, hit.recording_id)
        except Exception:  # the transcript went away: the hit stands without context
            log.debug("no context for %s", hit.recording_id, exc_info=True)
            return
    idx = next((i for i, tn in enumerate(t.turns) if tn.id == hit.turn_id), None)
    if idx is None:
        return

    def ctx(i: int) -> ContextTurn:
        tn = t.turns[i]
        return ContextTurn(tn.id, tn.speaker, t.speaker_name(tn.speaker), tn.start, tn.end, tn.text)

    hit.before = [ctx(i) for i in range(max(0, idx - n), idx)]
    hit.after = [ctx(i) for i in range(idx + 1, min(len(t.turns), idx + 1 + n))]
