"""The scheduler of a bulk run: many recordings, unattended, resumable, each transcribed and
indexed once.

Every `fetch` goes through here. The inputs become rows of the ledger (ledger.py); an executor
(executors.py: inline, pipelined, or Dask) takes the rows this scheduler lets it claim;
results are recorded here and published through the Store, the one writer. Each
finished stage is recorded at once, so a crash, Ctrl-C or reboot costs at most the recording in
progress, and rerunning the same command (or `confindex resume`) picks up from the ledger.

Stage checkpoints: `downloaded` when the media file is whole in media/ (yt-dlp writes into a
private staging folder, resumable); `transcribed`/`diarized` when the transcript JSON and its
exports are saved (speech recognition and diarization are one checkpoint: the transcript is
written once both are done); `indexed` when the index has it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from confindex.errors import ConfindexError, DeviceError, MediaError, ModelError, os_error_message
from confindex.log import suppressed
from confindex.run.executors import (
    DaskCluster,
    LedgerReporter,
    Prepared,
    executor_for,
    stage_delays,
)
from confindex.run.fetch import Media
from confindex.run.inputs import WorkItem
from confindex.run.job import FetchOptions, Reporter, Transcriber
from confindex.run.outcome import RunResult, RunSummary
from confindex.safeio import env_float
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
RETRY_WAIT, RETRY_WAIT_ENV = 5.0, "CONFINDEX_RETRY_WAIT"  # seconds before the first retry


@dataclass
class BulkOptions:
    """How the bulk runner schedules work (not how a recording is transcribed)."""

    download_workers: int = 1  # 0 = no pipelining: download in the main thread, then transcribe
    ydl_extra: dict[str, Any] = field(default_factory=dict)  # politeness: sleep, rate, cookies
    retries: int = 3  # extra download attempts on HTTP 429/5xx and network errors
    # Seconds before the first retry; doubles each time.
    backoff: float = field(default_factory=lambda: env_float(RETRY_WAIT_ENV, RETRY_WAIT))
    stale_after: float = STALE_AFTER
    # A started executors.DaskCluster: jobs run on its workers, this process publishes.
    cluster: DaskCluster | None = None


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
        self._delays = stage_delays()
        self._handled: set[str] = set()  # keys this run finished or gave up (not re-claimed)
        self._handled_lock = threading.Lock()
        self._results: dict[str, RunResult] = {}
        self.ydl_extra = self.bulk.ydl_extra
        self.executor = executor_for(self.bulk.download_workers, self.bulk.cluster)
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
                    self._results[it.key] = self._outcome(
                        it.source, Status.FAILED, it.recording_id, it.title, error=it.error
                    )
            if self.options.force:
                led.reset(keys)
            else:
                self.store.reconcile(self.ledger, keys, index=self.options.index)
        else:
            keys = [r.key for r in led.rows() if not r.terminal]
        self._before = {r.key: r.stage for r in led.rows(keys)}
        opts = {**self.options.to_dict(), "download_workers": self.bulk.download_workers}
        run_id = led.start_run({**opts, "executor": self.executor.name})
        where = "this machine" if self.bulk.cluster is None else "the Dask cluster"
        log.info("run %s: %d recording(s) on %s", run_id, len(keys), where)
        beat = threading.Thread(target=self._heartbeat, name="ledger-heartbeat", daemon=True)
        beat.start()
        interrupted = False
        try:
            with self._sigterm_as_interrupt():
                self.executor.run(self, keys)
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
                log.debug("collecting the results from the ledger failed", exc_info=True)
                results = list(self._results.values())
            summary = RunSummary(results, time.perf_counter() - t0, interrupted)
            with suppressed(log, "recording the run's summary"):
                led.finish_run(run_id, summary.to_dict())
            self.summary = summary
            led.close()
        return summary

    # -- scheduling --------------------------------------------------------------------------

    def _wanted(self, keys: list[str]) -> list[str]:
        with self._handled_lock:
            return [k for k in keys if k not in self._handled]

    def _handled_add(self, key: str) -> None:
        with self._handled_lock:
            self._handled.add(key)

    def next_row(self, keys: list[str]) -> Row | None:
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

    def local_only(self, row: Row) -> Prepared | None:
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

    def finish_remote(self, row: Row, out: dict[str, Any]) -> None:
        """Record and publish the transcript a Dask worker returned for `row`."""
        t0 = time.perf_counter()
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
            self.finish(Prepared(row))
            return
        row.recording_id = rec.id
        try:
            self.publish(row, t, out.get("worker_seconds"))
        except LedgerError:
            raise
        except EXPECTED as exc:
            self.failed(row, exc, "index", time.perf_counter() - t0)
            return
        except Exception:
            self.bug(row, "publishing")
            raise
        finally:
            self._handled_add(row.key)
        o = self._result(
            row,
            Status.DONE,
            t.id,
            rec.title,
            audio_seconds=t.duration,
            wall_seconds=out.get("worker_seconds") or 0.0,
            turns=len(t.turns),
        )
        o.worker = out.get("worker")  # which Dask worker did it
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

    def activity(self, key: str, activity: str | None) -> None:
        with suppressed(log, f"recording activity {activity!r}"):
            self.ledger.set_activity(key, activity)
        delay = self._delays.get(activity or "")
        if delay:
            time.sleep(delay)

    # -- one recording -----------------------------------------------------------------------

    def prepare(self, row: Row, reporter: Reporter | None) -> Prepared | None:
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
            self.failed(row, exc, "download", time.perf_counter() - t0)
            return None
        except Exception:
            self.bug(row, "downloading")
            raise

    def _obtain(self, row: Row, reporter: Reporter | None) -> Media:
        from confindex.errors import DownloadError
        from confindex.run.pipeline import obtain_media

        self.activity(row.key, "hashing" if row.kind == "file" else "downloading")
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
        """Same content fetched from a new local path (a moved file): when the recording's media
        is gone, it follows the file (it was called a duplicate of itself). What to report."""
        from pathlib import Path

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
        if rec.kind == "file":  # fetched from here now: the source the web may serve (#30)
            rec.source = str(new)
        self.store.republish(t, "media path updated")
        return f"same content as {rid}, moved: its media path is now {new}"

    def _drop_media(self, media: Media, rid: str) -> None:
        """Delete a downloaded copy we do not need (never a user's own file)."""
        with contextlib.suppress(OSError, ValueError):
            inside = media.path.resolve().is_relative_to(self.ws.media.resolve())
            if inside and not transcript_store.exists(self.ws, rid):
                media.path.unlink()

    def finish(self, p: Prepared) -> None:
        """Main thread: transcribe (unless already saved), save, index; record each stage."""
        row, t0 = p.row, time.perf_counter()
        step = "transcribe"
        rid = row.recording_id or ""
        try:
            if self.stop.is_set():
                return
            reporter = LedgerReporter(self, row.key, self.reporter)
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
                    started=t0,
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
            self.failed(row, exc, step, time.perf_counter() - t0)
        except Exception:
            self.bug(row, step)
            raise
        finally:
            self._handled_add(row.key)
            if p.media is not None:  # heard ahead and then not transcribed: not kept to the end
                self.transcriber.drop_ahead(p.media)

    def run_job(self, p: Prepared, reporter: Reporter | None) -> Transcript:
        """The job function on a downloaded row (this process: the model stays loaded)."""
        from confindex.run.job import Job, run_job

        assert p.media is not None
        job = Job(
            source=p.row.source,
            recording=dataclasses.asdict(p.media.recording),
            media_path=str(p.media.path),
            timings=p.media.timings,
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
        c0, w0 = time.process_time(), time.perf_counter()
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
            keep_edits=self.options.keep_edits,
        )
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        log.info("%s: publish %.1f/%.1f s (CPU/wall; exports, index)", t.id, cpu, wall)
        stage = Stage.DIARIZED if self.options.diarize else Stage.TRANSCRIBED
        row.stage = Stage.INDEXED if self.options.index else stage
        if not self.options.index:
            self.ledger.release(row.key)

    def bug(self, row: Row, step: str) -> None:
        """An unexpected exception (a bug, not the recording's fault): log its traceback and
        give the row back untouched, so that the run stops and nothing is marked failed —
        `retry-failed` would otherwise loop on the bug."""
        log.error("unexpected error while %s %s", step, row.source, exc_info=True)
        with suppressed(log, "giving the row back"):
            self.ledger.release(row.key)

    def failed(self, row: Row, exc: BaseException, step: str, seconds: float) -> None:
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

    def _outcome(self, source: str, status: str, *a: Any, **kw: Any) -> RunResult:
        return RunResult(source, status, *a, on_cluster=self.bulk.cluster is not None, **kw)

    def _result(
        self,
        row: Row,
        status: str,
        rid: str | None,
        title: str | None,
        *,
        reason: str | None = None,
        **kw: Any,
    ) -> RunResult:
        o = self._outcome(row.source, status, rid, title, reason=reason, **kw)
        self._results[row.key] = o
        detail = reason or o.error or (f"{o.turns} turns" if o.turns is not None else "")
        log.info("%s: %s%s", rid or row.source, status, f" ({detail})" if detail else "")
        return o

    def _collect(self, keys: list[str]) -> list[RunResult]:
        """One result per input: what this run did, else what the ledger says."""
        out = []
        rows = {r.key: r for r in self.ledger.rows(keys)}
        for k in keys:
            r, o = rows.get(k), self._results.get(k)
            # A duplicate of a row that failed after it was taken failed with it (`fail`).
            if o and not (o.status == Status.SKIPPED and r and r.stage == Stage.FAILED):
                out.append(o)
                continue
            if r is None:
                continue
            if r.stage == Stage.FAILED:
                earlier = o is None  # not a duplicate of one that failed in this run
                o = self._outcome(r.source, Status.FAILED, r.recording_id, r.title, error=r.error)
                o.reason = "failed in an earlier run; `confindex retry-failed` tries it again"
                o.reason = o.reason if earlier else None
            elif r.stage == Stage.DUPLICATE:
                o = self._outcome(r.source, Status.SKIPPED, r.recording_id, r.title)
                o.reason = f"duplicate of {r.duplicate_of}"
            elif r.stage == Stage.INDEXED:
                o = self._outcome(r.source, Status.SKIPPED, r.recording_id, r.title)
                o.audio_seconds = r.audio_seconds or 0.0
                o.reason = (
                    "already indexed"
                    if self._before.get(k) == Stage.INDEXED
                    else "done by another run"
                )
            else:
                o = self._outcome(r.source, Status.PENDING, r.recording_id, r.title)
                o.reason = f"stopped at {r.stage}"
            out.append(o)
        return out

    # -- housekeeping ------------------------------------------------------------------------

    def cleanup(self) -> int:
        """Remove temporary files nobody can use any more (see `Store.cleanup`)."""
        return self.store.cleanup(self.ledger)
