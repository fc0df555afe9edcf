"""Search the archive: turns that match, each with its mentions — every passage where the
query is said, timed by the word that starts it (locate.py), with highlights and links."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from whoosh import sorting
from whoosh.searching import Searcher

from confindex.formats.links import link as make_link
from confindex.search import analysis, ranking
from confindex.search import index as ix_mod
from confindex.search.compile import Compiled, MAll, MAny, MNode, Unit
from confindex.search.compile import compile as compile_query
from confindex.search.grammar import Field, Parsed, Phrase, Word, parse
from confindex.search.locate import TurnTokens, char_spans, passages, satisfied
from confindex.search.ranking import Row
from confindex.store.transcript import Recording, Transcript, load
from confindex.store.workspace import Workspace

if TYPE_CHECKING:
    from confindex.search.suggest import Suggestion

log = logging.getLogger("confindex.search.hits")

SNIPPET_CHARS = 220
LogFn = Callable[[str], None]
log_ = logging.getLogger("confindex")

# Candidates checked per round for queries with phrases (x4 each round, then all of them).
VERIFY_FIRST = 40
VERIFY_CAP = 2560
# Set by the test suite (tests/conftest.py): a hit whose time cannot be located raises
# instead of being logged and reported at the turn start.
STRICT_ENV = "CONFINDEX_STRICT_TIMES"


class TimeNotLocated(AssertionError):
    """A hit matched words that could not be found in its turn (a bug; strict mode only)."""


@dataclass
class Mention:
    """One passage of a turn where the query is said: its own second and link."""

    time: float  # start of its first matched word
    link: str
    snippet: str
    spans: list[tuple[int, int]]  # matched character ranges in `snippet`
    located: bool = True  # False: no word timings, `time` is the turn start

    @property
    def fragment(self) -> str:
        return _styled(self.snippet, self.spans, "**", "**")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["spans"] = [list(sp) for sp in self.spans]
        d["fragment"] = self.fragment
        return d


@dataclass
class ContextTurn:
    turn_id: int
    speaker: str | None
    speaker_name: str | None
    start: float
    end: float
    text: str


@dataclass
class HitFlag:
    kind: str
    start: float
    end: float
    score: float
    reason: str


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
    time: float  # the first mention's time (the turn start only when matched by fields alone)
    snippet: str  # plain text around the first mention
    spans: list[tuple[int, int]]  # matched character ranges in `snippet`
    link: str
    score: float
    matches: int = 1  # with group=True: matching turns in this recording
    speaker_automatic: bool = False  # the name is the voice library's guess, unconfirmed
    before: list[ContextTurn] = field(default_factory=list)
    after: list[ContextTurn] = field(default_factory=list)
    mentions: list[Mention] = field(default_factory=list)  # every passage, in spoken order
    located: bool = True  # False: `time` is the turn start (fields-only match, no word times)
    # Quality flags of the passages in this turn (quality.py): kind, start, end, score, reason.
    flags: list[HitFlag] = field(default_factory=list)
    # Semantic search only (fusion.py): "lexical" | "semantic" | "both", and the cosine
    # similarity of the passage to the query; absent from a plain search's JSON.
    match: str | None = None
    similarity: float | None = None
    # The chapter the turn is in (issue 32): its title and start second ("" / None: none).
    chapter: str = ""
    chapter_start: float | None = None

    def styled(self, open_mark: str, close_mark: str) -> str:
        """The snippet with each match wrapped in the given marks (ANSI codes on a TTY)."""
        return _styled(self.snippet, self.spans, open_mark, close_mark)

    @property
    def fragment(self) -> str:
        """The snippet with matches marked `**like this**`."""
        return self.styled("**", "**")

    def to_dict(self) -> dict[str, Any]:
        """The one JSON shape of a hit (`search --json` and the web API both use it)."""
        d = asdict(self)
        d["fragment"] = self.fragment
        d["spans"] = [list(s) for s in self.spans]
        d["mentions"] = [m.to_dict() for m in self.mentions]
        for key in ("match", "similarity"):
            if d[key] is None:
                del d[key]
        return d


def _styled(snippet: str, spans: list[tuple[int, int]], open_mark: str, close_mark: str) -> str:
    out, pos = [], 0
    for s, e in spans:
        out += [snippet[pos:s], open_mark, snippet[s:e], close_mark]
        pos = e
    out.append(snippet[pos:])
    return "".join(out)


@dataclass
class SearchResult:
    hits: list[Hit]
    total: int  # matching turns (recordings with group=True); a lower bound unless exact
    query: str = ""
    exact: bool = True  # False: `total` is Whoosh's estimate (an upper bound)
    # When nothing matched: queries that do find hits (search/suggest.py).
    suggestions: list[Suggestion] = field(default_factory=list)

    def __iter__(self):
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)

    @property
    def mentions(self) -> list[tuple[Hit, Mention]]:
        """Every mention of every hit, in hit order."""
        return [(h, m) for h in self.hits for m in h.mentions]

    def to_dict(self, offset: int = 0, citations: dict[int, Any] | None = None) -> dict[str, Any]:
        """What `confindex search --json` prints and `serve`'s /api/search answers (the same
        function, so the two cannot drift apart); `citations` maps a hit's rank to its Citation."""
        hits = []
        for h in self.hits:
            d = h.to_dict()
            if citations is not None:
                d["citation"] = citations[h.rank].to_dict()
            hits.append(d)
        return {
            "query": self.query,
            "total": self.total,
            "total_exact": self.exact,
            "offset": offset,
            "hits": hits,
            "suggestions": [x.to_dict() for x in self.suggestions],
        }


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
        s = ix.searcher(weighting=ranking.weighting())
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
        present = {analysis.stem_lang(x) for r in recs.values() for x in r.get("languages") or ()}
        langs = tuple(lang for lang in analysis.STEM_LANGS if lang in present)
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
    """Search the workspace's index (a missing or stale one is a warning naming the command
    that rebuilds it: a read never writes).

    `group` keeps the best turn per recording (`Hit.matches` counts its matching turns);
    `context` adds that many transcript turns before and after each hit.
    """
    parsed = query if isinstance(query, Parsed) else parse(query)  # QueryError before any I/O
    limit, offset = max(0, int(limit)), max(0, int(offset))
    ix_mod.warn_if_stale(ws, log)  # a read never (re)builds the index
    with ix_mod.damage_named():
        result = _search(ws, parsed, limit, offset, group, context)
        if result.total == 0:  # what would find hits (search/suggest.py)
            from confindex.search.suggest import for_query

            s = searcher(ws)
            result.suggestions = for_query(
                s.reader() if s else None,
                parsed.text,
                lambda q: _search(ws, parse(q), 1, 0, False, 0).total,
            )
        return result


def _search(
    ws: Workspace, parsed: Parsed, limit: int, offset: int, group: bool, context: int
) -> SearchResult:
    s = searcher(ws)
    if s is None:
        return SearchResult([], 0, parsed.text)
    recs = ix_mod.load_recordings(ws)
    langs, max_s = _archive_info(recs)
    comp = compile_query(parsed, langs, max_seconds=max_s)
    q = comp.query

    allow = _time_filter(s, q, parsed) if parsed.time_ranges else None
    if allow is not None and not allow:  # Whoosh treats an empty filter set as "no filter"
        return SearchResult([], 0, parsed.text)
    scored = _has_scoring_terms(parsed.node)
    want = offset + limit
    kwargs: dict[str, Any] = {"filter": allow, "terms": False}
    if not scored:
        # Filters only: every score ties, so order by date then time explicitly.
        kwargs["sortedby"] = [sorting.FieldFacet("date"), sorting.FieldFacet("start_col")]
    broad = None
    if ranking.may_be_broad(scored, group, comp.all_common):

        def keep(f: dict[str, Any]) -> bool:
            return not comp.verify or satisfied(
                comp.tree, TurnTokens.of(f.get("text", ""), f.get("lang"))
            )

        broad = ranking.broad_rows(s, q, keep, allow, want)
    if broad is not None:
        rows, total, exact, counts = broad, q.estimate_size(s.reader()), False, {}
    elif comp.verify:
        rows, total, exact, counts = _verified(s, q, comp, kwargs, want, scored, group)
    else:
        if group:
            kwargs["collapse"] = "recording"
        # A few extra so equal scores at the page edge are ordered by date then time.
        results_limit = max(want + 20, 1) if scored else max(want, 1)
        results = s.search(q, limit=results_limit, **kwargs)
        if group:
            counts = _recording_counts(s, q, allow)
            total, exact = len(counts), True
        else:
            counts = {}
            total, exact = _count(results, results_limit)
        rows = _rows(results, scored)
    rows = rows[offset:want]

    hits: list[Hit] = []
    transcripts: dict[str, Transcript] = {}
    strict = os.environ.get(STRICT_ENV) == "1"
    for i, (score, f, _doc) in enumerate(rows):
        hit = _make_hit(offset + i + 1, score, f, comp, recs, strict)
        if group:
            hit.matches = int(counts.get(f["recording"], 1))
        if context > 0:
            _add_context(ws, hit, context, transcripts)
        hits.append(hit)
    return SearchResult(hits, total, parsed.text, exact)


def _rows(results: Any, scored: bool, cache: dict[int, dict[str, Any]] | None = None) -> list[Row]:
    """(score, stored fields, docnum) per result; `cache` keeps fields read in earlier rounds."""
    rows = []
    for h in results:
        f = cache.get(h.docnum) if cache is not None else None
        if f is None:
            f = h.fields()
            if cache is not None:
                cache[h.docnum] = f
        # With sortedby, Whoosh's hit.score is the sort key, not a relevance score.
        rows.append((float(h.score or 0.0) if scored else 0.0, f, h.docnum))
    if scored:
        ranking.rank(rows)
    return rows


def _verified(
    s: Searcher,
    q: Any,
    comp: Compiled,
    kwargs: dict[str, Any],
    want: int,
    scored: bool,
    group: bool,
) -> tuple[list[Row], int, bool, dict[str, int]]:
    """Candidates (all words present) checked on their tokens for words in order.

    The best-scored candidates are checked first, widening ×4 until the page is full; the
    positional check runs on a few dozen turns instead of every turn holding the words.
    Returns (rows, total, exact, matching turns per recording).
    """
    checked: dict[int, bool] = {}
    stored: dict[int, dict[str, Any]] = {}
    limit = max(VERIFY_FIRST, 2 * want + 20)
    while True:
        results = s.search(q, limit=None if limit > VERIFY_CAP else limit, **kwargs)
        rows = _rows(results, scored, stored)
        exhausted = limit > VERIFY_CAP or results.scored_length() < limit
        ok: list[Row] = []
        for row in rows:
            doc = row[2]
            if doc not in checked:
                f = row[1]
                tt = TurnTokens.of(f.get("text", ""), f.get("lang"))
                checked[doc] = satisfied(comp.tree, tt)
            if checked[doc]:
                ok.append(row)
        counts: dict[str, int] = {}
        for row in ok:
            rid = row[1]["recording"]
            counts[rid] = counts.get(rid, 0) + 1
        if group:
            seen: set[str] = set()
            ok = [r for r in ok if not (r[1]["recording"] in seen or seen.add(r[1]["recording"]))]
        if len(ok) >= want or exhausted:
            total = len(ok)
            return ok, total, exhausted, counts
        limit *= 4


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
    from confindex.search.grammar import And, Not, Or

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
    rank: int,
    score: float,
    f: dict[str, Any],
    comp: Compiled,
    recs: dict[str, dict[str, Any]],
    strict: bool = False,
) -> Hit:
    text: str = f.get("text", "")
    lang = f.get("lang") or ""
    rid = f["recording"]
    rec = _recording(rid, f, recs)
    start = float(f["start"])
    tt = TurnTokens.of(text, lang, f.get("wt") or b"")
    found = passages(comp.tree, tt)
    mentions: list[Mention] = []
    all_spans: list[tuple[int, int]] = []
    for p in found:
        spans = char_spans(tt, p)
        all_spans += spans
        t = tt.time_of(p.first, start)
        snippet, snip_spans = make_snippet(text, spans)
        located = t is not None
        mentions.append(Mention(t if located else start, "", snippet, snip_spans, located))
    for m in mentions:
        m.link = make_link(rec, m.time)
    located = bool(mentions) and all(m.located for m in mentions)
    if not located and (found or _text_required(comp.tree)):
        # The turn matched on words that cannot be timed: a bug in a test, a warning otherwise.
        msg = f"no word time for {str(comp.query)!r} in {rid} turn {f.get('turn')}"
        if strict:
            raise TimeNotLocated(msg)
        log_.warning("%s: citing the turn start", msg)
    t0 = mentions[0].time if mentions else start
    snippet, snip_spans = make_snippet(text, sorted(set(all_spans)))
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
        start=start,
        end=float(f["end"]),
        time=t0,
        snippet=snippet,
        spans=snip_spans,
        link=make_link(rec, t0),
        score=round(float(score), 4),
        mentions=mentions,
        located=located,
        flags=[HitFlag(*x) for x in f.get("flags") or []],
        speaker_automatic=f.get("speaker_label") in ((recs.get(rid) or {}).get("automatic") or ()),
        chapter=f.get("chapter_title") or "",
        chapter_start=f.get("chapter_start"),
    )


def _text_required(m: MNode) -> bool:
    """Whether every way of matching the tree needs words said in the turn (not just fields)."""
    if isinstance(m, Unit):
        return True
    if isinstance(m, MAll):
        return any(_text_required(n) for n in m.nodes)
    if isinstance(m, MAny):
        return all(_text_required(n) for n in m.nodes)
    return False  # a field or a NOT


def _recording(rid: str, f: dict[str, Any], recs: dict[str, dict[str, Any]]) -> Recording:
    m = recs.get(rid)
    if m is None:  # metadata missing (a crash between commit and sidecar): best effort
        return Recording(id=rid, title=f.get("title") or rid, source=rid)
    keys = ("title", "source", "kind", "webpage_url", "extractor", "extractor_id")
    return Recording(id=rid, **{k: m.get(k) for k in keys})  # type: ignore[arg-type]


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
