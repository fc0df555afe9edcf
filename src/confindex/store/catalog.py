"""The recordings of a workspace: list them (with filters) and remove them everywhere.

Listing reads the index's per-recording metadata (no transcript I/O for indexed recordings) and
loads only transcripts the index does not know yet, so `confindex list` stays fast on a big
archive. Removal deletes the transcript, its earlier versions (`transcripts/.history/ID/`),
its exports (every format written beside it), its index documents, its ledger rows and, when
asked, its media — transcripts are the source of truth, so they go last.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confindex.errors import ConfindexError, InputError
from confindex.store.store import Removed, Store
from confindex.store.workspace import Workspace

__all__ = ["Entry", "Filters", "Removed", "entries", "remove", "resolve_ids"]


@dataclass
class Entry:
    """One recording as `confindex list` shows it."""

    id: str
    title: str
    date: str | None
    duration: float
    speakers: list[str]
    languages: list[str]
    channel: str | None = None
    source: str | None = None
    indexed: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Filters:
    """`list` filters; all given ones must match (case- and accent-insensitive substrings)."""

    title: str | None = None
    speaker: str | None = None
    channel: str | None = None
    lang: str | None = None
    since: str | None = None  # ISO date prefix, inclusive
    until: str | None = None

    def match(self, e: Entry) -> bool:
        from confindex.search.analysis import fold

        def has(needle: str | None, *hay: str | None) -> bool:
            return needle is None or any(fold(needle) in fold(h or "") for h in hay)

        if not has(self.title, e.title, e.id) or not has(self.channel, e.channel):
            return False
        if not has(self.speaker, *e.speakers):
            return False
        if self.lang and not any(x.split("-")[0] == self.lang.lower() for x in e.languages):
            return False
        if self.since and (e.date or "") < self.since:
            return False
        return not (self.until and (not e.date or e.date[: len(self.until)] > self.until))


def _entry(meta: dict[str, Any], indexed: bool) -> Entry:
    speakers = meta.get("speakers") or {}
    langs = meta.get("languages") or ([meta["language"]] if meta.get("language") else [])
    return Entry(
        id=meta["id"],
        title=meta.get("title") or "",
        date=meta.get("upload_date"),
        duration=float(meta.get("duration") or 0.0),
        speakers=[speakers[k] or k for k in sorted(speakers)],
        languages=list(langs),
        channel=meta.get("channel") or meta.get("uploader"),
        source=meta.get("webpage_url") or meta.get("source"),
        indexed=indexed,
    )


def entries(ws: Workspace, filters: Filters | None = None) -> list[Entry]:
    """Recordings with a transcript, newest first (undated ones last, then by id)."""
    from confindex.search import index
    from confindex.search.documents import recording_meta
    from confindex.store.transcript import load

    known = index.load_recordings(ws)
    out = []
    for rid in ws.transcript_ids():
        if rid in known:
            out.append(_entry(known[rid], True))
            continue
        try:
            out.append(_entry(recording_meta(load(ws, rid)), False))
        except ConfindexError:
            continue  # a damaged transcript: `index` reports it
    if filters:
        out = [e for e in out if filters.match(e)]
    out.sort(key=lambda e: e.id)
    out.sort(key=lambda e: e.date or "", reverse=True)
    return out


def resolve_ids(ws: Workspace, refs: Iterable[str]) -> list[str]:
    """Recording ids for ids, unique id prefixes or sources; every ref checked before any
    deletion (a typo must not remove half of a list)."""
    from confindex.store.transcript import resolve_recording

    ids: list[str] = []
    for ref in refs:
        if not ref.strip():
            raise InputError("an empty recording id")
        rid = resolve_recording(ws, ref).id
        if rid not in ids:
            ids.append(rid)
    return ids


def remove(ws: Workspace, recording_ids: list[str], *, media: bool = False) -> list[Removed]:
    """Remove recordings everywhere (see `Store.remove`)."""
    return Store(ws).remove(recording_ids, media=media)
