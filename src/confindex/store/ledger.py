"""The job ledger: one SQLite row per recording and the last stage it finished.

`.confindex/ledger.sqlite`, WAL mode, so a bulk run can be killed at any instant and the ledger
stays consistent (every change is one transaction) while any number of readers (`status`) look.

Stages, in order: queued → downloaded → transcribed → diarized → indexed; or `failed` (with the
error, the stage that failed and the attempt count) or `duplicate` (same media content as another
row, whose recording is indexed once). `indexed`, `failed` and `duplicate` are terminal.

Work is claimed atomically: a row belongs to one `owner` ("host:pid:token") that refreshes its
`heartbeat`; a row is claimable when it has no owner, its owner's heartbeat is stale, or its
owner was a process on this host that is gone (killed, crashed, rebooted). So two runs in the
same workspace never work on the same recording, and a killed run's rows are picked up at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from confindex.errors import ConfindexError
from confindex.store.ledger_rows import (
    _OUR_OWNERS,
    ALL_STAGES,
    SCHEMA,
    SCHEMA_VERSION,
    STAGES,
    STALE_AFTER,
    TERMINAL,
    LedgerError,
    NewItem,
    Row,
    _is_damage,
    _open_writer,
    _sql,
    _write_error,
    new_owner,
    owner_is_dead,
    row_of,
)
from confindex.store.stages import TERMINAL as TERMINAL_STAGES
from confindex.store.stages import Stage

__all__ = [
    "ALL_STAGES",
    "SCHEMA_VERSION",
    "STAGES",
    "STALE_AFTER",
    "TERMINAL",
    "Ledger",
    "LedgerError",
    "NewItem",
    "Row",
    "new_owner",
    "owner_is_dead",
]

log = logging.getLogger("confindex")


class Ledger:
    """The ledger of one workspace; safe to use from several threads (one connection each)."""

    def __init__(
        self,
        path: Path,
        *,
        owner: str | None = None,
        stale_after: float = STALE_AFTER,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        # Read-only: for readers (`status`) of an archive on read-only media, where SQLite
        # cannot open a WAL database the usual way (it needs to create the -shm file).
        self.read_only = read_only
        self.owner = owner or new_owner()
        self.stale_after = stale_after
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        _OUR_OWNERS.add(self.owner)
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.set_aside: Path | None = None  # where a damaged ledger was moved, if it was
        try:
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and not _is_damage(exc):
                self.close()
                raise _write_error(self.path, exc) from None
            self._recover(exc)

    @classmethod
    def of(cls, ws: Any, **kw: Any) -> Ledger:
        """The ledger of a Workspace (a damaged one is set aside and rebuilt from transcripts/)."""
        led = cls(ws.ledger_path, **kw)
        if led.set_aside is not None:
            n = led.restore_from(ws)
            log.warning(
                "the job ledger was damaged: kept it as %s for inspection and rebuilt it from "
                "%d transcript%s in %s",
                led.set_aside,
                n,
                "" if n == 1 else "s",
                ws.transcripts,
            )
        return led

    def _recover(self, exc: Exception) -> None:
        """Move the damaged database (and its WAL) aside and start an empty one."""
        from filelock import FileLock

        with FileLock(str(self.path.parent / "ledger-recover.lock")):
            self.close()
            _OUR_OWNERS.add(self.owner)
            try:
                self._init_schema()  # another process may have recovered it meanwhile
                return
            except sqlite3.DatabaseError:
                self.close()
                _OUR_OWNERS.add(self.owner)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
            k = 1
            while aside.exists():  # never overwrite an earlier damaged copy
                k += 1
                aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}-{k}")
            for suffix in ("", "-wal", "-shm"):
                src = Path(f"{self.path}{suffix}")
                if src.exists():
                    os.replace(src, Path(f"{aside}{suffix}"))
            self.set_aside = aside
            self._init_schema()

    def restore_from(self, ws: Any) -> int:
        """Rows for the recordings transcripts/ holds (stage `indexed`); returns how many.

        The transcripts are the source of truth: what they hold is done; anything else is
        fetched again by the next `fetch` of its input.
        """
        from confindex.store.transcript import load_path

        now = time.time()
        n = 0
        with self._tx() as c:
            seq = c.execute("SELECT COALESCE(MAX(seq), 0) FROM jobs").fetchone()[0]
            for rid in ws.transcript_ids():
                try:
                    rec = load_path(ws.transcript_path(rid)).recording
                except ConfindexError:
                    continue  # `index` lists unreadable transcripts
                seq += 1
                kind = "file" if rec.kind == "file" else "url"
                c.execute(
                    "INSERT OR IGNORE INTO jobs(key, seq, source, kind, recording_id, title,"
                    " stage, media_path, media_sha256, recording, audio_seconds, created_at,"
                    " updated_at, finished_at) VALUES (?,?,?,?,?,?,'indexed',?,?,?,?,?,?,?)",
                    (
                        rec.source,
                        seq,
                        rec.source,
                        kind,
                        rid,
                        rec.title,
                        rec.media_path,
                        rec.media_sha256,
                        json.dumps(dataclasses.asdict(rec), ensure_ascii=False),
                        rec.duration,
                        now,
                        now,
                        now,
                    ),
                )
                n += 1
        return n

    # -- connections -------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so a read-then-write
            # (claim, duplicate check) holds the write lock throughout and cannot race.
            if self.read_only:
                # immutable: nothing can write here (the folder is read-only), so no locks.
                uri = f"{self.path.resolve().as_uri()}?mode=ro&immutable=1"
                c = sqlite3.connect(uri, uri=True, isolation_level=None)
                c.row_factory = sqlite3.Row
            else:
                c = _open_writer(self.path)
            self._local.conn = c
            with self._conns_lock:
                self._conns.append(c)
        return c

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        c = self._conn()
        try:
            c.execute("BEGIN IMMEDIATE")
            try:
                yield c
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            # Nothing was half-written (the transaction rolled back); say why in one line.
            raise _write_error(self.path, exc) from None
        except sqlite3.DatabaseError as exc:  # damaged after it was opened
            raise LedgerError(
                f"the job ledger {self.path} is damaged ({exc}); move it away and rerun: "
                "confindex rebuilds it from transcripts/"
            ) from None

    def _init_schema(self) -> None:
        c = self._conn()
        if c.execute("SELECT 1 FROM sqlite_master WHERE name = 'runs'").fetchone():
            return  # readers (`status`) take no write lock
        with self._tx():
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    c.execute(stmt)
            c.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?)",
                (str(SCHEMA_VERSION),),
            )

    def close(self) -> None:
        with self._conns_lock:
            for c in self._conns:
                with contextlib.suppress(sqlite3.Error):
                    c.close()
            self._conns.clear()
        self._local = threading.local()
        _OUR_OWNERS.discard(self.owner)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------------

    _row = staticmethod(row_of)

    def get(self, key: str) -> Row | None:
        r = self._conn().execute("SELECT * FROM jobs WHERE key = ?", (key,)).fetchone()
        return self._row(r) if r else None

    def rows(self, keys: Iterable[str] | None = None, *, stage: str | None = None) -> list[Row]:
        """Rows in work order, optionally only `keys` (looked up, not filtered from all: 183 ms
        a call in a 20,000-row ledger) and/or one stage."""
        sql = "SELECT * FROM jobs WHERE " + ("stage = ?" if stage else "1")
        args: list[Any] = [stage] if stage else []
        if keys is None:
            return [self._row(r) for r in self._conn().execute(sql + " ORDER BY seq", args)]
        wanted, got = list(dict.fromkeys(keys)), []  # not json_each: its values end at a NUL
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            q = f"{sql} AND key IN ({','.join('?' * len(part))})"
            got += self._conn().execute(q, [*args, *part]).fetchall()
        return sorted(map(self._row, got), key=lambda r: r.seq)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(ALL_STAGES, 0)
        for stage, n in self._conn().execute("SELECT stage, COUNT(*) FROM jobs GROUP BY stage"):
            counts[stage] = n
        return counts

    def by_recording_id(self, recording_id: str) -> list[Row]:
        cur = self._conn().execute(
            "SELECT * FROM jobs WHERE recording_id = ? ORDER BY seq", (recording_id,)
        )
        return [self._row(r) for r in cur]

    def forget(self, recording_ids: Iterable[str]) -> int:
        """Delete the rows of these recordings (and rows marked duplicates of them), so that
        fetching the source again starts from scratch; returns how many rows went."""
        n = 0
        with self._tx() as c:
            for rid in recording_ids:
                n += c.execute(
                    "DELETE FROM jobs WHERE recording_id = ? OR duplicate_of = ?", (rid, rid)
                ).rowcount
        return n

    # -- adding ------------------------------------------------------------------------------

    def add(self, items: Iterable[NewItem]) -> list[str]:
        """Add new recordings (known keys are left as they are); returns the keys, in order.

        A URL whose recording id another row already has (two spellings of one video) is added
        as a duplicate of it.
        """
        now = time.time()
        keys: list[str] = []
        with self._tx() as c:
            seq = c.execute("SELECT COALESCE(MAX(seq), 0) FROM jobs").fetchone()[0]
            for it in items:
                keys.append(it.key)
                known = c.execute(
                    "SELECT stage, failed_stage FROM jobs WHERE key = ?", (it.key,)
                ).fetchone()
                if known:
                    if tuple(known) == (Stage.FAILED, "input") and not it.error:
                        # The input was missing or unreadable and is fine now: queue it again.
                        c.execute(
                            f"UPDATE jobs SET stage='{Stage.QUEUED}', error=NULL,"
                            " failed_stage=NULL, finished_at=NULL, recording_id=?, title=?,"
                            " updated_at=? WHERE key=?",
                            (it.recording_id, it.title, now, it.key),
                        )
                    continue
                seq += 1
                stage, dup_of, finished = Stage.QUEUED, None, None
                if it.error:
                    stage, finished = Stage.FAILED, now
                elif it.recording_id:
                    other = c.execute(
                        "SELECT recording_id FROM jobs WHERE recording_id = ?"
                        f" AND stage NOT IN ({_sql(Stage.FAILED, Stage.DUPLICATE)}) LIMIT 1",
                        (it.recording_id,),
                    ).fetchone()
                    if other:
                        stage, dup_of, finished = Stage.DUPLICATE, other[0], now
                c.execute(
                    "INSERT INTO jobs(key, seq, source, kind, parent, recording_id, title, stage,"
                    " error, failed_stage, duplicate_of, created_at, updated_at, finished_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        it.key,
                        seq,
                        it.source,
                        it.kind,
                        it.parent,
                        it.recording_id,
                        it.title,
                        stage,
                        it.error,
                        "input" if it.error else None,
                        dup_of,
                        now,
                        now,
                        finished,
                    ),
                )
        return keys

    def reset(self, keys: Iterable[str]) -> int:
        """--force: send these rows back to `queued` (rows a live process owns are left)."""
        n = 0
        self.reap()
        now = time.time()
        with self._tx() as c:
            for k in keys:
                n += c.execute(
                    f"UPDATE jobs SET stage='{Stage.QUEUED}', error=NULL, failed_stage=NULL,"
                    " attempts=0, duplicate_of=NULL, activity=NULL, finished_at=NULL, updated_at=?"
                    " WHERE key = ? AND owner IS NULL AND COALESCE(failed_stage, '') != 'input'",
                    (now, k),
                ).rowcount
        return n

    def retry_failed(self, keys: Iterable[str] | None = None) -> list[str]:
        """Send failed rows back to the last stage they finished; returns their keys."""
        rows = self.rows(keys, stage=Stage.FAILED)
        now = time.time()
        done: list[str] = []
        with self._tx() as c:
            for r in rows:
                if r.failed_stage == "input":
                    continue  # a missing file or bad playlist: the user must fix the input
                back = (
                    Stage.DOWNLOADED if r.media_path and r.failed_stage == "index" else Stage.QUEUED
                )
                c.execute(
                    # attempts are kept: status shows how often a recording was tried in all
                    "UPDATE jobs SET stage=?, error=NULL, failed_stage=NULL,"
                    " finished_at=NULL, activity=NULL, updated_at=? WHERE key=?"
                    f" AND stage='{Stage.FAILED}'",
                    (back, now, r.key),
                )
                done.append(r.key)
        return done

    # -- claiming ----------------------------------------------------------------------------

    def reap(self) -> int:
        """Release rows whose owner process on this host is gone; returns how many."""
        owners = [
            o
            for (o,) in self._conn().execute(
                "SELECT DISTINCT owner FROM jobs WHERE owner IS NOT NULL"
            )
        ]
        n = 0
        for o in owners:
            if o != self.owner and owner_is_dead(o, me=self.owner):
                with self._tx() as c:
                    n += c.execute(
                        "UPDATE jobs SET owner=NULL, activity=NULL WHERE owner = ?", (o,)
                    ).rowcount
        return n

    def claim_next(self, keys: Iterable[str] | None = None) -> Row | None:
        """Atomically take the first unfinished row (of `keys`) nobody else works on."""
        wanted = set(keys) if keys is not None else None
        self.reap()
        now = time.time()
        stale = now - self.stale_after
        # The whole choice is one query: unfinished, unowned (or stale), among `keys` (passed
        # as one JSON array), first by sequence.
        among = "" if wanted is None else " AND key IN (SELECT value FROM json_each(?))"
        params: tuple[Any, ...] = (
            (stale,) if wanted is None else (stale, json.dumps(sorted(wanted)))
        )
        with self._tx() as c:
            cur = c.execute(
                f"SELECT key FROM jobs WHERE stage NOT IN ({_sql(*TERMINAL_STAGES)})"
                f" AND (owner IS NULL OR heartbeat < ?){among} ORDER BY seq LIMIT 1",
                params,
            )
            for (key,) in cur.fetchall():
                c.execute(
                    "UPDATE jobs SET owner=?, heartbeat=?, attempts=attempts+1, activity=NULL,"
                    " updated_at=? WHERE key=?",
                    (self.owner, now, now, key),
                )
                r = c.execute("SELECT * FROM jobs WHERE key = ?", (key,)).fetchone()
                return self._row(r)
        return None

    def pending_elsewhere(self, keys: Iterable[str] | None = None) -> int:
        """Unfinished rows (of `keys`) that another live owner is working on."""
        rows = [r for r in self.rows(keys) if not r.terminal]
        return sum(1 for r in rows if r.owner is not None and r.owner != self.owner)

    def heartbeat(self) -> None:
        with self._tx() as c:
            c.execute("UPDATE jobs SET heartbeat=? WHERE owner=?", (time.time(), self.owner))

    def release(self, key: str) -> None:
        """Give a row back unfinished (Ctrl-C): its finished stages stay done."""
        with self._tx() as c:
            c.execute(
                "UPDATE jobs SET owner=NULL, activity=NULL, updated_at=? WHERE key=? AND owner=?",
                (time.time(), key, self.owner),
            )

    def release_all(self) -> int:
        with self._tx() as c:
            return c.execute(
                "UPDATE jobs SET owner=NULL, activity=NULL, updated_at=? WHERE owner=?",
                (time.time(), self.owner),
            ).rowcount

    # -- progress (only the owner may move a row) --------------------------------------------

    def _update(self, c: sqlite3.Connection, key: str, **fields: Any) -> bool:
        fields["updated_at"] = time.time()
        if "recording" in fields and fields["recording"] is not None:
            fields["recording"] = json.dumps(fields["recording"], ensure_ascii=False)
        sets = ", ".join(f"{k}=?" for k in fields)
        cur = c.execute(
            f"UPDATE jobs SET {sets} WHERE key=? AND owner=?", (*fields.values(), key, self.owner)
        )
        return cur.rowcount == 1

    def set_activity(self, key: str, activity: str | None) -> None:
        with self._tx() as c:
            self._update(c, key, activity=activity)

    def count_attempt(self, key: str) -> None:
        """One more attempt at a row we own, beside the claim's: a Dask worker died running
        it and the scheduler started it again elsewhere."""
        with self._tx() as c:
            c.execute(
                "UPDATE jobs SET attempts=attempts+1, updated_at=? WHERE key=? AND owner=?",
                (time.time(), key, self.owner),
            )

    def advance(self, key: str, stage: str, **fields: Any) -> bool:
        """Record that `stage` is finished (plus metadata); False if we no longer own the row."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        stage = Stage(stage).value
        if stage == Stage.INDEXED:
            fields.setdefault("finished_at", time.time())
            fields.setdefault("owner", None)
            fields.setdefault("activity", None)
        with self._tx() as c:
            return self._update(c, key, stage=stage, **fields)

    def record_media(self, key: str, *, media_sha256: str, **fields: Any) -> str | None:
        """Mark `key` downloaded, unless another row already has the same media content: then
        mark it a duplicate and return that row's recording id. One transaction, so two runs
        downloading the same content under two URLs cannot both win.
        """
        with self._tx() as c:
            other = c.execute(
                "SELECT recording_id FROM jobs WHERE media_sha256 = ? AND key != ?"
                f" AND stage NOT IN ({_sql(Stage.FAILED, Stage.DUPLICATE)}) ORDER BY seq LIMIT 1",
                (media_sha256, key),
            ).fetchone()
            if other:
                self._update(
                    c,
                    key,
                    stage=Stage.DUPLICATE,
                    duplicate_of=other[0],
                    media_sha256=media_sha256,
                    finished_at=time.time(),
                    owner=None,
                    activity=None,
                    **{k: v for k, v in fields.items() if k != "media_path"},
                )
                return str(other[0])
            self._update(c, key, stage=Stage.DOWNLOADED, media_sha256=media_sha256, **fields)
            return None

    def fail(self, key: str, error: str, failed_stage: str, **fields: Any) -> bool:
        with self._tx() as c:
            done = self._update(
                c,
                key,
                stage=Stage.FAILED,
                error=error[:2000],
                failed_stage=failed_stage,
                finished_at=time.time(),
                owner=None,
                activity=None,
                **fields,
            )
            row = c.execute("SELECT recording_id FROM jobs WHERE key=?", (key,)).fetchone()
            if done and row and row[0]:  # its duplicates fail too (`retry-failed` sees them)
                c.execute(
                    "UPDATE jobs SET stage=?, error=?, failed_stage=?, duplicate_of=NULL,"
                    " updated_at=? WHERE duplicate_of=? AND stage=?",
                    (Stage.FAILED, f"same media as {row[0]}, which failed: {error}"[:2000],
                     failed_stage, time.time(), row[0], Stage.DUPLICATE),
                )  # fmt: skip
            return done

    # -- runs --------------------------------------------------------------------------------

    def start_run(self, options: dict[str, Any] | None = None) -> int:
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO runs(owner, started_at, options) VALUES (?,?,?)",
                (self.owner, time.time(), json.dumps(options or {}, default=str)),
            )
            return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, summary: dict[str, Any]) -> None:
        with self._tx() as c:
            c.execute(
                "UPDATE runs SET finished_at=?, summary=? WHERE id=?",
                (time.time(), json.dumps(summary, default=str), run_id),
            )

    def last_run(self) -> dict[str, Any] | None:
        r = self._conn().execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        if not r:
            return None
        d = dict(r)
        d["options"] = json.loads(d["options"]) if d["options"] else {}
        d["summary"] = json.loads(d["summary"]) if d["summary"] else None
        return d

    def live_owners(self) -> set[str]:
        """Owners of unfinished rows that are (as far as we can tell) still running."""
        now = time.time()
        out = set()
        for o, hb in self._conn().execute(
            "SELECT owner, MAX(heartbeat) FROM jobs WHERE owner IS NOT NULL GROUP BY owner"
        ):
            if hb is not None and hb >= now - self.stale_after and not owner_is_dead(o, me=""):
                out.add(o)
        return out
