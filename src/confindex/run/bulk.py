"""Archivist mode: many recordings, unattended, resumable, each transcribed and indexed once.

Every `fetch` goes through here. The inputs become rows of the ledger (ledger.py); download
worker threads claim rows and feed a bounded queue; the main thread holds the one Whisper model
and transcribes, saves and indexes what they hand it. Each finished stage is recorded at once,
so a crash, Ctrl-C or reboot costs at most the recording in progress, and rerunning the same
command (or `confindex resume`) picks up from the ledger.

Stage checkpoints: `downloaded` when the media file is whole in media/ (yt-dlp writes into a
private staging folder, resumable); `transcribed`/`diarized` when the transcript JSON and its
exports are saved (speech recognition and diarization are one checkpoint: the transcript is
written once both are done); `indexed` when the index has it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import queue
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confindex.errors import ConfindexError, DeviceError, MediaError, ModelError, os_error_message
from confindex.log import suppressed
from confindex.run.fetch import Media
from confindex.run.inputs import WorkItem
from confindex.run.job import FetchOptions, Reporter, Transcriber
from confindex.run.pipeline import Outcome
from confindex.store import transcript as transcript_store
from confindex.store.ledger import STALE_AFTER, LedgerError, NewItem, Row
from confindex.store.stages import Stage, Status
from confindex.store.store import Store
from confindex.store.transcript import Recording, Transcript
from confindex.store.workspace import Workspace

log = logging.getLogger("confindex.run.bulk")

# Failures of a recording, recorded in the ledger; any other exception is a bug and stops the
# run (with its traceback in the log).
EXPECTED = (ConfindexError, OSError)

# Test hook: "indexing=2,transcribing=1" sleeps that long once a stage starts, so that a test
# can kill the process at a known point. Never set in normal use.
ENV_STAGE_DELAY = "CONFINDEX_TEST_STAGE_DELAY"

_ACTIVITY = {
    "download": "downloading",
    "decode": "decoding",
    "transcribe": "transcribing",
    "diarize": "diarizing",
    "index": "indexing",
}


@dataclass
class BulkOptions:
    """How the bulk runner schedules work (not how a recording is transcribed)."""

    download_workers: int = 1  # 0 = no pipelining: download in the main thread, then transcribe
    ydl_extra: dict[str, Any] = field(default_factory=dict)  # politeness: sleep, rate, cookies
    retries: int = 3  # extra download attempts on HTTP 429/5xx and network errors
    backoff: float = 5.0  # seconds before the first retry; doubles each time
    stale_after: float = STALE_AFTER
    # A started executors.DaskCluster: jobs run on its workers, this process publishes.
    cluster: Any = None


@dataclass
class Prepared:
    """A claimed row, ready for the main thread: media to transcribe, or a saved transcript."""

    row: Row
    media: Media | None = None


@dataclass
class RunSummary:
    results: list[dict[str, Any]]
    wall_seconds: float
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r["status"] == status)

    @property
    def audio_seconds(self) -> float:
        done = (r for r in self.results if r["status"] == Status.DONE)
        return sum(r.get("audio_seconds") or 0.0 for r in done)

    @property
    def realtime_factor(self) -> float | None:
        """Audio seconds processed per wall second (higher is faster)."""
        a = self.audio_seconds
        return round(a / self.wall_seconds, 2) if a and self.wall_seconds > 0 else None

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.results if r["status"] == Status.FAILED]

    def to_dict(self) -> dict[str, Any]:
        return {
            "done": self.count(Status.DONE),
            "skipped": self.count(Status.SKIPPED),
            "failed": self.count(Status.FAILED),
            "audio_seconds": round(self.audio_seconds, 3),
            "audio_hours": round(self.audio_seconds / 3600, 4),
            "wall_seconds": round(self.wall_seconds, 3),
            "realtime_factor": self.realtime_factor,
            "interrupted": self.interrupted,
        }


def options_to_dict(options: FetchOptions) -> dict[str, Any]:
    return dataclasses.asdict(options)


def options_from_dict(d: dict[str, Any]) -> FetchOptions:
    """FetchOptions stored by an earlier run (for `resume`); unknown keys are ignored."""
    from confindex.speech.asr import AsrOptions

    names = {f.name for f in dataclasses.fields(FetchOptions)}
    asr_names = {f.name for f in dataclasses.fields(AsrOptions)}
    kw = {k: v for k, v in d.items() if k in names and k != "asr"}
    asr = AsrOptions(**{k: v for k, v in (d.get("asr") or {}).items() if k in asr_names})
    return FetchOptions(**kw, asr=asr)


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def _stage_delays() -> dict[str, float]:
    out: dict[str, float] = {}
    for part in os.environ.get(ENV_STAGE_DELAY, "").split(","):
        name, _, secs = part.partition("=")
        with contextlib.suppress(ValueError):
            out[name.strip()] = float(secs)
    return out


class _LedgerReporter(Reporter):
    """Records the current activity of a row in the ledger and forwards to the user's reporter."""

    def __init__(self, runner: BulkRunner, key: str, inner: Reporter | None) -> None:
        self.runner, self.key, self.inner = runner, key, inner

    def stage(self, recording_id: str, stage: str, total: float | None = None) -> None:
        self.runner._activity(self.key, _ACTIVITY.get(stage, stage))
        log.info("%s: %s", recording_id or self.key, stage)
        if self.inner:
            self.inner.stage(recording_id, stage, total)

    def advance(self, done: float, total: float | None = None) -> None:
        if self.inner:
            self.inner.advance(done, total)

    def done(self, recording_id: str, status: str, message: str = "") -> None:
        if self.inner:
            self.inner.done(recording_id, status, message)


class BulkRunner:
    """Runs work items through the ledger: claim → download → transcribe → save → index."""

    def __init__(
        self,
        ws: Workspace,
        options: FetchOptions,
        bulk: BulkOptions | None = None,
        *,
        transcriber: Transcriber | None = None,
        reporter: Reporter | None = None,
    ) -> None:
        self.ws = ws.ensure()
        self.options = options
        self.bulk = bulk or BulkOptions()
        self.transcriber = transcriber or Transcriber(options)
        self.reporter = reporter
        self.store = Store(self.ws)
        self.ledger = self.store.ledger(stale_after=self.bulk.stale_after)
        self.stop = threading.Event()
        self._delays = _stage_delays()
        self._handled: set[str] = set()  # keys this run finished or gave up (not re-claimed)
        self._handled_lock = threading.Lock()
        self._results: dict[str, dict[str, Any]] = {}
        self._before: dict[str, str] = {}
        self.summary: RunSummary | None = None  # set by run(); a runner runs once

    # -- public ------------------------------------------------------------------------------

    def run(self, items: list[WorkItem] | None = None) -> RunSummary:
        """Process `items` (None: every unfinished row of the ledger, i.e. `resume`)."""
        t0 = time.perf_counter()
        led = self.ledger
        if items is not None:
            keys = led.add(NewItem(**dataclasses.asdict(it)) for it in items)
            # Inputs found bad in this run (missing, not a regular file, bad URL): say why, not
            # "failed in an earlier run" (a recording indexed earlier stays as it is).
            bad = {it.key: it for it in items if it.error}
            for r in led.rows(list(bad)) if bad else []:
                if r.stage == Stage.FAILED:
                    it = bad[r.key]
                    o = Outcome(it.source, Status.FAILED, it.recording_id, it.title, error=it.error)
                    self._results[it.key] = {**o.to_dict(), "reason": None}
            if self.options.force:
                led.reset(keys)
            else:
                self._reconcile(keys)
        else:
            keys = [r.key for r in led.rows() if not r.terminal]
        self._before = {r.key: r.stage for r in led.rows(keys)}
        run_id = led.start_run(
            {
                **options_to_dict(self.options),
                "download_workers": self.bulk.download_workers,
                "executor": "local" if self.bulk.cluster is None else "dask",
            }
        )
        log.info(
            "run %s: %d recording(s) on %s",
            run_id,
            len(keys),
            "this machine" if self.bulk.cluster is None else "the Dask cluster",
        )
        beat = threading.Thread(target=self._heartbeat, name="ledger-heartbeat", daemon=True)
        beat.start()
        interrupted = False
        try:
            with self._sigterm_as_interrupt():
                if self.bulk.cluster is not None:
                    self._run_dask(keys)
                elif self.bulk.download_workers > 0:
                    self._run_pipelined(keys)
                else:
                    self._run_sequential(keys)
        except KeyboardInterrupt:
            # Stop cleanly: what is in progress goes back to the queue with its finished stages.
            interrupted = True
            self.stop.set()
            led.release_all()
            raise
        except (ModelError, DeviceError):
            self.stop.set()
            led.release_all()
            raise
        finally:
            self.stop.set()
            # Housekeeping must never hide the real outcome (or the exception on its way out).
            if not interrupted:
                with suppressed(log, "cleaning up after the run"):
                    self.cleanup()
            try:
                results = self._collect(keys)
            except Exception:
                results = list(self._results.values())
            summary = RunSummary(results, time.perf_counter() - t0, interrupted)
            with suppressed(log, "recording the run's summary"):
                led.finish_run(run_id, summary.to_dict())
            self.summary = summary
            led.close()
        return summary

    def _reconcile(self, keys: list[str]) -> None:
        """The transcripts are the truth: requeue `indexed` rows whose transcript is gone, and
        index those missing from the index (it was deleted or rebuilt without them).
        """
        rows = [r for r in self.ledger.rows(keys) if r.stage == Stage.INDEXED and r.recording_id]
        gone = [r.key for r in rows if not transcript_store.exists(self.ws, r.recording_id or "")]
        if gone:
            self.ledger.reset(gone)
        if not self.options.index:
            return
        from confindex.search import index as search_index

        have = search_index.indexed_ids(self.ws)
        missing = [
            r.recording_id
            for r in rows
            if r.key not in gone and r.recording_id and r.recording_id not in have
        ]
        if missing:
            # A damaged transcript: `index` reports it.
            with suppressed(log, "indexing transcripts missing from the index", ConfindexError):
                self.store.reindex(missing)

    # -- scheduling --------------------------------------------------------------------------

    def _wanted(self, keys: list[str]) -> list[str]:
        with self._handled_lock:
            return [k for k in keys if k not in self._handled]

    def _handled_add(self, key: str) -> None:
        with self._handled_lock:
            self._handled.add(key)

    def _next(self, keys: list[str]) -> Row | None:
        """Claim the next row; wait while rows of ours are in another live run's hands."""
        while not self.stop.is_set():
            wanted = self._wanted(keys)
            if not wanted:
                return None
            row = self.ledger.claim_next(wanted)
            if row is not None:
                return row
            if not self.ledger.pending_elsewhere(wanted):
                return None
            self.stop.wait(0.5)  # another run works on them: it may die, then we take over
        return None

    def _run_sequential(self, keys: list[str]) -> None:
        while (row := self._next(keys)) is not None:
            prepared = self._prepare(row, self.reporter)
            if prepared is not None:
                self._finish(prepared)

    def _run_pipelined(self, keys: list[str]) -> None:
        n = self.bulk.download_workers
        q: queue.Queue[Prepared | None] = queue.Queue(maxsize=n)
        errors: list[BaseException] = []

        def worker() -> None:
            # A reporter written before `side` existed (duck-typed) shows no downloads.
            make_side = getattr(self.reporter, "side", None)
            side = make_side() if make_side is not None else None
            try:
                while (row := self._next(keys)) is not None:
                    try:
                        prepared = self._prepare(row, side)
                    finally:
                        if side is not None:
                            side.done(row.recording_id or row.source, "")
                    if prepared is None:
                        continue
                    while not self.stop.is_set():
                        try:
                            q.put(prepared, timeout=0.5)
                            break
                        except queue.Full:
                            continue
            except BaseException as exc:  # a bug, or the ledger unusable (disk full)
                errors.append(exc)
            finally:
                q.put(None)  # the main thread drains until it has one sentinel per worker

        threads = [
            threading.Thread(target=worker, name=f"download-{i}", daemon=True) for i in range(n)
        ]
        for t in threads:
            t.start()
        live = n
        while live:
            item = q.get()
            if item is None:
                live -= 1
                continue
            self._finish(item)
        if errors:
            raise errors[0]

    def _run_dask(self, keys: list[str]) -> None:
        """Jobs on Dask workers, results published here as they complete (the only writer).

        At most two tasks per worker are queued, so that Ctrl-C or a crash leaves little to
        cancel and the ledger shows which recordings are really in progress.
        """
        from distributed import as_completed

        from confindex.run.executors import ATTEMPT_TOPIC, remote_job
        from confindex.run.job import Job

        cluster = self.bulk.cluster
        client = cluster.client
        options = options_to_dict(self.options)
        in_flight: dict[Any, Row] = {}
        done = as_completed(loop=client.loop)
        run = self.ledger.owner  # tells this run's jobs from other clients' on the scheduler
        starts: dict[str, int] = {}
        names: dict[str, str] = {}  # ledger key → what the log calls it

        def started(event: tuple[float, Any]) -> None:
            """A worker started one of our jobs (called in the Dask client's thread)."""
            msg = event[1]
            if not isinstance(msg, dict) or msg.get("run") != run:
                return
            key = str(msg.get("key"))
            starts[key] = starts.get(key, 0) + 1
            with suppressed(log, "recording a job's start"):
                if starts[key] > 1:
                    # Dask restarted it: the worker that ran it died (killed, out of memory).
                    log.warning(
                        "%s: started again on Dask worker %s (attempt %d): the worker "
                        "running it died",
                        names.get(key, key),
                        msg.get("worker"),
                        starts[key],
                    )
                    self.ledger.count_attempt(key)
                self.ledger.set_activity(key, "transcribing")

        client.subscribe_topic(ATTEMPT_TOPIC, started)

        def submit_more() -> None:
            limit = max(2, 2 * max(1, cluster.worker_count()))
            while len(in_flight) < limit and (row := self._next(keys)) is not None:
                local = self._local_only(row)
                if local is not None:  # already transcribed: index it here, no task
                    self._finish(local)
                    continue
                media_path = None
                if row.kind == "file":
                    media_path = row.source
                elif row.media_path:  # downloaded by an earlier local run
                    media_path = str(self.ws.media_file(row.media_path))
                job = Job(
                    source=row.source,
                    recording=row.recording,
                    media_path=media_path,
                    ydl_extra=dict(self.bulk.ydl_extra),
                )
                announce = {"run": run, "key": row.key}
                names[row.key] = row.recording_id or row.source
                fut = client.submit(remote_job, job, options, announce, pure=False, retries=0)
                in_flight[fut] = row
                done.add(fut)
                log.info("%s: sent to the Dask cluster", row.recording_id or row.source)
                # "transcribing" once a worker says it started (see `started`).
                self._activity(row.key, "queued on the cluster")
                if self.reporter:
                    self.reporter.stage(row.recording_id or row.source, "transcribe")

        try:
            submit_more()
            for fut in done:
                row = in_flight.pop(fut)
                self._collect_dask(fut, row)
                submit_more()
        except BaseException:
            client.cancel(list(in_flight))  # queued work is dropped; finished work is kept
            raise
        finally:
            with suppressed(log, "unsubscribing from the job starts"):
                client.unsubscribe_topic(ATTEMPT_TOPIC)

    def _local_only(self, row: Row) -> Prepared | None:
        """A claimed row that needs no job: its transcript exists (index it here)."""
        if row.stage in (Stage.TRANSCRIBED, Stage.DIARIZED) and transcript_store.exists(
            self.ws, row.recording_id or ""
        ):
            return Prepared(row)
        if (
            row.kind == "url"
            and not self.options.force
            and row.recording_id
            and transcript_store.exists(self.ws, row.recording_id)
        ):
            return Prepared(row)
        return None

    def _collect_dask(self, fut: Any, row: Row) -> None:
        """Record and publish one finished task."""
        from distributed import KilledWorker

        t0 = time.perf_counter()
        try:
            out = fut.result()
        except KilledWorker:
            msg = "Dask workers died running it, more often than the scheduler allows"
            self._failed(row, ConfindexError(f"{msg} (out of memory? a crash?)"), "transcribe", 0)
            return
        except (ModelError, DeviceError):
            self.ledger.release(row.key)
            raise
        except Exception:
            # A bug in the job (expected failures come back as values): stop the run.
            self._bug(row, "transcribe")
            raise
        if "failed" in out:
            self._failed(row, ConfindexError(out["failed"]), "transcribe", 0.0)
            return
        t = Transcript.from_dict(out["transcript"])
        rec = t.recording
        dup_of = self.ledger.record_media(
            row.key,
            media_sha256=rec.media_sha256 or "",
            recording_id=rec.id,
            title=rec.title,
            recording=dataclasses.asdict(rec),
            audio_seconds=rec.duration,
        )
        if dup_of is not None:
            self._result(row, Status.SKIPPED, rec.id, rec.title, reason=f"duplicate of {dup_of}")
            self._handled_add(row.key)
            if self.reporter:
                self.reporter.done(rec.id, Status.SKIPPED, f"duplicate of {dup_of}")
            return
        if not self.options.force and transcript_store.exists(self.ws, rec.id):
            # Another input (or run) transcribed the same recording meanwhile.
            self._finish(Prepared(row))
            return
        row.recording_id = rec.id
        try:
            self.publish(row, t, out.get("worker_seconds"))
        except LedgerError:
            raise
        except EXPECTED as exc:
            self._failed(row, exc, "index", time.perf_counter() - t0)
            return
        except Exception:
            self._bug(row, "publishing")
            raise
        finally:
            self._handled_add(row.key)
        self._result(
            row,
            Status.DONE,
            t.id,
            rec.title,
            audio_seconds=t.duration,
            wall_seconds=out.get("worker_seconds") or 0.0,
            turns=len(t.turns),
        )
        self._results[row.key]["worker"] = out.get("worker")  # which Dask worker did it
        if self.reporter:
            self.reporter.done(t.id, Status.DONE, f"{len(t.turns)} turns")

    def _heartbeat(self) -> None:
        every = max(1.0, min(self.bulk.stale_after / 4, 15.0))
        while not self.stop.wait(every):
            with suppressed(log, "ledger heartbeat"):
                self.ledger.heartbeat()

    @contextlib.contextmanager
    def _sigterm_as_interrupt(self) -> Iterator[None]:
        """SIGTERM (a shutdown, `kill`) stops as cleanly as Ctrl-C does."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        old = signal.signal(signal.SIGTERM, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, old)

    def _activity(self, key: str, activity: str | None) -> None:
        with suppressed(log, f"recording activity {activity!r}"):
            self.ledger.set_activity(key, activity)
        delay = self._delays.get(activity or "")
        if delay:
            time.sleep(delay)

    # -- one recording -----------------------------------------------------------------------

    def _prepare(self, row: Row, reporter: Reporter | None) -> Prepared | None:
        """Download (or hash) a claimed row; None when it ended here (failed, duplicate, done)."""
        t0 = time.perf_counter()
        try:
            if row.stage in (Stage.TRANSCRIBED, Stage.DIARIZED):
                if transcript_store.exists(self.ws, row.recording_id or ""):
                    return Prepared(row)
                row.stage = Stage.QUEUED  # the transcript was deleted: redo from the media
            if row.stage == Stage.DOWNLOADED:
                media = self._media_of(row)
                if media is not None:
                    return Prepared(row, media)
            force = self.options.force
            if (
                row.kind == "url"
                and not force
                and row.recording_id
                and transcript_store.exists(self.ws, row.recording_id)
            ):
                return Prepared(row)  # transcribed before (an earlier version, `transcribe`)
            media = self._obtain(row, reporter)
            rec = media.recording
            sha = rec.media_sha256 or ""
            dup_of = self.ledger.record_media(
                row.key,
                media_sha256=sha,
                recording_id=rec.id,
                title=rec.title,
                media_path=rec.media_path,
                recording=dataclasses.asdict(rec),
                audio_seconds=rec.duration,
            )
            if dup_of is not None:
                relinked = self._relink(dup_of, media)
                self._drop_media(media, rec.id)
                reason = relinked or f"duplicate of {dup_of}"
                self._result(row, Status.SKIPPED, rec.id, rec.title, reason=reason)
                self._handled_add(row.key)
                return None
            row.recording_id = rec.id
            row.stage = Stage.DOWNLOADED
            return Prepared(row, media)
        except LedgerError:
            raise  # the ledger cannot record anything: stop the run, keep what is done
        except EXPECTED as exc:
            self._failed(row, exc, "download", time.perf_counter() - t0)
            return None
        except Exception:
            self._bug(row, "downloading")
            raise

    def _obtain(self, row: Row, reporter: Reporter | None) -> Media:
        from confindex.errors import DownloadError
        from confindex.run.pipeline import obtain_media

        self._activity(row.key, "hashing" if row.kind == "file" else "downloading")
        attempt = 0
        while True:
            try:
                return obtain_media(self.ws, row.source, reporter, self.bulk.ydl_extra)
            except DownloadError as exc:
                # Back off on rate limits, server errors and network trouble (decided on the
                # HTTP status and the kind of failure); anything else fails at once.
                if attempt >= self.bulk.retries or not exc.transient:
                    raise
                delay = self.bulk.backoff * (2**attempt)
                why = f"HTTP {exc.status}" if exc.status else exc.message
                log.warning(
                    "%s: %s; retry %d of %d in %.0f s",
                    row.source,
                    why,
                    attempt + 1,
                    self.bulk.retries,
                    delay,
                )
                if self.stop.wait(delay):
                    raise
                attempt += 1

    def _media_of(self, row: Row) -> Media | None:
        """The media of a row downloaded by an earlier run, if the file is still there."""
        if not row.recording or not row.media_path:
            return None
        rec = Recording(**row.recording)
        path = self.ws.media_file(row.media_path)
        return Media(rec, path) if path is not None and path.is_file() else None

    def _relink(self, rid: str, media: Media) -> str | None:
        """The same content fetched again from a new local path (a moved file): when the
        recording's own media is gone, its media path follows the file (issue 31: it kept the
        dead path and called the file a duplicate of itself). Returns what to report."""
        try:
            new = media.path.resolve()
            if new.is_relative_to(self.ws.media.resolve()) or not new.is_file():
                return None  # a download of ours (dropped next), not a user's file
            t = transcript_store.load(self.ws, rid)
        except (OSError, ValueError, ConfindexError):
            return None
        rec = t.recording
        old = rec.media_path or (rec.source if rec.kind == "file" else None)
        if old:
            p = Path(old).expanduser()
            p = p if p.is_absolute() else self.ws.root / p
            if p.is_file():
                return None  # its media is where it was: a true duplicate
        rec.media_path = str(new)
        self.store.republish(t, "media path updated")
        return f"same content as {rid}, moved: its media path is now {new}"

    def _drop_media(self, media: Media, rid: str) -> None:
        """Delete a downloaded copy we do not need (never a user's own file)."""
        with contextlib.suppress(OSError, ValueError):
            inside = media.path.resolve().is_relative_to(self.ws.media.resolve())
            if inside and not transcript_store.exists(self.ws, rid):
                media.path.unlink()

    def _finish(self, p: Prepared) -> None:
        """Main thread: transcribe (unless already saved), save, index; record each stage."""
        row, t0 = p.row, time.perf_counter()
        step = "transcribe"
        rid = row.recording_id or ""
        try:
            if self.stop.is_set():
                return
            reporter = _LedgerReporter(self, row.key, self.reporter)
            t: Transcript | None = None
            if p.media is None or (
                not self.options.force and transcript_store.exists(self.ws, p.media.recording.id)
            ):
                rid = p.media.recording.id if p.media else rid
                t = transcript_store.load(self.ws, rid)
                # Saved just before a crash, or by an earlier version: exports may be missing.
                missing_stage = row.stage in (Stage.QUEUED, Stage.DOWNLOADED)
                stage = Stage.DIARIZED if self.options.diarize else Stage.TRANSCRIBED

                def index_stage(s: str, rid: str = rid) -> None:
                    nonlocal step
                    step = s
                    reporter.stage(rid, s)

                self.store.settle(
                    t,
                    ledger=self.ledger,
                    key=row.key,
                    stage=stage if missing_stage else None,
                    index=self.options.index,
                    formats=self.options.formats,
                    output_dir=self.options.output_dir,
                    on_stage=index_stage,
                    work_seconds=time.perf_counter() - t0,
                )
                if missing_stage:
                    row.stage = stage
                if not self.options.index:
                    self.ledger.release(row.key)
                fresh = False
            else:
                rid = p.media.recording.id
                t = self.run_job(p, reporter)
                step = "save"
                self.publish(row, t, time.perf_counter() - t0, reporter)
                fresh = True
            status = Status.DONE if fresh else Status.SKIPPED
            self._result(
                row,
                status,
                t.id,
                t.recording.title,
                audio_seconds=t.duration,
                wall_seconds=round(time.perf_counter() - t0, 3),
                turns=len(t.turns),
                reason=None if fresh else "already transcribed",
            )
            if self.reporter:
                msg = f"{len(t.turns)} turns" if fresh else "already transcribed"
                self.reporter.done(t.id, status, msg)
        except LedgerError:
            raise
        except (ModelError, DeviceError):
            # The model or device, not this recording, is at fault: stop the run and leave the
            # row queued, so that the rerun with a working --model/--device picks it up.
            self.ledger.release(row.key)
            raise
        except EXPECTED as exc:
            if isinstance(exc, MediaError) and p.media is not None:
                # Maybe a corrupt download: drop it so that retry-failed fetches it again.
                self._drop_media(p.media, rid)
            self._failed(row, exc, step, time.perf_counter() - t0)
        except Exception:
            self._bug(row, step)
            raise
        finally:
            self._handled_add(row.key)

    def run_job(self, p: Prepared, reporter: Reporter | None) -> Transcript:
        """The job function on a downloaded row (this process: the model stays loaded)."""
        from confindex.run.job import Job, run_job

        assert p.media is not None
        job = Job(
            source=p.row.source,
            recording=dataclasses.asdict(p.media.recording),
            media_path=str(p.media.path),
        )
        return run_job(job, self.options, self.transcriber, reporter)

    def publish(
        self,
        row: Row,
        t: Transcript,
        work_seconds: float | None = None,
        reporter: Reporter | None = None,
    ) -> None:
        """The one writer: transcript, exports, index and this row's ledger stages."""
        self.store.publish(
            t,
            index=self.options.index,
            ledger=self.ledger,
            key=row.key,
            diarized=self.options.diarize,
            work_seconds=work_seconds,
            on_stage=(lambda s: reporter.stage(t.id, s)) if reporter else None,
            formats=self.options.formats,
            output_dir=self.options.output_dir,
        )
        row.stage = (
            Stage.INDEXED
            if self.options.index
            else (Stage.DIARIZED if self.options.diarize else Stage.TRANSCRIBED)
        )
        if not self.options.index:
            self.ledger.release(row.key)

    def _bug(self, row: Row, step: str) -> None:
        """An unexpected exception (a bug, not the recording's fault): log its traceback and
        give the row back untouched, so that the run stops and nothing is marked failed —
        `retry-failed` would otherwise loop on the bug."""
        log.error("unexpected error while %s %s", step, row.source, exc_info=True)
        with suppressed(log, "giving the row back"):
            self.ledger.release(row.key)

    def _failed(self, row: Row, exc: BaseException, step: str, seconds: float) -> None:
        if isinstance(exc, ConfindexError):
            msg = exc.message
        elif isinstance(exc, OSError) and exc.strerror:
            msg = os_error_message(exc)
        else:
            msg = f"{type(exc).__name__}: {exc}"
        with suppressed(log, "recording the failure in the ledger"):
            self.ledger.fail(row.key, msg, step, work_seconds=round(seconds, 3))
        self._handled_add(row.key)
        self._result(row, Status.FAILED, row.recording_id, row.title, error=msg)
        if self.reporter:
            self.reporter.done(row.recording_id or row.source, Status.FAILED, msg)

    def _result(
        self,
        row: Row,
        status: str,
        rid: str | None,
        title: str | None,
        *,
        reason: str | None = None,
        **kw: Any,
    ) -> None:
        o = Outcome(row.source, status, rid, title, **kw)
        self._results[row.key] = {**o.to_dict(), "reason": reason}
        detail = reason or o.error or (f"{o.turns} turns" if o.turns is not None else "")
        log.info("%s: %s%s", rid or row.source, status, f" ({detail})" if detail else "")

    def _collect(self, keys: list[str]) -> list[dict[str, Any]]:
        """One result per input: what this run did, else what the ledger says."""
        out = []
        rows = {r.key: r for r in self.ledger.rows(keys)}
        for k in keys:
            if k in self._results:
                out.append(self._results[k])
                continue
            r = rows.get(k)
            if r is None:
                continue
            if r.stage == Stage.FAILED:
                o = Outcome(r.source, Status.FAILED, r.recording_id, r.title, error=r.error)
                reason = "failed in an earlier run; `confindex retry-failed` tries it again"
            elif r.stage == Stage.DUPLICATE:
                o = Outcome(r.source, Status.SKIPPED, r.recording_id, r.title)
                reason = f"duplicate of {r.duplicate_of}"
            elif r.stage == Stage.INDEXED:
                o = Outcome(r.source, Status.SKIPPED, r.recording_id, r.title)
                o.audio_seconds = r.audio_seconds or 0.0
                reason = (
                    "already indexed"
                    if self._before.get(k) == Stage.INDEXED
                    else "done by another run"
                )
            else:
                o = Outcome(r.source, Status.PENDING, r.recording_id, r.title)
                reason = f"stopped at {r.stage}"
            out.append({**o.to_dict(), "reason": reason})
        return out

    # -- housekeeping ------------------------------------------------------------------------

    def cleanup(self) -> int:
        """Remove temporary files nobody can use any more; returns how many went.

        Staging folders of finished or failed recordings go; a half download of an unfinished
        one stays so that the next run resumes it. Temp files of atomic writes are removed only
        when no other run is active (it could be writing one right now).
        """
        removed = 0
        led = self.ledger
        others = led.live_owners() - {led.owner}
        tmp = self.ws.tmp
        if tmp.is_dir():
            for d in tmp.iterdir():
                if d.name.startswith("dl-"):
                    rows = led.by_recording_id(d.name[3:])
                    # Not in the ledger: maybe `confindex transcribe` is downloading right now.
                    unknown_stale = not others and _age(d) > 3600
                    gone = all(r.terminal for r in rows) if rows else unknown_stale
                    if gone:
                        shutil.rmtree(d, ignore_errors=True)
                        removed += 1
                elif not others:
                    with contextlib.suppress(OSError):
                        shutil.rmtree(d) if d.is_dir() else d.unlink()
                        removed += 1
        if not others:
            from confindex.store.workspace import remove_stale_temps

            for folder in (self.ws.transcripts, self.ws.media, self.ws.index_dir):
                removed += remove_stale_temps(folder)
            for gen in self.ws.index_dir.glob("g-*"):
                removed += remove_stale_temps(gen)
        return removed
