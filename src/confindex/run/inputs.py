"""What the user handed `fetch` → an ordered, de-duplicated list of recordings to work on.

Arguments may be URLs (one recording, or a playlist/channel yt-dlp expands), local media files,
directories (searched recursively by extension) and batch files (`-a urls.txt`: one URL or path
per line, `#` comments). A bad input becomes an item that carries its error, so that it is
recorded as failed and the other inputs go on.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confindex.errors import DownloadError, InputError
from confindex.run.credentials import redact_url, short, strip_credentials
from confindex.run.fetch import (
    MEDIA_EXTENSIONS,
    check_file,
    check_url,
    clean_ytdlp_error,
    is_single_recording_url,
    is_url,
    local_path,
    url_recording_id,
)

log = logging.getLogger("confindex.run.inputs")


@dataclass
class WorkItem:
    """One recording to fetch; `key` identifies it in the ledger (URL or absolute path)."""

    key: str
    source: str
    kind: str  # url | file
    parent: str | None = None
    recording_id: str | None = None
    title: str | None = None
    error: str | None = None


@dataclass
class Filters:
    """Playlist/channel filters (yt-dlp's --match-title, --dateafter, --datebefore, -I :N)."""

    match_title: str | None = None
    date_after: str | None = None  # YYYYMMDD, inclusive
    date_before: str | None = None  # YYYYMMDD, inclusive
    max_recordings: int | None = None

    def __post_init__(self) -> None:
        self.date_after = normalize_date(self.date_after)
        self.date_before = normalize_date(self.date_before)
        if self.match_title:
            try:
                re.compile(self.match_title)
            except re.error as exc:
                raise InputError(f"--match-title {self.match_title!r}: {exc}") from None

    @property
    def dated(self) -> bool:
        return bool(self.date_after or self.date_before)

    def title_ok(self, title: str | None) -> bool:
        return not self.match_title or bool(re.search(self.match_title, title or "", re.IGNORECASE))

    def date_ok(self, yyyymmdd: str | None) -> bool:
        if not yyyymmdd:
            return True
        if self.date_after and yyyymmdd < self.date_after:
            return False
        return not (self.date_before and yyyymmdd > self.date_before)


def normalize_date(text: str | None) -> str | None:
    """YYYYMMDD from YYYYMMDD, YYYY-MM-DD or yt-dlp's relative dates (today-2weeks)."""
    if not text:
        return None
    s = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
        s = s.replace("-", "")
    if re.fullmatch(r"\d{8}", s):
        try:
            dt.datetime.strptime(s, "%Y%m%d")
        except ValueError:
            raise InputError(f"not a date: {text}") from None
        return s
    try:
        from yt_dlp.utils import date_from_str

        return date_from_str(s).strftime("%Y%m%d")
    except Exception:
        raise InputError(f"not a date: {text} (use YYYYMMDD or e.g. today-2weeks)") from None


def read_batch_file(path: str) -> list[str]:
    """Lines of a batch file ("-" = stdin): blank lines and `#`/`;` comments skipped.

    Relative paths are taken relative to the batch file's folder, so a list travels with its
    media.
    """
    import sys

    if path == "-":
        text, base = sys.stdin.read(), Path.cwd()
    else:
        p = Path(path).expanduser()
        try:
            check_file(p)  # a FIFO or /dev/zero would be read forever
            text = p.read_text(encoding="utf-8-sig")
        except InputError as exc:
            raise InputError(f"cannot read batch file: {exc.message}") from None
        except OSError as exc:
            raise InputError(f"cannot read batch file {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            msg = f"batch file {path} is not UTF-8 text (one URL or path per line)"
            raise InputError(msg) from None
        base = p.resolve().parent
    if "\x00" in text:
        raise InputError(f"batch file {path} is not text (one URL or path per line)")
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "]")):
            continue
        if not is_url(line) and not line.startswith("file://"):
            candidate = Path(line).expanduser()
            if not candidate.is_absolute():
                candidate = base / candidate
            line = str(candidate)
        out.append(line)
    return out


def scan_directory(folder: Path, exclude: Sequence[Path] = ()) -> list[Path]:
    """Media files under `folder` (recursive, by extension), hidden entries skipped, sorted."""
    excluded = [e.resolve() for e in exclude]
    found = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.suffix.lower() not in MEDIA_EXTENSIONS or not p.is_file():
            continue
        rp = p.resolve()
        if any(rp.is_relative_to(e) for e in excluded):
            continue  # the workspace's own media/ must not be fetched again
        found.append(rp)
    return found


def expand(
    args: Iterable[str],
    *,
    batch_files: Iterable[str] = (),
    filters: Filters | None = None,
    exclude: Sequence[Path] = (),
) -> list[WorkItem]:
    """All inputs → work items in the order given, each recording once."""
    filters = filters or Filters()
    items: list[WorkItem] = []
    for bf in batch_files:
        for line in read_batch_file(bf):
            items.extend(_expand_one(line, filters, exclude, parent=bf))
    for arg in args:
        items.extend(_expand_one(arg, filters, exclude, parent=None))
    return dedupe(items)


def dedupe(items: Iterable[WorkItem]) -> list[WorkItem]:
    """First occurrence wins, by key and by recording id (two spellings of one video)."""
    seen_keys: set[str] = set()
    seen_ids: set[str] = set()
    out = []
    for it in items:
        if it.key in seen_keys or (it.recording_id and it.recording_id in seen_ids):
            continue
        seen_keys.add(it.key)
        if it.recording_id:
            seen_ids.add(it.recording_id)
        out.append(it)
    return out


def _expand_one(
    arg: str, filters: Filters, exclude: Sequence[Path], parent: str | None
) -> list[WorkItem]:
    if not arg.strip():
        # An unset variable ($URL) must not become "the current folder", fetched recursively.
        raise InputError("an empty argument is neither a file nor a URL", exit_code=2)
    if is_url(arg):
        # user:password@ never goes further than here (the download gets it by host).
        arg = strip_credentials(arg)
        try:
            check_url(arg)
        except InputError as exc:
            return [WorkItem(arg, arg, "url", parent, error=exc.message)]
        if is_single_recording_url(arg):
            return [url_item(arg, parent)]
        try:
            return expand_playlist(arg, filters)
        except DownloadError as exc:
            return [WorkItem(arg, arg, "url", parent, error=exc.message)]
    path = local_path(arg)
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        # A name that is not UTF-8 cannot be stored in the ledger or a transcript (it raised
        # UnicodeEncodeError at the ledger insert, exit 70).
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")
        return [WorkItem(shown, shown, "file", parent, error=f"{shown}: the file name is not "
                         "UTF-8; rename the file")]  # fmt: skip
    try:
        st = check_file(path, dirs=True)
    except InputError as exc:
        return [WorkItem(str(path), str(path), "file", parent, error=exc.message)]
    if stat.S_ISDIR(st.st_mode):
        return [file_item(p, parent=str(path)) for p in scan_directory(path, exclude)]
    return [file_item(path, parent)]


def url_item(url: str, parent: str | None = None, title: str | None = None) -> WorkItem:
    return WorkItem(url, url, "url", parent, url_recording_id(url), title)


def file_item(path: Path, parent: str | None = None) -> WorkItem:
    # The id of a file is its content hash, computed when the file is "downloaded" (hashed).
    return WorkItem(str(path), str(path), "file", parent, None, path.stem)


def expand_playlist(url: str, filters: Filters) -> list[WorkItem]:
    """A playlist or channel → its entries (flat listing: one request, not one per video)."""
    import yt_dlp

    from confindex.run.credentials import _with_credentials
    from confindex.run.fetch import _ydl_options

    opts = _ydl_options(extract_flat="in_playlist")
    listing_url = _with_credentials(url, {})
    unfiltered = not filters.match_title and not filters.dated
    if filters.max_recordings and unfiltered:
        opts["playlistend"] = filters.max_recordings
    try:
        with yt_dlp.YoutubeDL(opts) as ydl:
            info = ydl.extract_info(listing_url, download=False)
            if not info or info.get("_type") not in ("playlist", "multi_video"):
                return [url_item(url)]
            out: list[WorkItem] = []
            for entry in _flatten(info.get("entries") or []):
                u = entry_url(entry)
                u = strip_credentials(u) if u else u
                if not u:
                    continue
                title = entry.get("title")
                # Generic pages title their media "page (1)": the file name counts as a title.
                if not (filters.title_ok(title) or filters.title_ok(Path(u).stem)):
                    continue
                if filters.dated:
                    date = entry_date(entry)
                    if date is None:
                        # The flat listing has no date: ask for this entry's metadata (what
                        # yt-dlp's own --dateafter does), else we would fetch out-of-range talks.
                        date = _entry_date_full(ydl, u)
                    if not filters.date_ok(date):
                        continue
                out.append(url_item(u, url, title))
                if filters.max_recordings and len(out) >= filters.max_recordings:
                    break
            return out
    except yt_dlp.utils.DownloadError as exc:
        raise DownloadError(redact_url(f"{short(url)}: {clean_ytdlp_error(exc)}")) from None


def entry_url(entry: dict[str, Any]) -> str | None:
    """The URL of one playlist entry: its own URL (a watch page, a media file) when it has
    one, else its page (entries of a generic page all share the page's webpage_url).
    """
    u = entry.get("url")
    if isinstance(u, str) and is_url(u):
        return u
    return entry.get("webpage_url") or None


def _flatten(entries: Iterable[Any]) -> Iterable[dict[str, Any]]:
    """Entries of nested playlists (a channel's tabs) as one list."""
    for e in entries:
        if not e:
            continue
        if e.get("_type") == "playlist" and e.get("entries") is not None:
            yield from _flatten(e["entries"])
        else:
            yield e


def entry_date(entry: dict[str, Any]) -> str | None:
    """YYYYMMDD of a (flat) entry, when yt-dlp gave one."""
    for k in ("upload_date", "release_date"):
        v = entry.get(k)
        if v and re.fullmatch(r"\d{8}", str(v)):
            return str(v)
    for k in ("timestamp", "release_timestamp"):
        v = entry.get(k)
        if isinstance(v, (int, float)):
            return dt.datetime.fromtimestamp(v, dt.timezone.utc).strftime("%Y%m%d")
    return None


def _entry_date_full(ydl: Any, url: str) -> str | None:
    try:
        info = ydl.extract_info(url, download=False, process=False)
    except Exception:
        log.debug("no date for %s", url, exc_info=True)
        return None  # unknown date: keep it rather than silently drop a talk
    return entry_date(info or {})
