"""Inputs → local media + metadata: URLs through yt-dlp's Python API, or local media files.

Every recording gets a stable id that cannot collide, known *before* any download where possible
so that a rerun skips finished recordings without touching the network:

- a site yt-dlp knows (YouTube, Vimeo, …): `<extractor>-<site id>`, e.g. `youtube-u2SCITorY2A`;
- any other URL (plain media files, the generic extractor): `<name slug>-<sha1(URL)[:10]>`,
  because yt-dlp's generic ids are the URL basename and collide (`/a/talk.mp4`, `/b/talk.mp4`);
- a local file: `<name slug>-<sha256(content)[:10]>`, so a moved or renamed file is the same
  recording.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse, urlsplit

from confindex.errors import DownloadError, InputError
from confindex.log import suppressed
from confindex.run.credentials import (
    CREDENTIALS_KEY,
    _with_credentials,
    redact_url,
    short,
    strip_credentials,
)
from confindex.run.stall import RateWatch
from confindex.safeio import env_float
from confindex.store.transcript import Recording
from confindex.store.workspace import Workspace, check_file, sha256_file, slugify

DownloadProgress = Callable[[int, int | None], None]  # (bytes done, bytes total or None)

MEDIA_EXTENSIONS = frozenset(
    (
        *(".mp3", ".mp4", ".m4a", ".m4v", ".webm", ".mkv", ".mov", ".ogg", ".oga", ".opus"),
        *(".wav", ".flac", ".aac", ".wma", ".avi", ".mpg", ".mpeg", ".ts", ".3gp", ".amr"),
    )
)
_URL_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_url(arg: str) -> bool:
    return bool(_URL_SCHEME.match(arg)) and not arg.startswith("file://")


def local_path(arg: str) -> Path:
    if arg.startswith("file://"):
        arg = unquote(urlparse(arg).path)
    p = Path(arg).expanduser()
    try:
        return p.resolve()
    except (OSError, RuntimeError):  # a symlink loop, a name too long: check_file names it
        return p.absolute()


# yt-dlp's own handlers (urllib, requests) speak these; anything else is refused up front
# rather than failing inside yt-dlp with a traceback (gopher://, sftp://, ws://).
URL_SCHEMES = ("http", "https", "ftp")
MAX_URL = 8192  # longer is no URL a site serves (browsers and servers stop near 8 KB)


def check_url(url: str) -> None:
    """Raise InputError unless `url` is a well-formed http(s)/ftp URL with a host."""
    if len(url) > MAX_URL:
        # A 100-KB URL made a 100-KB error line with its reason cut off.
        raise InputError(
            f"URL too long ({len(url):,} characters; at most {MAX_URL:,}): {url[:80]}…"
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises on a bad port
    except ValueError as exc:
        raise InputError(f"not a valid URL ({exc}): {short(url)}") from None
    scheme = parts.scheme.lower()
    if scheme not in URL_SCHEMES:
        raise InputError(f"unsupported URL scheme {scheme}:// (use http or https): {short(url)}")
    if not host:
        raise InputError(f"not a valid URL (no host): {short(url)}")
    if re.search(r"[\x00-\x20\x7f]", url):
        raise InputError(f"not a valid URL (blank or control character in it): {short(url)}")
    try:
        # What the HTTP client will do with the host: U+202E in it raised an idna codec error.
        host.encode("idna")
    except UnicodeError:
        raise InputError(
            f"not a valid URL (a host name cannot hold {host!a}): {short(url)!a}"
        ) from None


@dataclass
class Media:
    """A recording's metadata and the local media file to transcribe."""

    recording: Recording
    path: Path
    # Steps already measured for it (stagetime.StageTimes.to_dict(): its download, hashing).
    timings: dict[str, Any] | None = None


@cache
def _extractors() -> list[Any]:
    from yt_dlp.extractor import gen_extractor_classes

    return [ie for ie in gen_extractor_classes() if ie.ie_key() != "Generic"]


def site_id(url: str) -> tuple[str, str] | None:
    """(extractor key, site id) when a specific yt-dlp extractor claims the URL, offline."""
    for ie in _extractors():
        if ie.suitable(url):
            with suppressed(log, f"reading a temporary id of {url} ({ie.ie_key()})"):
                temp_id = ie.get_temp_id(url)
                if temp_id:
                    return ie.ie_key(), str(temp_id)
            return ie.ie_key(), ""
    return None


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")[:64] or "x"


def url_recording_id(url: str) -> str:
    """The recording id of a URL, computed without any network access."""
    known = site_id(url)
    if known and known[1]:
        key, vid = known
        return f"{key.lower()}-{_safe_id(vid)}"
    name = Path(unquote(urlparse(url).path)).stem or urlparse(url).hostname or "url"
    return f"{slugify(name, 40)}-{hashlib.sha1(url.encode()).hexdigest()[:10]}"


def is_single_recording_url(url: str) -> bool:
    """True when the URL surely names one recording (no playlist expansion needed)."""
    known = site_id(url)
    if known:
        key, vid = known
        return bool(vid) and not key.lower().endswith(("tab", "playlist", "channel", "user"))
    return Path(urlparse(url).path).suffix.lower() in MEDIA_EXTENSIONS


# Seconds without a byte before a download attempt is given up (yt-dlp's socket_timeout).
SOCKET_TIMEOUT_ENV = "CONFINDEX_SOCKET_TIMEOUT"


def _ydl_options(**extra: Any) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,  # quiet=True alone still prints a progress bar
        "logger": _SilentLogger(),
        "socket_timeout": env_float(SOCKET_TIMEOUT_ENV, 30),
        # One quick retry of a dropped connection inside yt-dlp (it resumes the .part file);
        # longer waits are the bulk runner's back-off, announced. yt-dlp's default of 10, each
        # after a 30 s read timeout, made a stalled server mean minutes of silence.
        "retries": 1,
        "fragment_retries": 5,
        "ffmpeg_location": ffmpeg_exe(),
    }
    deno = deno_exe()
    if deno:  # the venv's bin/ is not on PATH when confindex runs as .venv/bin/confindex
        opts["js_runtimes"] = {"deno": {"path": deno}}
    opts.update(extra)
    return opts


log = logging.getLogger("confindex")
_YTDLP_RETRY = re.compile(r"Got error: (?P<err>.*?)\.? Retrying.*?\((?P<n>\d+)/(?P<of>\d+)\)")
_YTDLP_SLEEP = re.compile(r"Sleeping (?P<s>[\d.]+) seconds")


class _SilentLogger:
    """yt-dlp logs through this: every message goes to the `confindex.yt_dlp` logger at DEBUG
    (its warnings at INFO: `-v` shows them, `--log-file` keeps all); errors reach us as
    exceptions too, with a one-line message.

    Its own download retries are announced, each with its delay: a stalled server otherwise
    means minutes of silence.
    """

    def __init__(self, url: str = "download") -> None:
        self.url = url
        self._pending: str | None = None
        self._log = logging.getLogger("confindex.yt_dlp")

    def debug(self, msg: str) -> None:
        self._log.debug("%s", msg)
        self._retry(msg)

    def _retry(self, msg: str) -> None:
        m = _YTDLP_RETRY.search(msg)
        if m:
            self._flush()
            err = clean_ytdlp_error(Exception(m["err"]))
            self._pending = f"{self.url}: {err}; retry {m['n']} of {m['of']}"
            return
        m = _YTDLP_SLEEP.search(msg)
        if m and self._pending:
            log.warning("%s in %.0f s", self._pending, float(m["s"]))
            self._pending = None

    def _flush(self) -> None:
        if self._pending:
            log.warning("%s now", self._pending)
            self._pending = None

    def info(self, msg: str) -> None:
        self.debug(msg)

    def warning(self, msg: str) -> None:
        self._log.info("%s", msg)
        self._retry(msg)

    def error(self, msg: str) -> None:
        self._log.debug("%s", msg)


@cache
def politeness_options(
    *,
    sleep_interval: float | None = None,
    limit_rate: str | None = None,
    cookies: str | None = None,
    cookies_from_browser: str | None = None,
) -> dict[str, Any]:
    """yt-dlp options for `fetch --sleep-interval/--limit-rate/--cookies/
    --cookies-from-browser` (a rate such as 500K or 2M; a browser as NAME[:PROFILE])."""
    extra: dict[str, Any] = {}
    if sleep_interval:
        extra["sleep_interval"] = sleep_interval
    if limit_rate:
        from yt_dlp.utils import parse_bytes

        rate = parse_bytes(limit_rate)
        if not rate:
            raise InputError(f"--limit-rate: not a rate: {limit_rate!r} (e.g. 500K, 2M)")
        extra["ratelimit"] = rate
    if cookies:
        check_cookies_file(cookies)
        extra["cookiefile"] = cookies
    if cookies_from_browser:
        browser, _, profile = cookies_from_browser.partition(":")
        extra["cookiesfrombrowser"] = (browser.lower(), profile or None, None, None)
    # yt-dlp's own retries for HTTP errors inside a download, with exponential back-off.
    extra["retry_sleep_functions"] = {
        "http": lambda n: min(2.0**n, 60.0),
        "fragment": lambda n: min(2.0**n, 60.0),
    }
    return extra


def check_cookies_file(path: str) -> None:
    """A one-line InputError unless `path` is a regular text file of at most 16 MiB: a FIFO
    hung the fetch, and a binary file was blamed on the URL (yt-dlp's own error)."""
    from confindex.safeio import MiB, UnreadableFile, read_regular

    try:
        data = read_regular(Path(path).expanduser(), 16 * MiB, "cookies file")
    except FileNotFoundError:
        return  # yt-dlp starts an empty jar there and saves the site's cookies in it
    except UnreadableFile as exc:
        raise InputError(f"--cookies: {exc.message}") from None
    if b"\0" in data:
        raise InputError(
            f"--cookies: {path} is not a cookies file (binary; export one in Netscape format)"
        )


def deno_exe() -> str | None:
    """The Deno binary yt-dlp runs YouTube's player scripts with (PyPI `deno`, else PATH)."""
    with suppressed(log, "finding the deno binary of the `deno` package"):
        import deno

        return str(deno.find_deno_bin())
    return shutil.which("deno")


@cache
def ffmpeg_exe() -> str | None:
    """An ffmpeg binary: the one on PATH, else the static build shipped by imageio-ffmpeg."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    with suppressed(log, "finding imageio-ffmpeg's ffmpeg"):
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    return None


def clean_ytdlp_error(exc: BaseException) -> str:
    msg = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    msg = re.sub(r"^(ERROR:\s*)+", "", msg.strip())
    msg = re.sub(r"\s*\(caused by .*$", "", msg, flags=re.S)
    msg = re.sub(r";\s*please report this issue.*$", "", msg, flags=re.S | re.I)
    return " ".join(msg.split())[:200]


def download(
    ws: Workspace,
    url: str,
    *,
    progress: DownloadProgress | None = None,
    ydl_extra: dict[str, Any] | None = None,
) -> Media:
    """Download the best audio of `url` into `media/<id>.<ext>` and return it with its metadata.

    The download lands in a private temp folder first and is moved into media/ only when whole,
    so an interrupted download is never mistaken for a finished one (a rerun resumes the .part).
    """
    import yt_dlp

    url = strip_credentials(url)
    extra = dict(ydl_extra or {})
    fetch_url = _with_credentials(url, extra)
    extra.pop(CREDENTIALS_KEY, None)
    rid = url_recording_id(url)
    ws.ensure()
    existing = sorted(ws.media.glob(f"{glob_escape(rid)}.*"))
    staging = ws.tmp / f"dl-{rid}"
    staging.mkdir(parents=True, exist_ok=True)

    watch = RateWatch(url, extra.get("ratelimit"))

    def hook(d: dict[str, Any]) -> None:
        if progress and d.get("status") in ("downloading", "finished"):
            total = d.get("total_bytes") or d.get("total_bytes_estimate")
            progress(int(d.get("downloaded_bytes") or 0), int(total) if total else None)

    opts = _ydl_options(
        format="bestaudio/best",
        outtmpl={"default": str(staging / "media.%(ext)s")},
        noplaylist=True,
        continuedl=True,
        progress_hooks=[hook],
        logger=_SilentLogger(url),
        **extra,
    )
    try:
        with yt_dlp.YoutubeDL(opts) as ydl, watch.attached(ydl):
            if existing:  # downloaded by an earlier run: metadata only
                info = ydl.extract_info(fetch_url, download=False)
            else:
                info = ydl.extract_info(fetch_url, download=True)
    except yt_dlp.utils.YoutubeDLError as exc:  # DownloadError, and RequestErrors it lets out
        if watch.error is not None:  # yt-dlp's report of the read the watch cut short
            raise watch.error from None
        if any(getattr(e, "errno", None) == errno.ENOSPC for e in _causes(exc)):
            # Disk full: the partial file goes, so that the failure can be recorded (a
            # ledger that cannot grow would leave the recording "queued" for ever).
            shutil.rmtree(staging, ignore_errors=True)
            raise DownloadError(f"cannot download {short(url)}: disk full") from None
        _drop_if_empty(staging)
        raise download_error(f"cannot download {short(url)}", exc) from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            shutil.rmtree(staging, ignore_errors=True)
            raise DownloadError(f"cannot download {short(url)}: disk full") from None
        _drop_if_empty(staging)
        raise DownloadError(f"cannot download {short(url)}: {exc.strerror or exc}") from None
    if info is None:
        raise DownloadError(f"cannot download {short(url)}: yt-dlp returned nothing")
    if info.get("_type") in ("playlist", "multi_video"):
        raise InputError(f"{url} is a playlist; fetch expands playlists, download takes one item")

    if existing:
        final = existing[0]
    else:
        files = [
            Path(d["filepath"]) for d in info.get("requested_downloads") or [] if d.get("filepath")
        ]
        files = [f for f in files if f.exists()] or sorted(
            p for p in staging.iterdir() if p.is_file() and not p.name.endswith((".part", ".ytdl"))
        )
        if not files:
            raise DownloadError(f"cannot download {short(url)}: no media file was written")
        final = ws.media / f"{rid}{files[0].suffix or '.media'}"
        files[0].replace(final)
    shutil.rmtree(staging, ignore_errors=True)
    for key in ("url", "webpage_url", "original_url"):
        if isinstance(info.get(key), str):
            info[key] = strip_credentials(info[key])
    rec = recording_from_info(rid, url, info)
    rec.media_path = str(final.relative_to(ws.root))
    # Container tags (title, artist, date) count for downloads as for local files; for a site
    # with real metadata (YouTube…) they only fill what the site left empty.
    _add_container_tags(rec, final, prefer=(rec.extractor or "").lower() == "generic")
    return Media(rec, final)


def http_status(exc: BaseException) -> int | None:
    """The HTTP status behind a yt-dlp error (it wraps the HTTPError in exc_info/cause)."""
    for e in _causes(exc):
        status = getattr(e, "status", None)
        if isinstance(status, int) and 100 <= status <= 599:
            return status
        code = getattr(e, "code", None)  # urllib.error.HTTPError
        if isinstance(code, int) and 100 <= code <= 599:
            return code
    return None


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[Any] = [exc]
    while todo:
        e = todo.pop(0)
        if not isinstance(e, BaseException) or any(e is s for s in seen) or len(seen) > 20:
            continue
        seen.append(e)
        exc_info = getattr(e, "exc_info", None)
        if isinstance(exc_info, tuple) and len(exc_info) > 1:
            todo.append(exc_info[1])
        todo += [getattr(e, "cause", None), e.__cause__, e.__context__]
    return seen


def is_transient(exc: BaseException, status: int | None) -> bool:
    """Worth retrying after a pause: rate limits, overloaded servers, network trouble.

    Decided on the status code and the exception types, not on message text; a 404, a refused
    connection or a redirect loop is final, so a dead link costs one request.
    """
    if status is not None:
        return status == 429 or status >= 500
    import socket

    from yt_dlp.networking import exceptions as nx

    causes = _causes(exc)
    # Nobody listens, or the host does not exist: trying again in a minute will not help.
    if any(isinstance(e, (ConnectionRefusedError, socket.gaierror)) for e in causes):
        return False
    if any(isinstance(e, nx.HTTPError) for e in causes):
        return False  # an HTTP error without a status we could read: a redirect loop, say
    transient = (nx.TransportError, TimeoutError, ConnectionResetError, ConnectionAbortedError)
    return any(isinstance(e, transient) for e in causes)


def download_error(prefix: str, exc: BaseException) -> DownloadError:
    status = http_status(exc)
    msg = redact_url(clean_ytdlp_error(exc))
    where = _refused_redirect(exc)
    if where is not None:
        # Said for what it is: it read "HTTP Error 302: Found".
        msg = f"the server redirects to {short(redact_url(where), 120)!a}, which is not followed"
        return DownloadError(f"{prefix}: {msg} (only http, https and ftp)", status=status)
    return DownloadError(f"{prefix}: {msg}", status=status, transient=is_transient(exc, status))


def _refused_redirect(exc: BaseException) -> str | None:
    """The Location of a redirect the HTTP client would not follow (file://, gopher://)."""
    for e in _causes(exc):
        headers = getattr(e, "headers", None)
        code = getattr(e, "code", None) or getattr(e, "status", None)
        if isinstance(code, int) and 300 <= code < 400 and headers is not None:
            where = headers.get("Location")
            if where and urlsplit(where).scheme.lower() not in URL_SCHEMES:
                return str(where)
    return None


def _drop_if_empty(folder: Path) -> None:
    """Remove a staging folder that holds nothing to resume from."""
    with contextlib.suppress(OSError):
        folder.rmdir()


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]])", r"[\1]", text)


def recording_from_info(rid: str, url: str, info: dict[str, Any]) -> Recording:
    """Our metadata from a yt-dlp info dict."""
    extractor = info.get("extractor_key") or info.get("extractor")
    is_youtube = (extractor or "").lower().startswith("youtube")
    # yt-dlp's generic extractor fills upload_date from the HTTP Last-Modified header: the day
    # a file was copied onto a server, not when it was recorded or published. Not a date to
    # cite; the file's own tags (read after download) are.
    generic = (extractor or "").lower() == "generic"
    date = None if generic else info.get("upload_date") or info.get("release_date")
    return Recording(
        id=rid,
        title=str(info.get("title") or info.get("id") or rid),
        source=url,
        kind="youtube" if is_youtube else "url",
        webpage_url=info.get("webpage_url") or url,
        extractor=extractor,
        extractor_id=str(info["id"]) if info.get("id") is not None else None,
        channel=info.get("channel") or info.get("uploader"),
        uploader=info.get("uploader"),
        upload_date=iso_date(date),
        duration=float(info["duration"]) if info.get("duration") else None,
        description=info.get("description"),
        chapters=[
            {"start": c.get("start_time"), "end": c.get("end_time"), "title": c.get("title")}
            for c in info.get("chapters") or []
        ],
    )


def iso_date(yyyymmdd: str | None) -> str | None:
    if yyyymmdd and re.fullmatch(r"\d{8}", str(yyyymmdd)):
        s = str(yyyymmdd)
        return f"{s[:4]}-{s[4:6]}-{s[6:]}"
    return yyyymmdd or None


def file_recording_id(path: Path, digest: str) -> str:
    return f"{slugify(path.stem, 40)}-{digest[:10]}"


def local_media(path: Path) -> Media:
    """A local media file as a recording (the file stays where it is)."""
    check_file(path)
    digest = sha256_file(path)
    rec = Recording(
        id=file_recording_id(path, digest),
        title=path.stem,
        source=str(path),
        kind="file",
        media_path=str(path),
        media_sha256=digest,
    )
    _add_container_tags(rec, path)
    return Media(rec, path)


def _unmangle(text: str) -> str:
    """A tag whose UTF-8 bytes were decoded as Latin-1 (once or more) decoded back.

    Real files carry such tags: the Radio France podcast in ../shared/data is titled
    "SmartphonesÃ\x82Â\xa0: Ã\x83Â©loge…" (UTF-8 encoded three times), which every citation
    printed. Only a strict round trip is undone: text that is not such mojibake (a hostile
    C1 control, a real "Ã") is kept as written, for the outputs to escape. ftfy was tried and
    rejected here: its cp1252 heuristics rewrite a lone \x9b into "›".
    """
    for _ in range(4):
        if text.isascii():
            break
        try:
            fixed = text.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            break
        text = fixed
    return text


def _add_container_tags(rec: Recording, path: Path, prefer: bool = True) -> None:
    """Title/artist/date tags from the container, when the file has them.

    `prefer`: tags replace what is known (a local file's name); else they only fill gaps.
    """
    with suppressed(log, f"reading the tags of {path.name}"):
        import av

        with av.open(str(path)) as c:
            # Ogg/Opus keep their tags on the stream, other containers on the container.
            stream_tags = c.streams.audio[0].metadata if c.streams.audio else {}
            tags = {k.lower(): v for k, v in {**stream_tags, **(c.metadata or {})}.items()}
            if c.duration and (prefer or not rec.duration):
                rec.duration = c.duration / 1_000_000
        tags = {k: _unmangle(v) for k, v in tags.items() if isinstance(v, str)}
        artist = tags.get("artist") or tags.get("album_artist")
        date = tags.get("date") or tags.get("creation_time")
        if not (date and re.match(r"\d{4}(-\d{2}(-\d{2})?)?", date)):
            date = None
        if prefer:
            rec.title = tags.get("title") or rec.title
            rec.uploader = artist or rec.uploader
            rec.channel = artist or rec.channel
            rec.upload_date = date[:10] if date else rec.upload_date
        else:
            rec.uploader = rec.uploader or artist
            rec.channel = rec.channel or artist
            rec.upload_date = rec.upload_date or (date[:10] if date else None)
