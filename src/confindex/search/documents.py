"""What one turn becomes in the index: the Whoosh schema and the documents of a transcript.

A field added or analysed differently here needs `index.SCHEMA_VERSION` bumped: older indexes
are then rebuilt from transcripts.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from whoosh import columns, fields, reading
from whoosh.analysis import SpaceSeparatedTokenizer

from confindex.search.analysis import (
    analyse,
    analyzer,
    fold,
    pairs_text,
    stem_lang,
    stem_text,
    title_analyzer,
)
from confindex.search.topics import turn_chapter
from confindex.store.transcript import Transcript

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
        # `verified:yes`: the turn holds words a user corrected (`confindex edit`, issue 27).
        verified=fields.KEYWORD(scorable=False),
        # The chapter the turn starts in (issue 32): `chapter:` matches its title and keywords;
        # hits show its title and start.
        chapter=fields.TEXT(analyzer=title_analyzer()),
        chapter_title=fields.STORED(),
        chapter_start=fields.STORED(),
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
    chapters = list(t.chapters)
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
        if any(w.verified for w in turn.words):
            doc["verified"] = "yes"
        ch = turn_chapter(chapters, turn)
        if ch is not None:
            doc["chapter"] = " ".join([ch.title, *ch.keywords])
            doc["chapter_title"] = ch.title
            doc["chapter_start"] = float(ch.start)
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
        # Speakers named by the voice library, not (yet) by a user: hits say "(automatic)".
        "automatic": sorted(t.auto_names),
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
