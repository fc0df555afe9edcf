"""Which file `/media/ID` may serve: only the media a transcript names, never a request path."""

from __future__ import annotations

import mimetypes
import os
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


# How audio and video containers begin (offset, bytes): a file a transcript names is served only
# when its first bytes say it is media, whatever its name (a transcript naming /etc/passwd, or
# notes.mp3 holding text, is refused). Covers what yt-dlp and ffmpeg write and what archivists
# bring: WAV/AVI/WebP-free RIFF, AIFF, FLAC, Ogg, MP3 (ID3 or a frame sync), ISO BMFF (mp4, m4a,
# mov, 3gp), Matroska/WebM, ASF (wma/wmv), MPEG-PS/TS, AMR, AAC (ADTS), CAF.
_MAGIC: tuple[tuple[int, bytes], ...] = (
    (0, b"RIFF"),
    (0, b"RF64"),
    (0, b"FORM"),
    (0, b"fLaC"),
    (0, b"OggS"),
    (0, b"ID3"),
    (4, b"ftyp"),
    (0, b"\x1a\x45\xdf\xa3"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"),
    (0, b"\x00\x00\x01\xba"),
    (0, b"#!AMR"),
    (0, b"caff"),
)


def looks_like_media(head: bytes) -> bool:
    """Whether a file's first bytes are those of an audio or video container."""
    if any(head[at : at + len(m)] == m for at, m in _MAGIC):
        return head[:4] != b"RIFF" or head[8:12] in (b"WAVE", b"AVI ")
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # MPEG audio / ADTS sync
        return True
    return len(head) >= 189 and head[0] == 0x47 and head[188] == 0x47  # MPEG-TS packets


def _allowed(p: Path, root: Path, rec: Recording) -> bool:
    """Inside the workspace, or the very file the recording was fetched from."""
    try:
        real = p.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return False
    if real.is_relative_to(root.resolve()):
        return True
    source = rec.source_path()
    try:
        return source is not None and real == source.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return False


def _is_media_file(p: Path) -> bool:
    """A regular file (opened without blocking, so a FIFO never hangs the server) whose type by
    name is audio or video and whose first bytes are a media container's."""
    if not media_type(p).startswith(("audio/", "video/")):
        return False
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except (OSError, ValueError):
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        return looks_like_media(os.pread(fd, 512, 0))
    except OSError:
        return False
    finally:
        os.close(fd)


def find_media(root: Path, rec: Recording) -> Media | None:
    """The first candidate that is an audio or video file (by name and by its first bytes;
    never a FIFO, device or folder) inside the workspace or the recorded source path, or None:
    workspaces are shared, and a transcript naming /etc/passwd as its media must not serve it."""
    for p in rec.media_candidates(root):
        if _allowed(p, root, rec) and _is_media_file(p):
            return Media(p, media_type(p))
    return None


def youtube_id(rec: Recording) -> str | None:
    return rec.extractor_id if is_youtube(rec) and rec.extractor_id else None
