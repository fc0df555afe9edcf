"""The search index: one Whoosh document per turn, derived from transcripts/ and rebuildable.

Layout under `ws.index_dir`:

    CURRENT.json        {"schema": N, "generation": "g-…"}: which generation readers open
    g-…/                a Whoosh index + recordings.json (per-recording metadata for links/stats)

`rebuild()` builds a new generation beside the live one and swaps `CURRENT.json` atomically, so
a crash mid-build never leaves a half index. Writers take `ws.lock("index")`; readers never lock.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import re
import shutil
import time
import unicodedata
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from whoosh import columns, fields, index, reading
from whoosh.analysis import Filter, RegexTokenizer, SpaceSeparatedTokenizer
from whoosh.lang import stemmer_for_language

from confindex.errors import ConfindexError, IndexDamagedError
from confindex.store.transcript import Transcript, load_path
from confindex.store.workspace import Workspace, atomic_write_text, make_dir

REBUILD_HINT = "run confindex index --rebuild (it rebuilds the index from transcripts/)"


# The disk, not the index: full, read-only, no permission, I/O error.
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


@contextlib.contextmanager
def damage_named() -> Iterator[None]:
    """Reading a damaged index is an IndexDamagedError that names `index --rebuild`.

    A truncated or garbled segment, TOC or recordings.json surfaces as EOFError (which click
    would report as "interrupted"), struct/pickle/JSON/KeyError from Whoosh, … — never as a
    traceback. Disk errors (full, read-only) stay OSErrors: they are not damage.
    """
    try:
        yield
    except OSError as exc:
        if exc.errno in _DISK_ERRNOS:
            raise
        what = " ".join((exc.strerror or str(exc)).split())[:120]  # a segment gone or garbled
        raise IndexDamagedError(f"the search index is damaged ({what}); {REBUILD_HINT}") from None
    except (ConfindexError, KeyboardInterrupt, MemoryError, AssertionError):
        raise  # AssertionError: a bug (search.TimeNotLocated in tests), not damage
    except ImportError as exc:  # a broken install, not the index: a rebuild would not help
        raise ConfindexError(
            f"confindex is installed incompletely ({exc}); reinstall it with its dependencies"
        ) from None
    except Exception as exc:
        what = " ".join(str(exc).split())[:120]
        raise IndexDamagedError(
            f"the search index is damaged ({type(exc).__name__}{': ' + what if what else ''}); "
            + REBUILD_HINT
        ) from None


# Bump when the schema or the analysis changes: older indexes are rebuilt from transcripts.
# 5: titles split on _ and camelCase.
# 6: compound terms (BFM TV → bfmtv, Jean-Loup → jeanloup) in `stem`; `pairs` holds stem pairs
#    with a common word (CommonGrams), not only pairs of two common words.
# 7: quality flags per turn (`flag`, `flags`).
# 8: each `_` segment of a title also whole (`doklad_part1` → doklad, part1, part, 1).
SCHEMA_VERSION = 8

# Languages stemmed into the `stem` field; turns in other languages index folded words there.
STEM_LANGS: tuple[str, ...] = ("en", "fr", "ru", "de", "es", "it", "pt", "nl")

# French/Italian-style elided articles and pronouns: l'espace → espace.
_ELISIONS = frozenset(
    {
        *("l", "d", "j", "m", "n", "s", "t", "c", "qu", "jusqu", "lorsqu", "puisqu", "quoiqu"),
        *("presqu", "quelqu", "dell", "all", "dall", "nell", "sull"),
    }
)
TOKEN_PATTERN = r"\w+(?:['’]\w+)*"

ProgressFn = Callable[[int, int], None]
LogFn = Callable[[str], None]


# ---------------------------------------------------------------------------------------------
# Analysis


@lru_cache(maxsize=200_000)
def fold(word: str) -> str:
    """Lowercase and strip accents from Latin letters (Chrétien → chretien, Soïouz → soiouz).

    Cyrillic keeps й (the Russian stemmer needs it) but ё → е, as Russian writers do.
    """
    w = word.lower().replace("ё", "е").replace("’", "'")
    if w.isascii():
        return w
    out = []
    for ch in w:
        if ord(ch) < 0x250:  # Latin: drop combining marks (é → e, ï → i); ß, œ, æ expand
            base = unicodedata.normalize("NFKD", ch)
            out.append("".join(c for c in base if not unicodedata.combining(c)))
        else:
            out.append(ch)
    return "".join(out).replace("œ", "oe").replace("æ", "ae").replace("ß", "ss")


def strip_elision(word: str) -> tuple[str, int]:
    """`l'espace` → (`espace`, 2): the word without its elided prefix and the chars removed."""
    i = word.find("'")
    if i > 0 and word[:i] in _ELISIONS and i + 1 < len(word):
        return word[i + 1 :], i + 1
    return word, 0


@cache
def _stemmer(lang: str) -> Callable[[str], str]:
    return stemmer_for_language(lang)


@lru_cache(maxsize=400_000)
def normalize(word: str, lang: str | None = None) -> str:
    """The indexed form of one token: folded, elision stripped, and stemmed when `lang` is given.

    Latin text is folded *before* stemming so accented and unaccented spellings stem alike
    (activité/activites → activit); Russian is stemmed on its own letters.
    """
    w, _ = strip_elision(fold(word))
    if lang is None:
        return w
    return _stemmer(lang)(w)


class NormalizeFilter(Filter):
    """Lowercase + fold + elision (+ stem) in one pass; one cache lookup per token."""

    def __init__(self, lang: str | None = None) -> None:
        self.lang = lang

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NormalizeFilter) and other.lang == self.lang

    def __hash__(self) -> int:
        return hash(("NormalizeFilter", self.lang))

    def __call__(self, tokens: Iterator[Any]) -> Iterator[Any]:
        lang = self.lang
        for t in tokens:
            text = t.text
            if t.chars and ("'" in text or "’" in text):
                _, cut = strip_elision(fold(text))
                t.startchar += cut
            t.text = normalize(text, lang)
            if t.text:
                yield t


def analyzer(lang: str | None = None):
    """Tokenizer + NormalizeFilter: the plain (folded, unstemmed) analyzer or a stemmed one."""
    return RegexTokenizer(TOKEN_PATTERN) | NormalizeFilter(lang)


# pyannote_sample, SpaceDiplomacy2024: titles are often file names; index their parts too.
_CAMEL_CUT = re.compile(
    r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])"
)


def compound_parts(word: str) -> list[str]:
    """`pyannote_sample` → [pyannote, sample]; `SpaceDiplomacy2024` → [Space, Diplomacy, 2024];
    `космосе_part1` → [космосе, part1, part, 1]: each `_` segment whole too, so `title:part1`
    finds it (it once matched only `part` and `1`)."""
    segments = [s for s in word.split("_") if s]
    out: list[str] = []
    for seg in segments:
        parts = [p for p in _CAMEL_CUT.split(seg) if p]
        if len(segments) > 1:
            out.append(seg)
        if len(parts) > 1 or len(segments) == 1:
            out.extend(parts)
    return out


class CompoundSplitFilter(Filter):
    """Yields each token, then its parts when it is a snake_case or camelCase compound (at the
    same position: `title:pyannote` and `title:pyannote_sample` both match)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CompoundSplitFilter)

    def __hash__(self) -> int:
        return hash("CompoundSplitFilter")

    def __call__(self, tokens: Iterator[Any]) -> Iterator[Any]:
        for t in tokens:
            whole = t.text
            parts = compound_parts(whole)
            yield t
            if len(parts) > 1:
                for part in parts:
                    t.text = part
                    yield t
                t.text = whole


def title_analyzer():
    """Like the plain analyzer, plus the parts of compound words (titles and channels)."""
    return RegexTokenizer(TOKEN_PATTERN) | CompoundSplitFilter() | NormalizeFilter(None)


def tokens(text: str, lang: str | None = None) -> list[tuple[str, int, int]]:
    """(normalized term, startchar, endchar) for each token of `text`."""
    return [
        (t.text, t.startchar, t.endchar) for t in analyzer(lang)(text, chars=True, positions=False)
    ]


_WORD_RE = re.compile(TOKEN_PATTERN)


class Token(NamedTuple):
    """One analysed token of a turn: what the index holds for it and where it was spoken."""

    start: int  # characters in the text
    end: int
    folded: str  # the `text` field's form (folded, elision stripped)
    stem: str  # the `stem` field's form (stemmed in the turn's language; folded otherwise)


def analyse(text: str, lang: str | None) -> list[Token]:
    """The tokens of `text` exactly as the index analyses them (stem_text is built from this).

    Search locates matches with the same function, so the time of a hit comes from the very
    tokens that matched — never from a differently analysed form.
    """
    out = []
    for m in _WORD_RE.finditer(text):
        raw = m.group()
        folded = normalize(raw)
        if not folded:
            continue
        start = m.start()
        if "'" in raw or "’" in raw:
            start += strip_elision(fold(raw))[1]
        out.append(Token(start, m.end(), folded, normalize(raw, lang) if lang else folded))
    return out


# Spacing variants of names and acronyms: "BFM TV" / "BFMTV", "Jean-Loup" / "Jeanloup". Two
# adjacent tokens joined by a hyphen, or two short all-capital acronyms, also index their
# concatenation; a query word finds it as any other term, and a query of several words also
# tries the concatenation (query.py). Only these pairs: indexing every pair grew the index 2.5×.
_ACRONYM_MAX = 5


def compounds(text: str, toks: list[Token]) -> list[tuple[int, str]]:
    """(index of the first token, concatenated term) for each joined pair in `toks`."""
    out = []
    for i, (a, b) in enumerate(itertools.pairwise(toks)):
        gap = text[a.end : b.start]
        if gap in ("-", "\u2011") or (
            _is_acronym(text, a) and gap.isspace() and _is_acronym(text, b)
        ):
            out.append((i, a.folded + b.folded))
    return out


def _is_acronym(text: str, t: Token) -> bool:
    w = text[t.start : t.end]
    return len(w) <= _ACRONYM_MAX and w.isalpha() and w.isupper()


def stem_text(text: str, lang: str | None, toks: list[Token] | None = None) -> str:
    """The turn's words stemmed in its own language plus its compounds (pre-analysed `stem`)."""
    toks = analyse(text, lang) if toks is None else toks
    return " ".join([t.stem for t in toks] + [c for _, c in compounds(text, toks)])


@cache
def common_words() -> frozenset[str]:
    """Stop words of the stemmed languages, folded: the words whose pairs get indexed."""
    from whoosh.lang.stopwords import stoplists

    return frozenset(normalize(w) for lang in STEM_LANGS for w in stoplists.get(lang, ()))


def pair(a: str, b: str) -> str:
    return f"{a}|{b}"


def is_common_pair(a: str, b: str) -> bool:
    common = common_words()
    return a in common and b in common


def has_common(a: str, b: str) -> bool:
    common = common_words()
    return a in common or b in common


def pairs_text(text: str, lang: str | None = None, toks: list[Token] | None = None) -> str:
    """Stems of adjacent words where either is a common word (`of|the`, `la|station`), as
    Lucene's CommonGrams does.

    A phrase is found from these terms and the words' own stems (no positions), then checked
    in order on the tokens (locate.py). Whoosh's positional check in Python cost 216 ms p95 at
    500k turns, and checking candidates that merely hold a common word and a rarer one cost
    as much (measured: "this international" read 2,560 turns). Every pair (not only those
    with a common word) grew the index 2.5×.
    """
    toks = analyse(text, lang) if toks is None else toks
    return " ".join(
        pair(a.stem, b.stem) for a, b in itertools.pairwise(toks) if has_common(a.folded, b.folded)
    )


def stem_lang(language: str | None) -> str | None:
    """The stemmer language for a turn's language code (`fr`, `fr-FR`, `French`…), if any."""
    if not language:
        return None
    code = language.lower().replace("_", "-").split("-")[0]
    return code if code in STEM_LANGS else None


# ---------------------------------------------------------------------------------------------
# Schema


def make_schema() -> fields.Schema:
    plain = analyzer(None)
    return fields.Schema(
        uid=fields.ID(unique=True, stored=True),
        recording=fields.ID(stored=True, sortable=True),
        title=fields.TEXT(analyzer=title_analyzer(), stored=True),
        channel=fields.TEXT(analyzer=title_analyzer(), stored=True),
        # ISO date as a term: date:2023 / 2023-10 are prefix queries over few distinct terms.
        date=fields.ID(stored=True),
        speaker=fields.ID(),  # folded label, matched as a Term (fast filter)
        speaker_label=fields.STORED(),
        speaker_name=fields.TEXT(analyzer=plain, stored=True),
        lang=fields.ID(stored=True),
        turn=fields.STORED(),
        # Times are stored, not NUMERIC (16 terms per value doubled build time, NOTES); time
        # filters use coarse minute terms, then the exact check reads these columns.
        start=fields.STORED(),
        end=fields.STORED(),
        start_col=fields.COLUMN(columns.NumericColumn("f")),
        end_col=fields.COLUMN(columns.NumericColumn("f")),
        minutes=fields.KEYWORD(scorable=False),
        text=fields.TEXT(analyzer=plain, stored=True),
        wt=fields.STORED(),  # word start offsets (centiseconds from turn start)
        # One stemmed field for all languages, stemmed per turn at indexing time: a word query
        # ORs 2–4 distinct terms in one field instead of one field per language (faster).
        stem=fields.TEXT(analyzer=SpaceSeparatedTokenizer(), phrase=False),
        pairs=fields.TEXT(analyzer=SpaceSeparatedTokenizer(), phrase=False),
        # Quality flags (quality.py) of the turn: `flag:loop`, `flag:any` match these terms;
        # `flags` keeps each passage (kind, start, end, score, reason) to show on hits.
        flag=fields.KEYWORD(scorable=False),
        flags=fields.STORED(),
    )


# Whoosh's MultiReader.terms_within falls back to a brute-force scan of every term (1.7–2.2 s
# per fuzzy query on a multi-segment index, NOTES); each segment has a fast DFA-based one.
def _multi_terms_within(
    self: reading.MultiReader, fieldname: str, text: str, maxdist: int, prefix: int = 0
) -> Iterable[str]:
    seen: set[str] = set()
    for r in self.readers:
        for term in r.terms_within(fieldname, text, maxdist, prefix=prefix):
            if term not in seen:
                seen.add(term)
                yield term


reading.MultiReader.terms_within = _multi_terms_within  # type: ignore[method-assign]


# ---------------------------------------------------------------------------------------------
# Documents


def _minutes(start: float, end: float) -> str:
    first, last = int(start // 60), int(max(start, end) // 60)
    return " ".join(f"m{m}" for m in range(first, last + 1))


def turn_text(turn: Any) -> tuple[str, bytes]:
    """The turn's text as its words joined by single spaces, and their start offsets.

    Word i starts at character sum(len(w)+1 for w before i), so the index needs only the
    offsets (uint32 centiseconds from the turn start) to time any matched token.
    """
    words = [(w.start, " ".join(w.text.split()).replace(" ", "\u00a0")) for w in turn.words]
    words = [(s, t) for s, t in words if t]
    if not words:
        return " ".join(turn.text.split()), b""
    offsets = array("I", (max(0, round((s - turn.start) * 100)) for s, _ in words))
    return " ".join(t for _, t in words), offsets.tobytes()


def documents(t: Transcript) -> Iterator[dict[str, Any]]:
    from confindex.speech.quality import turn_flags

    rec = t.recording
    flagged = turn_flags(t)
    for turn in t.turns:
        text, wt = turn_text(turn)
        if not text:
            continue
        lang = turn.language or t.language or ""
        doc: dict[str, Any] = {
            "uid": f"{rec.id}#{turn.id}",
            "recording": rec.id,
            "title": rec.title or "",
            "channel": rec.channel or rec.uploader or "",
            "date": rec.upload_date or "",
            "speaker": fold(turn.speaker or ""),
            "speaker_label": turn.speaker,
            "speaker_name": t.speaker_name(turn.speaker) or "",
            "lang": lang.lower(),
            "turn": turn.id,
            "start": float(turn.start),
            "end": float(turn.end),
            "start_col": float(turn.start),
            "end_col": float(turn.end),
            "minutes": _minutes(turn.start, turn.end),
            "text": text,
            "wt": wt,
        }
        sl = stem_lang(lang)
        toks = analyse(text, sl)
        doc["stem"] = stem_text(text, sl, toks)
        doc["pairs"] = pairs_text(text, sl, toks)
        fl = flagged.get(turn.id)
        if fl:
            doc["flag"] = " ".join(["any", *sorted({f.kind for f in fl})])
            doc["flags"] = [[f.kind, f.start, f.end, f.score, f.reason] for f in fl]
        yield doc


def recording_meta(t: Transcript) -> dict[str, Any]:
    """What search needs about a recording without loading its transcript (links, stats)."""
    rec = t.recording
    return {
        "id": rec.id,
        "title": rec.title,
        "source": rec.source,
        "kind": rec.kind,
        "webpage_url": rec.webpage_url,
        "extractor": rec.extractor,
        "extractor_id": rec.extractor_id,
        "channel": rec.channel,
        "uploader": rec.uploader,
        "upload_date": rec.upload_date,
        "duration": t.duration or rec.duration or 0.0,
        "language": t.language,
        "turns": len(t.turns),
        "speakers": {
            s: t.speaker_name(s) for s in sorted({tn.speaker for tn in t.turns if tn.speaker})
        },
        "languages": sorted({(tn.language or t.language or "") for tn in t.turns} - {""}),
        # For the library page (web/library.py): flag counts by kind, share of verified words.
        "flags": dict(Counter(f.kind for f in t.flags)),
        "verified": verified_share(t),
    }


def verified_share(t: Transcript) -> float:
    """The share of words a person checked (a word's `verified`, when edits have set it)."""
    words = [w for turn in t.turns for w in turn.words]
    if not words:
        return 0.0
    return round(sum(1 for w in words if getattr(w, "verified", False)) / len(words), 4)


# ---------------------------------------------------------------------------------------------
# Generations


CURRENT = "CURRENT.json"
# IndexState.schema of an unreadable CURRENT.json: damage, not an index of another version.
DAMAGED = -1
RECORDINGS = "recordings.json"


@dataclass(frozen=True)
class IndexState:
    schema: int | None
    generation: Path | None


def state(ws: Workspace) -> IndexState:
    try:
        d = json.loads((ws.index_dir / CURRENT).read_text(encoding="utf-8"))
        gen = ws.index_dir / str(d["generation"])
        return IndexState(int(d["schema"]), gen if gen.is_dir() else None)
    except NotADirectoryError:  # a file where index/ should be: writing will say so
        return IndexState(None, None)
    except FileNotFoundError:
        # A bare Whoosh index in index/ (no CURRENT.json) was made by an older layout.
        old = any(ws.index_dir.glob("*.toc")) if ws.index_dir.is_dir() else False
        return IndexState(0 if old else None, None)
    except (ValueError, KeyError, TypeError, OSError):
        return IndexState(DAMAGED, None)


def exists(ws: Workspace) -> bool:
    s = state(ws)
    return s.schema == SCHEMA_VERSION and s.generation is not None


def needs_rebuild(ws: Workspace) -> bool:
    """True when an index exists but was built by another schema (or is damaged)."""
    s = state(ws)
    return s.schema is not None and (s.schema != SCHEMA_VERSION or s.generation is None)


def stale_message(ws: Workspace) -> str:
    s = state(ws)
    if s.schema == DAMAGED:
        return (
            f"the search index's pointer {ws.index_dir / CURRENT} is damaged: "
            "rebuilding it from transcripts/"
        )
    if s.schema is not None and s.schema != SCHEMA_VERSION:
        return (
            f"the search index was built by another confindex (index schema {s.schema}, "
            f"this version uses {SCHEMA_VERSION}): rebuilding it from transcripts/"
        )
    return "the search index is missing or damaged: rebuilding it from transcripts/"


def open_index(ws: Workspace) -> index.Index | None:
    """The live Whoosh index, or None when there is none (readers never lock)."""
    for _attempt in range(3):
        s = state(ws)
        if s.schema != SCHEMA_VERSION or s.generation is None:
            return None
        try:
            with damage_named():
                return index.open_dir(str(s.generation))
        except (index.EmptyIndexError, OSError, IndexDamagedError) as exc:
            # A rebuild may have swapped generations between reading CURRENT and opening.
            if state(ws).generation == s.generation:
                if isinstance(exc, IndexDamagedError):
                    raise
                raise IndexDamagedError(
                    f"cannot open the search index ({exc}); {REBUILD_HINT}"
                ) from None
    raise ConfindexError("the search index keeps changing; try again")


def check_readable(ws: Workspace) -> None:
    """IndexDamagedError (naming `index --rebuild`) when the live index cannot be opened and
    read. Opening a reader reads every segment's header: a truncated, garbled or missing
    segment and a garbled or empty TOC all fail there (5 of 5 trials each), in milliseconds."""
    ix = open_index(ws)
    if ix is None:
        return
    with damage_named(), ix.reader() as r:
        r.doc_count_all()


def load_recordings(ws: Workspace) -> dict[str, dict[str, Any]]:
    """Per-recording metadata of the live index (empty when there is no index)."""
    s = state(ws)
    if s.generation is None:
        return {}
    return _read_recordings(s.generation)


_REC_CACHE: dict[Path, tuple[float, dict[str, dict[str, Any]]]] = {}


def _read_recordings(gen: Path) -> dict[str, dict[str, Any]]:
    path = gen / RECORDINGS
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return {}
    cached = _REC_CACHE.get(gen)
    if cached and cached[0] == mtime:
        return cached[1]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise IndexDamagedError(f"{path} is damaged ({exc}); {REBUILD_HINT}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise IndexDamagedError(f"{path} is damaged (not a table of recordings); {REBUILD_HINT}")
    _REC_CACHE[gen] = (mtime, data)
    return data


def _write_recordings(gen: Path, recs: dict[str, dict[str, Any]]) -> None:
    atomic_write_text(gen / RECORDINGS, json.dumps(recs, ensure_ascii=False, sort_keys=True))


def _new_generation(ws: Workspace) -> Path:
    make_dir(ws.index_dir)
    name = f"g-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    gen = ws.index_dir / name
    gen.mkdir()
    try:
        index.create_in(str(gen), make_schema())
    except BaseException:  # a full disk: leave no partial generation behind
        shutil.rmtree(gen, ignore_errors=True)
        raise
    return gen


def _swap_in(ws: Workspace, gen: Path) -> None:
    """Point CURRENT.json at `gen` (atomic), then delete every other generation."""
    atomic_write_text(
        ws.index_dir / CURRENT, json.dumps({"schema": SCHEMA_VERSION, "generation": gen.name})
    )
    _cleanup(ws, keep=gen)


def _cleanup(ws: Workspace, keep: Path | None) -> None:
    """Remove old generations and files of an older layout (open readers keep their files)."""
    for p in ws.index_dir.iterdir():
        if p.name == CURRENT or (keep is not None and p == keep):
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.suffix in (".toc", ".seg", ".pst", ".trm", ".fdt", ".json", ".lock") or (
            p.name.startswith("_") or p.name.startswith("MAIN")
        ):
            with contextlib.suppress(OSError):
                p.unlink()


def _cleanup_generations(ws: Workspace, keep: Path) -> None:
    with contextlib.suppress(OSError):
        for p in ws.index_dir.iterdir():
            if p.is_dir() and p.name.startswith("g-") and p != keep:
                shutil.rmtree(p, ignore_errors=True)


def _writer(ix: index.Index, limitmb: int = 128):
    # procs=1: with procs>1 worker errors are swallowed and 0 docs get indexed (NOTES).
    return ix.writer(procs=1, limitmb=limitmb)


# ---------------------------------------------------------------------------------------------
# Writing


def add(ws: Workspace, transcripts: Iterable[Transcript], *, log: LogFn | None = None) -> int:
    """Index these transcripts, replacing any documents of the same recordings; returns turns.

    Idempotent: re-adding a recording deletes its old documents in the same writer.
    """
    items = list(transcripts)
    if not items:
        return 0
    with ws.lock("index"):
        if not exists(ws):
            if needs_rebuild(ws) and log:
                log(stale_message(ws))
            # Build from transcripts/ plus these (they may not be saved yet): one fresh index.
            skipped: list[tuple[str, str]] = []
            n = _rebuild_locked(ws, extra=items, skipped=skipped)
            _warn_skipped(skipped)
            return n
        s = state(ws)
        assert s.generation is not None
        # Under the index lock nobody is building: a generation other than the live one is
        # what a killed or failed (disk full) rebuild left behind.
        _cleanup_generations(ws, keep=s.generation)
        with damage_named():
            ix = index.open_dir(str(s.generation))
            recs = dict(_read_recordings(s.generation))
            w = _writer(ix)
        n = 0
        try:
            with damage_named():
                for t in items:
                    w.delete_by_term("recording", t.id)
                    for doc in documents(t):
                        w.add_document(**doc)
                        n += 1
                    recs[t.id] = {**recording_meta(t), "stamp": transcript_stamp(ws, t.id)}
                w.commit()  # the default merge policy merges small segments; never optimize
        except BaseException:
            with contextlib.suppress(Exception):
                w.cancel()
            raise
        _write_recordings(s.generation, recs)
        return n


def remove(ws: Workspace, recording_ids: Iterable[str]) -> int:
    """Delete every document of these recordings; returns how many documents went."""
    ids = list(recording_ids)
    with ws.lock("index"):
        s = state(ws)
        if s.schema != SCHEMA_VERSION or s.generation is None or not ids:
            return 0
        with damage_named():
            ix = index.open_dir(str(s.generation))
            w = _writer(ix)
        removed = 0
        try:
            with damage_named():
                for rid in ids:
                    removed += w.delete_by_term("recording", rid) or 0
                w.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                w.cancel()
            raise
        recs = {k: v for k, v in _read_recordings(s.generation).items() if k not in ids}
        _write_recordings(s.generation, recs)
        return removed


def rebuild(
    ws: Workspace,
    progress: ProgressFn | None = None,
    *,
    skipped: list[tuple[str, str]] | None = None,
) -> int:
    """Rebuild the whole index from transcripts/ alone; returns the number of turns indexed.

    Builds into a new generation and swaps it in atomically: a crash leaves the old index.
    Transcripts that cannot be read are left out and listed in `skipped` as (id, why).
    """
    with ws.lock("index"):
        return _rebuild_locked(ws, progress=progress, skipped=skipped)


def _rebuild_locked(
    ws: Workspace,
    progress: ProgressFn | None = None,
    extra: list[Transcript] | None = None,
    skipped: list[tuple[str, str]] | None = None,
) -> int:
    ids = ws.transcript_ids()
    extra_by_id = {t.id: t for t in extra or []}
    total = len(set(ids) | set(extra_by_id))
    items = _iter_transcripts(ws, ids, extra_by_id, skipped)
    return _build_locked(ws, items, total, progress)


def build(
    ws: Workspace,
    transcripts: Iterable[Transcript],
    progress: ProgressFn | None = None,
    total: int = 0,
) -> int:
    """Replace the index with one built from `transcripts` (e.g. a generator; used by bench)."""
    with ws.lock("index"):
        return _build_locked(ws, transcripts, total, progress)


def _build_locked(
    ws: Workspace, transcripts: Iterable[Transcript], total: int, progress: ProgressFn | None
) -> int:
    gen = _new_generation(ws)
    recs: dict[str, dict[str, Any]] = {}
    n = 0
    try:
        ix = index.open_dir(str(gen))
        w = _writer(ix, limitmb=256)
        try:
            for done, t in enumerate(transcripts, 1):
                for doc in documents(t):
                    w.add_document(**doc)
                    n += 1
                recs[t.id] = {**recording_meta(t), "stamp": transcript_stamp(ws, t.id)}
                if progress:
                    progress(done, total)
            w.commit()
        except BaseException:
            # After a failed commit (disk full) Whoosh says "This writer is closed": the
            # original error is the one to report.
            with contextlib.suppress(Exception):
                w.cancel()
            raise
        _write_recordings(gen, recs)
    except BaseException:
        shutil.rmtree(gen, ignore_errors=True)
        raise
    _swap_in(ws, gen)
    return n


def _iter_transcripts(
    ws: Workspace,
    ids: list[str],
    extra: dict[str, Transcript],
    skipped: list[tuple[str, str]] | None = None,
) -> Iterator[Transcript]:
    for rid in ids:
        if rid in extra:
            continue
        try:
            yield load_path(ws.transcript_path(rid))
        except ConfindexError as exc:
            # A damaged transcript must not block the archive, nor vanish silently: the caller
            # lists it (`index --rebuild` exits non-zero).
            if skipped is not None:
                skipped.append((rid, exc.message))
    yield from extra.values()


def optimize(ws: Workspace) -> None:
    """Merge all segments into one (slow on a big index: minutes; never done implicitly)."""
    with ws.lock("index"):
        ix = open_index(ws)
        if ix is None:
            return
        with damage_named():
            ix.optimize()


def doc_count(ws: Workspace) -> int:
    ix = open_index(ws)
    with damage_named():
        return 0 if ix is None else ix.doc_count()


def indexed_ids(ws: Workspace) -> set[str]:
    return set(load_recordings(ws))


def missing(ws: Workspace) -> list[str]:
    """Transcript ids not (yet) in the index."""
    have = indexed_ids(ws)
    return [i for i in ws.transcript_ids() if i not in have]


def size_bytes(ws: Workspace) -> int:
    s = state(ws)
    if s.generation is None:
        return 0
    return sum(p.stat().st_size for p in s.generation.rglob("*") if p.is_file())


def transcript_stamp(ws: Workspace, recording_id: str) -> str | None:
    """Size and mtime of the transcript file, so that `sync` notices a hand-edited one."""
    try:
        st = ws.transcript_path(recording_id).stat()
    except OSError:
        return None
    return f"{st.st_size}:{st.st_mtime_ns}"


@dataclass(frozen=True)
class SyncResult:
    added: list[str]
    changed: list[str]
    removed: list[str]
    turns: int

    @property
    def up_to_date(self) -> bool:
        return not (self.added or self.changed or self.removed)


def sync(
    ws: Workspace, *, log: LogFn | None = None, skipped: list[tuple[str, str]] | None = None
) -> SyncResult:
    """Make the index match transcripts/: index new and changed transcripts (size or mtime
    differ from when they were indexed) and drop recordings whose transcript is gone.

    Transcripts that cannot be read are left out and listed in `skipped` as (id, why).
    """
    if not exists(ws):
        if needs_rebuild(ws) and log:
            log(stale_message(ws))
        ids = ws.transcript_ids()
        return SyncResult(ids, [], [], rebuild(ws, skipped=skipped) if ids else 0)
    check_readable(ws)  # a damaged index is never "up to date": it names the rebuild
    recs = load_recordings(ws)
    present = ws.transcript_ids()
    added = [i for i in present if i not in recs]
    changed = [i for i in present if i in recs and recs[i].get("stamp") != transcript_stamp(ws, i)]
    removed = sorted(set(recs) - set(present))
    if removed:
        remove(ws, removed)
    todo = added + changed
    n = add(ws, _iter_transcripts(ws, todo, {}, skipped), log=log) if todo else 0
    return SyncResult(added, changed, removed, n)


def add_missing(
    ws: Workspace, *, log: LogFn | None = None, skipped: list[tuple[str, str]] | None = None
) -> int:
    """Index transcripts not yet in the index (a stale index is rebuilt); returns turns added.

    Transcripts that cannot be read are left out and listed in `skipped` as (id, why).
    """
    if not exists(ws):
        if needs_rebuild(ws) and log:
            log(stale_message(ws))
        return rebuild(ws, skipped=skipped)
    todo = missing(ws)
    return add(ws, _iter_transcripts(ws, todo, {}, skipped), log=log) if todo else 0


def iter_all_ids(ws: Workspace, ids: list[str]) -> Iterator[Transcript]:
    for rid in ids:
        yield load_path(ws.transcript_path(rid))


def ensure(ws: Workspace, *, log: LogFn | None = None) -> bool:
    """Make sure a current index exists when transcripts do; True if it had to (re)build."""
    if exists(ws):
        return False
    if not ws.transcript_ids():
        return False
    make_dir(ws.index_dir)  # a file in its place: say so before announcing a build
    if log:
        log(stale_message(ws) if needs_rebuild(ws) else "building the search index")
    skipped: list[tuple[str, str]] = []
    rebuild(ws, skipped=skipped)
    _warn_skipped(skipped)
    return True


def _warn_skipped(skipped: list[tuple[str, str]]) -> None:
    """A recording left out of an implicit (re)build must not vanish from search silently."""
    import logging

    log = logging.getLogger("confindex")
    for rid, why in skipped:
        log.warning("not indexed: %s: %s (fix or remove it, then: confindex index)", rid, why)
