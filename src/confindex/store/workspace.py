"""Where things live: a workspace folder holds transcripts/, index/, media/ and .confindex/.

The transcripts are the source of truth; everything else can be rebuilt or re-downloaded.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from confindex.errors import ConfindexError, InputError, LockedError, NotFoundError

ENV_HOME = "CONFINDEX_HOME"
LOCK_TIMEOUT_ENV = "CONFINDEX_LOCK_TIMEOUT"
LOCK_TIMEOUT = 600.0  # seconds a workspace lock (index, …) is waited for, saying so, at most

# One name per fact: every file the workspace holds is named here, and only here.
TRANSCRIPTS = "transcripts"
INDEX = "index"
MEDIA = "media"
STATE = ".confindex"
LEDGER_FILE = "ledger.sqlite"  # under STATE
VOICES_FILE = "voices.json"  # the voice library, at the root (users back it up by hand)
HISTORY = ".history"  # under TRANSCRIPTS: earlier versions of each transcript, for undo


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def resolve(cls, path: str | os.PathLike[str] | None = None) -> Workspace:
        """The workspace at `path`, else $CONFINDEX_HOME, else the current directory."""
        chosen = path or os.environ.get(ENV_HOME) or "."
        return cls(Path(chosen).expanduser().resolve())

    @property
    def transcripts(self) -> Path:
        return self.root / TRANSCRIPTS

    @property
    def index_dir(self) -> Path:
        return self.root / INDEX

    @property
    def media(self) -> Path:
        return self.root / MEDIA

    @property
    def state(self) -> Path:
        """Private state: ledger, locks, temporary downloads."""
        return self.root / STATE

    @property
    def ledger_path(self) -> Path:
        """The job ledger (SQLite)."""
        return self.state / LEDGER_FILE

    @property
    def voices_path(self) -> Path:
        """The voice library (voices.json)."""
        return self.root / VOICES_FILE

    def history_dir(self, recording_id: str) -> Path:
        """Earlier versions of a recording's transcript (`undo` brings them back)."""
        self.transcript_path(recording_id)  # the same id check: never a path outside
        return self.transcripts / HISTORY / recording_id

    def media_file(self, path: str | os.PathLike[str] | None) -> Path | None:
        """Where a transcript's or ledger row's `media_path` is: relative paths are under the
        workspace root (the archive can move), absolute ones stay as they are."""
        if not path:
            return None
        p = Path(path)
        return p if p.is_absolute() else self.root / p

    @property
    def tmp(self) -> Path:
        return self.state / "tmp"

    def ensure(self) -> Workspace:
        for d in (self.transcripts, self.index_dir, self.media, self.state, self.tmp):
            make_dir(d)
        return self

    def transcript_path(self, recording_id: str) -> Path:
        if not is_recording_id(recording_id):
            # `show ../../x` must not read (nor `speakers … rename` write) outside transcripts/
            raise NotFoundError(f"no recording {recording_id!r}: not a recording id")
        return self.transcripts / f"{recording_id}.json"

    def transcript_ids(self) -> list[str]:
        if not self.transcripts.is_dir():
            return []
        return sorted(p.stem for p in self.transcripts.glob("*.json") if not p.name.startswith("."))

    @contextlib.contextmanager
    def lock(self, name: str, *, timeout: float = -1) -> Iterator[None]:
        """An inter-process lock under .confindex/ (`timeout` in seconds; by default
        LOCK_TIMEOUT, with a warning after the first second of waiting)."""
        from filelock import FileLock, Timeout

        self.state.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.state / f"{name}.lock"))
        if timeout < 0:  # bounded all the same, and said: a silent, endless wait looked hung
            timeout = float(os.environ.get(LOCK_TIMEOUT_ENV) or LOCK_TIMEOUT)
        try:
            try:
                lock.acquire(timeout=min(1.0, timeout))
            except Timeout:
                if timeout <= 1.0:
                    raise
                import logging

                logging.getLogger("confindex").warning(
                    "waiting for another confindex process to finish writing the %s "
                    "(at most %.0f s)", name, timeout,
                )  # fmt: skip
                lock.acquire(timeout=timeout - 1.0)
        except Timeout:
            raise LockedError(
                f"another confindex process is writing the {name} in {self.root}; try again later"
            ) from None
        try:
            yield
        finally:
            lock.release()


_RECORDING_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def is_recording_id(text: str) -> bool:
    """What our ids look like (slugs, site ids, hashes): never a path, never hidden."""
    return bool(_RECORDING_ID.fullmatch(text)) and ".." not in text


def make_dir(path: Path) -> None:
    """mkdir -p, with a one-line error when a file sits where the folder must be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        bad = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), path)
        raise ConfindexError(
            f"{bad} is a file, but confindex needs a folder there: move the file away"
        ) from None


def check_writable(folders: Iterable[Path]) -> None:
    """A ConfindexError naming the first of these folders that cannot be written (a read-only
    file system, no permission), for work that ends by writing there: `transcribe` on a
    read-only archive decoded and transcribed the whole recording before it failed."""
    for d in folders:
        if d.is_dir() and not os.access(d, os.W_OK | os.X_OK):
            ro = os.statvfs(d).f_flag & os.ST_RDONLY
            why = "read-only file system" if ro else "no permission to write there"
            raise ConfindexError(f"cannot write to {d} ({why}); nothing was changed")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (media and models are large)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere the only way to read it is to set it (and restore it)
    os.umask(mask)
    return mask


# What a path can be besides a regular file or a folder.
FILE_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def refuse_special(path: Path) -> None:
    """An InputError when `path` (symlinks followed) is a device, FIFO or socket: an atomic
    write replaces the target, and `export -o /dev/full` run as root once replaced the device
    node itself with a regular file."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return  # absent (the usual case), or unreachable: the write itself will say why
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        return
    kind = next((k for test, k in FILE_KINDS if test(st.st_mode)), "not a regular file")
    raise InputError(f"{path} is {kind}, not a regular file: not overwritten")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see either the old file or the new one, whole.

    The file gets the mode a plain `open(path, "w")` would give (0666 minus the umask): mkstemp
    creates its temp file 0600, and a shared archive must stay readable to colleagues.
    """
    refuse_special(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise ConfindexError(f"disk full while writing {path}") from None
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temps(directory: Path) -> int:
    """Delete temp files left by a killed writer (`.name.*.tmp`); returns how many."""
    removed = 0
    if directory.is_dir():
        for p in directory.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                p.unlink()
                removed += 1
    return removed


def slugify(text: str, max_len: int = 48) -> str:
    """A filename-safe ASCII slug of a title: no path separators, no leading dots.

    Non-Latin titles are transliterated (python-slugify over text-unidecode), so a Russian or
    Japanese talk keeps its words in its id: "Доклад о космосе" → "doklad-o-kosmose".
    """
    from slugify import slugify as _slugify

    slug = _slugify(text, max_length=max_len, word_boundary=False, save_order=True)
    return slug.strip("-") or "recording"


def check_file(path: Path, *, dirs: bool = False) -> os.stat_result:
    """`path`'s stat, or an InputError unless it is a regular file (or, with `dirs`, a folder).

    Only regular files are read: hashing a FIFO or /dev/zero (or a symlink to one) never ends.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except (OSError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno == errno.ELOOP:
            raise InputError(f"symlink loop: {path}") from None
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(f"cannot read {path}: {reason}") from None
    if stat.S_ISDIR(st.st_mode):
        if dirs:
            return st
        raise InputError(f"{path} is a directory; pass media files or a URL")
    if not stat.S_ISREG(st.st_mode):
        kind = next((k for test, k in FILE_KINDS if test(st.st_mode)), "not a regular file")
        raise InputError(f"{path} is {kind}, not a regular file")
    return st
