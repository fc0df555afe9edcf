"""Which file `/media/ID` may serve: only the media a transcript names, never a request path."""

from __future__ import annotations

import mimetypes
import stat
from dataclasses import dataclass
from pathlib import Path

from confindex.formats.links import is_youtube
from confindex.store.transcript import Recording

# Types the standard table lacks on some systems; the browser needs the right one to play.
_TYPES = {
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".webm": "video/webm",
    ".weba": "audio/webm",
    ".m4a": "audio/mp4",
    ".mp4": "video/mp4",
    ".mkv": "video/x-matroska",
    ".flac": "audio/flac",
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
}


@dataclass(frozen=True)
class Media:
    path: Path
    media_type: str

    @property
    def is_video(self) -> bool:
        return self.media_type.startswith("video/")


def media_type(path: Path) -> str:
    return (
        _TYPES.get(path.suffix.lower())
        or mimetypes.guess_type(path.name)[0]
        or ("application/octet-stream")
    )


def candidates(root: Path, rec: Recording) -> list[Path]:
    """Where the recording's media may be: the downloaded copy (`media_path`, relative to the
    workspace when inside it), else the local file it was fetched from."""
    out = []
    if rec.media_path:
        p = Path(rec.media_path).expanduser()
        out.append(p if p.is_absolute() else root / p)
    if rec.kind == "file" or (rec.source and "://" not in rec.source):
        out.append(Path(rec.source).expanduser())
    elif rec.source.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        out.append(Path(unquote(urlsplit(rec.source).path)))
    return out


def find_media(root: Path, rec: Recording) -> Media | None:
    """The first candidate that is a regular file (no FIFO, device or folder), or None."""
    for p in candidates(root, rec):
        try:
            st = p.stat()
        except (OSError, ValueError):
            continue
        if stat.S_ISREG(st.st_mode):
            return Media(p, media_type(p))
    return None


def youtube_id(rec: Recording) -> str | None:
    return rec.extractor_id if is_youtube(rec) and rec.extractor_id else None
