"""The library page (`/`): every recording with its facts, sorted, filtered and paged.

Pure functions over the index's per-recording metadata (`index.recording_meta`, kept in the
index's recordings.json), so a page of a 10,000-recording archive reads no transcript: the
rows are built once per index version and a page is a filter, a sort and a slice over them
(bench/library.py measures it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

PAGE_SIZE = 50
SORTS = ("date", "title", "duration", "flags", "verified", "speakers")
MAX_CHOICES = 200  # channels/languages offered in a filter's list


@dataclass
class Row:
    """One recording as the library shows it."""

    id: str
    title: str
    date: str | None
    duration: float
    speakers: list[str]
    languages: list[str]
    channel: str | None
    flags: dict[str, int] | None = None  # kind -> count (None: not known yet)
    verified: float | None = None  # share of verified words (None: not known yet)
    indexed: bool = True
    _folded: str = field(default="", repr=False)  # title and id, folded, for the title filter
    _spk: str = field(default="", repr=False)  # speakers, folded, one a line (speaker filter)
    _langs: frozenset[str] = field(default=frozenset(), repr=False)  # base codes (fr, not fr-CA)

    @property
    def flag_count(self) -> int:
        return sum((self.flags or {}).values())

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        d["flag_count"] = self.flag_count
        return d


def row_of(meta: dict[str, Any], indexed: bool = True) -> Row:
    from confindex.search.analysis import fold

    speakers = meta.get("speakers") or {}
    langs = meta.get("languages") or ([meta["language"]] if meta.get("language") else [])
    flags = meta.get("flags")
    verified = meta.get("verified")
    title = meta.get("title") or meta.get("id") or ""
    return Row(
        id=meta["id"],
        title=title,
        date=meta.get("upload_date") or None,
        duration=float(meta.get("duration") or 0.0),
        speakers=sorted({speakers[k] or k for k in speakers}),
        languages=list(langs),
        channel=meta.get("channel") or meta.get("uploader") or None,
        flags=dict(flags) if isinstance(flags, dict) else None,
        verified=float(verified) if isinstance(verified, int | float) else None,
        indexed=indexed,
        _folded=fold(f"{title} {meta['id']}"),
        _spk="\n".join(fold(x) for x in {speakers[k] or k for k in speakers}),
        _langs=frozenset(x.split("-")[0].lower() for x in langs),
    )


@dataclass(frozen=True)
class View:
    """What the user asked of the library: filters, sort and page (all from the URL)."""

    title: str = ""
    channel: str = ""
    speaker: str = ""
    lang: str = ""
    since: str = ""  # ISO date prefix, inclusive (2024, 2024-05, 2024-05-01)
    until: str = ""
    flagged: bool = False
    sort: str = "date"
    desc: bool = True
    page: int = 1

    @classmethod
    def of(cls, params: Any) -> View:
        from confindex.errors import InputError

        def get(name: str) -> str:
            return (params.get(name) or "").strip()

        sort = get("sort") or "date"
        if sort not in SORTS:
            raise InputError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
        order = get("order")
        if order not in ("", "asc", "desc"):
            raise InputError(f"order must be asc or desc, not {order!r}")
        # Newest, longest, most flagged first by default; titles A to Z.
        desc = order == "desc" if order else sort != "title"
        raw_page = get("page") or "1"
        if not raw_page.isdigit() or not 1 <= int(raw_page) <= 10**6:
            raise InputError(f"page must be a whole number from 1, not {raw_page!r}")
        return cls(
            title=get("title"),
            channel=get("channel"),
            speaker=get("speaker"),
            lang=get("lang").lower(),
            since=get("from"),
            until=get("to"),
            flagged=get("flagged") in ("1", "on", "yes", "true"),
            sort=sort,
            desc=desc,
            page=int(raw_page),
        )

    @property
    def filtered(self) -> bool:
        return (
            bool(
                self.title or self.channel or self.speaker or self.lang or self.since or self.until
            )
            or self.flagged
        )

    def params(self, **changes: Any) -> dict[str, str]:
        """This view's URL parameters (defaults left out), with `changes` applied."""
        default_desc = self.sort != "title"
        d: dict[str, Any] = {
            "title": self.title,
            "channel": self.channel,
            "speaker": self.speaker,
            "lang": self.lang,
            "from": self.since,
            "to": self.until,
            "flagged": "1" if self.flagged else "",
            "sort": "" if self.sort == "date" else self.sort,
            "order": "" if self.desc == default_desc else ("desc" if self.desc else "asc"),
            "page": "" if self.page == 1 else str(self.page),
        }
        d.update({k: v for k, v in changes.items()})
        return {k: str(v) for k, v in d.items() if v not in ("", None)}

    def url(self, **changes: Any) -> str:
        p = self.params(**changes)
        return "/?" + urlencode(p) if p else "/"

    def clear_url(self) -> str:
        """This view's sort, without any filter."""
        return View(sort=self.sort, desc=self.desc).url()

    def sort_url(self, key: str) -> str:
        """The link of a column heading: sort by it, or flip the order when already sorted."""
        if key == self.sort:
            return self.url(order="asc" if self.desc else "desc", page="")
        return self.url(sort="" if key == "date" else key, order="", page="")

    def match(self, r: Row) -> bool:
        return self.predicate()(r)

    def predicate(self):
        """A test of one row, its needles folded once (10,000 rows are tested per page)."""
        from confindex.search.analysis import fold

        title, speaker = fold(self.title), fold(self.speaker)
        channel, lang, since, until = self.channel, self.lang, self.since, self.until
        flagged = self.flagged

        def ok(r: Row) -> bool:
            if title and title not in r._folded:
                return False
            if channel and (r.channel or "") != channel:
                return False
            if speaker and speaker not in r._spk:
                return False
            if lang and lang not in r._langs:
                return False
            if since and (r.date or "") < since:
                return False
            if until and (not r.date or r.date[: len(until)] > until):
                return False
            return not ((flagged and not r.flags) or (flagged and not r.flag_count))

        return ok


def _key(sort: str):
    if sort == "title":
        return lambda r: (r.title.casefold(), r.id)
    if sort == "duration":
        return lambda r: (r.duration, r.id)
    if sort == "flags":
        return lambda r: (r.flag_count, r.id)
    if sort == "verified":
        return lambda r: (r.verified or 0.0, r.id)
    if sort == "speakers":
        return lambda r: (len(r.speakers), r.id)
    return lambda r: (r.date or "", r.id)


@dataclass
class Page:
    rows: list[Row]
    total: int  # recordings matching the filters
    archive: int  # recordings in the archive
    page: int
    pages: int
    first: int  # 1-based number of the first row shown (0 when none)


class Catalog:
    """Every row, with each sort order made once (a page is then a filter and a slice: 10,000
    recordings sorted per request took ~20 ms of CPU, bench/library.py)."""

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows
        self._orders: dict[tuple[str, bool], list[Row]] = {}
        self._choices: dict[str, list[tuple[str, int]]] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def ordered(self, sort: str, desc: bool) -> list[Row]:
        got = self._orders.get((sort, desc))
        if got is None:
            got = self._orders[(sort, desc)] = sorted(self.rows, key=_key(sort), reverse=desc)
        return got

    def choices(self) -> dict[str, list[tuple[str, int]]]:
        if self._choices is None:
            self._choices = choices(self.rows)
        return self._choices


def select(rows: list[Row] | Catalog, view: View, page_size: int = PAGE_SIZE) -> Page:
    """The rows the view asks for: filtered, sorted (ties by id), one page of them."""
    cat = rows if isinstance(rows, Catalog) else Catalog(rows)
    ordered = cat.ordered(view.sort, view.desc)
    ok = view.predicate()
    chosen = [r for r in ordered if ok(r)] if view.filtered else ordered
    pages = max(1, -(-len(chosen) // page_size))
    page = min(view.page, pages)
    lo = (page - 1) * page_size
    shown = chosen[lo : lo + page_size]
    return Page(shown, len(chosen), len(cat), page, pages, lo + 1 if shown else 0)


def choices(rows: list[Row]) -> dict[str, list[tuple[str, int]]]:
    """The values a filter list offers (most recordings first): channels and languages."""
    channels: Counter[str] = Counter(r.channel for r in rows if r.channel)
    langs: Counter[str] = Counter(x.split("-")[0].lower() for r in rows for x in set(r.languages))
    return {
        "channel": sorted(channels.most_common(MAX_CHOICES), key=lambda x: x[0].casefold()),
        "lang": sorted(langs.most_common(MAX_CHOICES)),
    }


def plural(n: int, word: str, many: str | None = None) -> str:
    """`1 recording`, `2 recordings` (never `1 recordings`)."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"
