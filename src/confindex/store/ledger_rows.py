"""The job ledger's data: its SQL schema, rows (`Row`, `NewItem`), stage tuples, who owns a
row (`new_owner`, `owner_is_dead`) and how SQLite errors read; ledger.py holds the `Ledger`."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confindex.errors import ConfindexError
from confindex.store.stages import PROGRESS, Stage
from confindex.store.stages import TERMINAL as TERMINAL_STAGES


class LedgerError(ConfindexError):
    """The ledger cannot be written (disk full, read-only workspace): the run must stop."""


STAGES = tuple(s.value for s in PROGRESS)
TERMINAL = tuple(s.value for s in TERMINAL_STAGES)
ALL_STAGES = tuple(s.value for s in Stage)
STALE_AFTER = 120.0  # seconds without a heartbeat after which another host may take a row


def _sql(*stages: Stage) -> str:
    """Stage values as an SQL list literal (they are fixed identifiers, never user input)."""
    return ", ".join(f"'{Stage(s).value}'" for s in stages)


SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    key           TEXT PRIMARY KEY,          -- the input: a URL or an absolute file path
    seq           INTEGER NOT NULL,          -- order of first sight: work is done in this order
    source        TEXT NOT NULL,             -- what to fetch (same as key today)
    kind          TEXT NOT NULL,             -- url | file
    parent        TEXT,                      -- playlist URL, directory or batch file it came from
    recording_id  TEXT,                      -- known offline for URLs, after hashing for files
    title         TEXT,
    stage         TEXT NOT NULL DEFAULT 'queued',  -- a stages.Stage value
    activity      TEXT,                      -- what the owner is doing now (downloading, …)
    error         TEXT,
    failed_stage  TEXT,                      -- the step that failed (download, transcribe, …)
    attempts      INTEGER NOT NULL DEFAULT 0,
    media_path    TEXT,                      -- relative to the workspace when inside it
    media_sha256  TEXT,
    duplicate_of  TEXT,                      -- recording id of the row holding the same media
    recording     TEXT,                      -- JSON of transcript.Recording after download
    audio_seconds REAL,
    work_seconds  REAL,                      -- wall time spent on it by the run that finished it
    owner         TEXT,
    heartbeat     REAL,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    finished_at   REAL
);
CREATE INDEX IF NOT EXISTS jobs_stage ON jobs(stage);
CREATE INDEX IF NOT EXISTS jobs_sha ON jobs(media_sha256);
CREATE INDEX IF NOT EXISTS jobs_rid ON jobs(recording_id);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs(owner);
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    owner       TEXT NOT NULL,
    started_at  REAL NOT NULL,
    finished_at REAL,
    options     TEXT,                        -- JSON: how to transcribe (for `resume`)
    summary     TEXT                         -- JSON: the run summary
);
"""


@dataclass
class NewItem:
    """A recording to add to the ledger (see inputs.WorkItem, which fits this shape)."""

    key: str
    source: str
    kind: str
    parent: str | None = None
    recording_id: str | None = None
    title: str | None = None
    error: str | None = None  # known bad before any work (missing file, bad playlist)


@dataclass
class Row:
    key: str
    seq: int
    source: str
    kind: str
    parent: str | None
    recording_id: str | None
    title: str | None
    stage: Stage
    activity: str | None
    error: str | None
    failed_stage: str | None
    attempts: int
    media_path: str | None
    media_sha256: str | None
    duplicate_of: str | None
    recording: dict[str, Any] | None
    audio_seconds: float | None
    work_seconds: float | None
    owner: str | None
    heartbeat: float | None
    created_at: float
    updated_at: float
    finished_at: float | None

    @property
    def terminal(self) -> bool:
        return Stage(self.stage).terminal

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("recording")
        return d


# Owners alive in this process (several ledgers may be open at once: tests, benchmarks).
_OUR_OWNERS: set[str] = set()


def new_owner() -> str:
    """A unique owner name for this process run: host, pid and a random token."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str, *, me: str | None = None) -> bool:
    """True when `owner` was a process on this host that no longer runs."""
    try:
        host, pid_s, _token = owner.split(":", 2)
        pid = int(pid_s)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False  # another machine: only its heartbeat can tell
    if pid == os.getpid():
        # Our pid with a token we do not know: an earlier process whose pid we now reuse.
        return owner != me and owner not in _OUR_OWNERS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    # A killed child not yet reaped by its parent still answers kill(pid, 0).
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _write_error(path: Path, exc: sqlite3.OperationalError) -> Exception:
    """A one-line LedgerError for a full disk or a read-only workspace; else the error."""
    msg = str(exc)
    if "locked" in msg or "busy" in msg:
        # Another process held it past busy_timeout (60 s): it raised OperationalError, exit 70.
        return LedgerError(
            f"the job ledger {path} is locked by another process (waited 60 s); "
            "try again when it has finished: finished work is kept"
        )
    if "full" in msg or "readonly" in msg or "disk I/O" in msg or "unable to open" in msg:
        return LedgerError(
            f"cannot write the job ledger {path} ({msg}); free space (or make the folder "
            "writable) and rerun: finished work is kept"
        )
    return exc


def _is_damage(exc: sqlite3.Error) -> bool:
    msg = str(exc).lower()
    return "not a database" in msg or "malformed" in msg or "corrupt" in msg


def _create_with_umask(path: Path) -> None:
    """Create the database file as `open()` would (0666 minus the umask) when it is missing.

    SQLite creates a new database 0644 whatever the umask (its default file mode), and its WAL
    and shared-memory files copy the database's mode: under umask 002 a colleague sharing the
    archive could read but not write the ledger, so their `fetch` failed. Any other failure
    (a read-only folder) is left to sqlite3.connect, which reports it as before."""
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))


def row_of(r: sqlite3.Row) -> Row:
    """A Row from a `SELECT * FROM jobs` row."""
    d = dict(r)
    rec = d.get("recording")
    d["recording"] = json.loads(rec) if rec else None
    d["stage"] = Stage(d["stage"])
    return Row(**d)


BUSY_WAIT = 60.0  # seconds a ledger write waits for another process's (SQLite busy_timeout)


def _open_writer(path: Path) -> sqlite3.Connection:
    """A read-write connection to the ledger at `path` (created when missing), in WAL mode."""
    _create_with_umask(path)
    c = sqlite3.connect(path, timeout=BUSY_WAIT, isolation_level=None)
    c.row_factory = sqlite3.Row
    c.execute(f"PRAGMA busy_timeout = {int(BUSY_WAIT * 1000)}")
    _enter_wal(c)
    c.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across app crashes
    return c


def _enter_wal(c: sqlite3.Connection, wait: float = BUSY_WAIT) -> None:
    """`PRAGMA journal_mode = WAL`, tried again while another connection turns the same new
    ledger to WAL.

    SQLite calls no busy handler for this pragma: on a new database it needs the exclusive
    lock, and a connection that meets another one converting it fails at once with "database
    is locked". Two `confindex fetch` started together on a new workspace (test_bulk's two
    fetches at once) failed so in 8 of 100 tries, in 0.001 s, with the message that they had
    waited 60 s; four threads opening one new ledger, in 12 of 200 rounds. Once the file is in
    WAL mode the pragma only reads it, so the retries end within milliseconds."""
    deadline = time.monotonic() + wait
    delay = 0.001
    while True:
        try:
            c.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(2 * delay, 0.05)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return bool(code & 0xFF == sqlite3.SQLITE_BUSY)
    return "locked" in str(exc)
