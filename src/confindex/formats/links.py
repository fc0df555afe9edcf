"""Links that open a recording's source at a given second (pure functions)."""

from __future__ import annotations

import math
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from confindex.store.transcript import Recording
from confindex.timefmt import hms


def seconds(at: float) -> int:
    """Whole seconds a player should seek to: the floor of the first matched word's start."""
    return max(0, math.floor(at))


_AUDIO = frozenset(
    [
        ".mp3",
        ".m4a",
        ".aac",
        ".flac",
        ".wav",
        ".ogg",
        ".oga",
        ".opus",
        ".wma",
        ".aif",
        ".aiff",
        ".amr",
        ".mka",
        ".weba",
    ]
)


def media_kind(rec: Recording) -> str:
    """ "video" or "audio": what a citation calls the recording ("[Video]" / "[Audio]").

    YouTube and video pages are video; a file or URL with an audio extension is audio.
    """
    if is_youtube(rec):
        return "video"
    for name in (rec.source, rec.webpage_url or "", rec.media_path or ""):
        path = urlsplit(name).path if "://" in name else name
        if Path(unquote(path)).suffix.lower() in _AUDIO:
            return "audio"
    return "video"


def is_youtube(rec: Recording) -> bool:
    return rec.kind == "youtube" or (rec.extractor or "").lower().startswith("youtube")


def link(rec: Recording, at: float) -> str:
    """`https://youtu.be/ID?t=754`, `<page>#t=754`, or `file:///abs/path#t=754`."""
    s = seconds(at)
    if is_youtube(rec) and rec.extractor_id:
        return f"https://youtu.be/{rec.extractor_id}?t={s}"
    if (rec.kind == "file" or not _is_url(rec.source)) and not _public(rec):
        return f"{_local_path(rec.source).as_uri()}#t={s}"
    url = rec.webpage_url or rec.source
    parts = urlsplit(url)
    # A media fragment replaces any existing fragment (#t= is what players understand).
    return urlunsplit(parts._replace(fragment=f"t={s}"))


def is_media_file(rec: Recording) -> bool:
    """Whether `link` opens the media file itself (a local file, a URL to a .mp3/.mp4…),
    where a player understands a `#t=A,B` media fragment."""
    if (rec.kind == "file" or not _is_url(rec.source)) and not _public(rec):
        return True
    if is_youtube(rec):
        return False
    path = urlsplit(rec.webpage_url or rec.source).path
    return Path(unquote(path)).suffix.lower() in (*_AUDIO, *_VIDEO)


_VIDEO = frozenset([".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ogv", ".mpg", ".mpeg"])


def media_fragment(rec: Recording, start: float, end: float) -> str | None:
    """The span as a W3C media fragment on the media file (`…/talk.mp3#t=57.2,61.4`); None
    when the link is to a page (YouTube, a podcast page) that does not read one."""
    if not is_media_file(rec):
        return None
    base = link(rec, start).split("#", 1)[0]
    return f"{base}#t={start:.1f},{math.ceil(end * 10) / 10:.1f}"


def human(rec: Recording, at: float) -> str:
    """What a person reads: `/talks/panel.mp4 [00:12:34]` or `<link> [00:12:34]`."""
    if rec.kind == "file" or not _is_url(rec.source):
        return f"{_local_path(rec.source)} [{hms(at)}]"
    return f"{link(rec, at)} [{hms(at)}]"


def _public(rec: Recording) -> bool:
    """A local file with a public URL (`confindex meta --url`): links go to that URL."""
    return _is_url(rec.webpage_url or "")


def _is_url(s: str) -> bool:
    return "://" in s and not s.startswith("file://")


def _local_path(source: str) -> Path:
    if source.startswith("file://"):
        return Path(unquote(urlsplit(source).path))
    return Path(source).expanduser().resolve()
