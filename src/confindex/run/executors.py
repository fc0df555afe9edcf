"""Where jobs run: in this process (`local`, the default) or on a Dask cluster (`dask`).

A bulk run's scheduler (scheduler.py: claims ledger rows, records results, publishes) hands its
rows to one of three executors behind one interface (`Executor.run(runner, keys)`): inline
(download, then transcribe, one row at a time), pipelined (download threads feed the main
thread, which holds the model) and Dask (jobs on workers, published here as they complete).

With Dask, each recording is one task running the job function (job.run_job) on a worker:
the worker downloads the media into a temporary folder, transcribes it with the model it keeps
loaded (one per worker process), and returns the transcript. The client — the process that
runs `confindex fetch` — is the only writer of the workspace: it records results in the ledger
and publishes them as they complete (`as_completed`), so workers need no shared file system
(local files are read by path: on one machine, or on a shared file system).

A worker that dies mid-recording makes Dask run the task again elsewhere, at most
`allowed-failures` times (then it fails as `KilledWorker` and the ledger records it); nothing
is published twice because only the client publishes, once per finished future.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from confindex.errors import ConfindexError, DeviceError, ModelError, os_error_message
from confindex.log import suppressed
from confindex.run.job import Reporter
from confindex.safeio import env_float
from confindex.stagetime import side_thread

if TYPE_CHECKING:
    from confindex.run.fetch import Media
    from confindex.run.job import FetchOptions, Transcriber
    from confindex.store.ledger import Ledger, Row
    from confindex.store.workspace import Workspace

log = logging.getLogger("confindex.run.executors")
_bulk_log = logging.getLogger("confindex.run.bulk")  # a row's stages, as the run's own lines

# Retries of a task whose worker died (Dask's `distributed.scheduler.allowed-failures`).
ALLOWED_FAILURES = 2
CONNECT_TIMEOUT = 10.0  # seconds to reach a scheduler before giving up (README)
CONNECT_TIMEOUT_ENV = "CONFINDEX_SCHEDULER_TIMEOUT"
# Dask event topic on which a worker says it started a job (see remote_job).
ATTEMPT_TOPIC = "confindex-job-started"
DOWNLOADER = "download-"  # PipelinedExecutor's threads' names (cli.main's exit looks)
# Test hook: "indexing=2,transcribing=1" sleeps that long once a stage starts, so that a test
# can kill the process at a known point. Never set in normal use.
ENV_STAGE_DELAY = "CONFINDEX_TEST_STAGE_DELAY"


class ExecutorError(ConfindexError):
    """The cluster cannot be started or reached."""


@dataclass
class ExecutorOptions:
    """`--executor`, `--workers`, `--scheduler`."""

    kind: str = "local"  # local | dask
    workers: int | None = None  # LocalCluster worker processes
    scheduler: str | None = None  # tcp://HOST:PORT of a running scheduler
    threads_per_worker: int = 1
    connect_timeout: float = field(
        default_factory=lambda: env_float(CONNECT_TIMEOUT_ENV, CONNECT_TIMEOUT)
    )
    allowed_failures: int = ALLOWED_FAILURES

    def __post_init__(self) -> None:
        if self.scheduler or self.workers:
            self.kind = "dask"
        if self.kind not in ("local", "dask"):
            raise ExecutorError(f"unknown executor {self.kind!r}: use local or dask")
        if self.scheduler and self.workers:
            raise ExecutorError(
                "--workers starts a cluster on this machine, --scheduler uses a running one: "
                "give one of them"
            )
        if self.workers is not None and self.workers < 1:
            raise ExecutorError("--workers must be at least 1")
        most = max_local_workers()
        if self.workers is not None and self.workers > most:
            # 1,000,000 started worker processes until memory ran out, nothing done.
            raise ExecutorError(
                f"--workers {self.workers} is more than this machine can run: at most {most} "
                f"({os.cpu_count() or 1} cores; each worker loads its own model)"
            )
        if self.scheduler and "://" not in self.scheduler:
            self.scheduler = f"tcp://{self.scheduler}"

    @property
    def is_dask(self) -> bool:
        return self.kind == "dask"


def max_local_workers() -> int:
    """The most LocalCluster workers `--workers` may start: 4 per core."""
    return 4 * (os.cpu_count() or 1)


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ExecutorError(
            "the Dask executor needs the distributed extra: pip install 'confindex[distributed]'"
        ) from None
    return distributed


class DaskCluster:
    """A Dask client, on a LocalCluster it starts or on a running scheduler."""

    def __init__(self, options: ExecutorOptions) -> None:
        self.options = options
        self.client: Any = None
        self.cluster: Any = None

    def start(self) -> DaskCluster:
        distributed = _import_distributed()
        import dask

        o = self.options
        dask.config.set(
            {
                "distributed.scheduler.allowed-failures": o.allowed_failures,
                # Dask's nannies start workers with OMP_NUM_THREADS=1 (and MKL, OpenBLAS):
                # CTranslate2 then decodes with other numerics than a local run (different
                # words on real clips) and slower. And MALLOC_TRIM_THRESHOLD_=65536 turns off
                # glibc's adaptive thresholds: the same job cost 34.2 s CPU instead of 20.6 s
                # (system time 18.8 vs 7.4 s, 178-s clip, base int8; bench/README.md). Workers
                # keep the environment of this run.
                "distributed.nanny.pre-spawn-environ": {},
            }
        )
        if o.scheduler:
            try:
                self.client = _connect(distributed, o.scheduler, o.connect_timeout)
            except (OSError, TimeoutError) as exc:
                raise ExecutorError(
                    f"cannot reach the Dask scheduler at {o.scheduler} "
                    f"({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
                ) from None
            except ValueError as exc:  # a malformed address
                raise ExecutorError(f"bad scheduler address {o.scheduler!r}: {exc}") from None
        else:
            n = o.workers or max(1, (os.cpu_count() or 2) // 2)
            self.cluster = distributed.LocalCluster(
                n_workers=n,
                threads_per_worker=o.threads_per_worker,
                processes=True,
                host="127.0.0.1",
                # No fixed port (8787 may be taken: a warning on stderr), loopback only.
                dashboard_address="127.0.0.1:0",
                silence_logs=logging.WARNING,
            )
            self.client = distributed.Client(self.cluster, set_as_default=False)
        log.info("Dask client %s: %d worker(s)", self.client, self.worker_count())
        return self

    def worker_count(self) -> int:
        with suppressed(log, "asking the scheduler for its workers"):
            return len(self.client.scheduler_info(n_workers=-1).get("workers", {}))
        return 0

    def wait_for_workers(self, n: int = 1, timeout: float = 60.0) -> None:
        try:
            self.client.wait_for_workers(n, timeout=timeout)
        except TimeoutError:
            raise ExecutorError(
                f"the Dask scheduler has no worker after {timeout:.0f} s: start one with "
                f"`dask worker {self.options.scheduler}`"
            ) from None

    def close(self) -> None:
        for thing in (self.client, self.cluster):
            if thing is not None:
                with suppressed(log, f"closing {type(thing).__name__}"):
                    thing.close()


def _check_address(distributed: Any, address: str) -> None:
    """ValueError for an address Dask cannot parse, before any connection attempt: Client()
    found `tcp://[::1` malformed only after retrying for 21 s (measured)."""
    from distributed.comm.addressing import parse_address, parse_host_port

    scheme, location = parse_address(address)
    if scheme in ("tcp", "tls", "ws", "wss"):
        parse_host_port(location)


def _connect(distributed: Any, address: str, timeout: float) -> Any:
    """A Client of the scheduler at `address`, within `timeout` seconds or a
    TimeoutError. Dask's own timeout covers the TCP connect, not the handshake: a port that
    accepts and never answers (not a scheduler) hung `fetch --scheduler` silently. The
    attempt runs in a daemon thread; one past its deadline is left behind, and Client
    destructors of failed attempts are kept off stderr (`_quiet_client_del`)."""
    import threading

    _check_address(distributed, address)
    _quiet_client_del()
    log.info("connecting to the Dask scheduler at %s (at most %.0f s)", address, timeout)
    box: dict[str, Any] = {}

    def attempt() -> None:
        try:
            box["client"] = distributed.Client(address, timeout=f"{timeout}s", set_as_default=False)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    t = threading.Thread(target=attempt, name="confindex-dask-connect", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"no answer within {timeout:.0f} s (is it a Dask scheduler?)")
    if "error" in box:
        raise box["error"]
    return box["client"]


def _quiet_client_del() -> None:
    """Keep "Exception ignored in Client.__del__" off stderr: a Client whose connection failed
    is collected ~20 s later and its destructor raised, printing a traceback after our one-line
    error (`--scheduler` malformed or unreachable). Logged at DEBUG instead."""
    previous = sys.unraisablehook
    if getattr(previous, "_confindex", False):
        return

    def hook(u: Any) -> None:
        where = f"{getattr(u.object, '__qualname__', '')} {getattr(u.object, '__module__', '')}"
        if "Client.__del__" in where or "distributed" in where:
            log.debug("ignored in %s: %r", where, u.exc_value)
            return
        previous(u)

    hook._confindex = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook


# --------------------------------------------------------------------------------- worker side


def remote_job(
    job: Any, options: dict[str, Any], announce: dict[str, str] | None = None
) -> dict[str, Any]:
    """Runs on a Dask worker: the job function with this process's cached model. Returns the
    transcript as a dict (plain data: any worker's Python can send it back).

    `announce` ({"run": …, "key": …}) is sent to the client as a Dask event (`ATTEMPT_TOPIC`)
    when the job starts here: the client learns that the recording is really being worked on,
    and counts a start after a dead worker's as one more attempt in the ledger.

    Expected failures (a bad file, a dead link) come back as `{"failed": message}`, so that the
    client records them; anything else is a bug and propagates.
    """
    from confindex.run.job import FetchOptions, cached_transcriber, run_job

    where = _worker_address()
    if announce is not None:
        _announce(announce, where)
    opts = FetchOptions.from_dict(options)
    _undo_nanny_thread_limits()
    delay = stage_delays().get("transcribing", 0.0)
    if delay:  # test hook: lets a test kill this worker at a known moment
        time.sleep(delay)
    t0 = time.perf_counter()
    try:
        t = run_job(job, opts, cached_transcriber(opts))
    except (ModelError, DeviceError):
        raise  # the model or device is at fault, not the recording: the client stops the run
    except ConfindexError as exc:
        return {"failed": exc.message, "kind": type(exc).__name__}
    except OSError as exc:
        return {"failed": os_error_message(exc), "kind": "OSError"}
    return {
        "transcript": t.to_dict(),
        "worker_seconds": round(time.perf_counter() - t0, 3),
        "pid": os.getpid(),
        "worker": where,
    }


def _worker_address() -> str | None:
    """This Dask worker's address (tcp://HOST:PORT), None outside a worker."""
    from distributed import get_worker

    try:
        return str(get_worker().address)
    except ValueError:  # not running in a worker
        return None


def _announce(what: dict[str, str], where: str | None) -> None:
    from distributed import get_worker

    with suppressed(log, "announcing the job's start to the client"):
        get_worker().log_event(ATTEMPT_TOPIC, {**what, "pid": os.getpid(), "worker": where})


def _undo_nanny_thread_limits() -> None:
    """Before the model's libraries load in this worker, drop the thread limits a Dask nanny
    set (OMP_NUM_THREADS=1, …): they change CTranslate2's numerics (other words than a local
    run) and slow it down. A value the user set differently is kept."""
    from confindex.speech.decoder import runtime_loaded

    if runtime_loaded():
        return  # too late: OpenMP read them already
    import dask

    preset = dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {}
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        if var in preset and os.environ.get(var) == str(preset[var]):
            del os.environ[var]


# ------------------------------------------------------------------------ a bulk run's executors


@dataclass
class Prepared:
    """A claimed row, ready for the main thread: media to transcribe, or a saved transcript."""

    row: Row
    media: Media | None = None


class Runner(Protocol):
    """What an executor uses of the scheduler (scheduler.BulkRunner)."""

    ws: Workspace
    options: FetchOptions
    ledger: Ledger
    reporter: Reporter | None
    stop: threading.Event
    ydl_extra: dict[str, Any]
    transcriber: Transcriber

    def next_row(self, keys: list[str]) -> Row | None: ...
    def prepare(self, row: Row, reporter: Reporter | None) -> Prepared | None: ...
    def finish(self, p: Prepared) -> None: ...
    def local_only(self, row: Row) -> Prepared | None: ...
    def finish_remote(self, row: Row, out: dict[str, Any]) -> None: ...
    def failed(self, row: Row, exc: BaseException, step: str, seconds: float) -> None: ...
    def bug(self, row: Row, step: str) -> None: ...
    def activity(self, key: str, activity: str | None) -> None: ...


_ACTIVITY = {
    "download": "downloading",
    "decode": "decoding",
    "transcribe": "transcribing",
    "diarize": "diarizing",
    "index": "indexing",
    "embed": "embedding",
}


def stage_delays() -> dict[str, float]:
    out: dict[str, float] = {}
    for part in os.environ.get(ENV_STAGE_DELAY, "").split(","):
        name, _, secs = part.partition("=")
        with contextlib.suppress(ValueError):
            out[name.strip()] = float(secs)
    return out


class LedgerReporter(Reporter):
    """Records the current activity of a row in the ledger and forwards to the user's reporter."""

    def __init__(self, runner: Runner, key: str, inner: Reporter | None) -> None:
        self.runner, self.key, self.inner = runner, key, inner

    def stage(self, recording_id: str, stage: str, total: float | None = None) -> None:
        self.runner.activity(self.key, _ACTIVITY.get(stage, stage))
        _bulk_log.info("%s: %s", recording_id or self.key, stage)
        if self.inner:
            self.inner.stage(recording_id, stage, total)

    def advance(self, done: float, total: float | None = None) -> None:
        if self.inner:
            self.inner.advance(done, total)

    def done(self, recording_id: str, status: str, message: str = "") -> None:
        if self.inner:
            self.inner.done(recording_id, status, message)


class Executor(Protocol):
    name: str

    def run(self, runner: Runner, keys: list[str]) -> None:
        """Take rows of `keys` from the runner until none is left (or it stops)."""


class InlineExecutor:
    """Download (or hash), then transcribe, one row at a time, in this thread."""

    name = "local"

    def run(self, runner: Runner, keys: list[str]) -> None:
        while (row := runner.next_row(keys)) is not None:
            prepared = runner.prepare(row, runner.reporter)
            if prepared is not None:
                runner.finish(prepared)


class PipelinedExecutor:
    """`workers` download threads claim rows, download them, listen to them ahead (decode,
    diarize, VADs) and feed a bounded queue; this thread transcribes, saves and indexes them."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def run(self, runner: Runner, keys: list[str]) -> None:
        n = self.workers
        q: queue.Queue[Prepared | None] = queue.Queue(maxsize=n)
        errors: list[BaseException] = []

        def worker() -> None:
            # A reporter written before `side` existed (duck-typed) shows no downloads.
            make_side = getattr(runner.reporter, "side", None)
            side = make_side() if make_side is not None else None
            try:
                while (row := runner.next_row(keys)) is not None:
                    try:
                        prepared = runner.prepare(row, side)
                        # No ledger here (a "60-s wait" blamed on it: ledger_rows._enter_wal)
                        if prepared is not None and prepared.media and not runner.stop.is_set():
                            runner.transcriber.listen_ahead(prepared.media, runner.ws, side)
                    finally:
                        if side is not None:
                            side.done(row.recording_id or row.source, "")
                    if prepared is None:
                        continue
                    while not runner.stop.is_set():
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
            threading.Thread(target=side_thread(worker), name=f"{DOWNLOADER}{i}", daemon=True)
            for i in range(n)
        ]
        for t in threads:
            t.start()
        live = n
        while live:
            item = q.get()
            if item is None:
                live -= 1
                continue
            runner.finish(item)
        if errors:
            raise errors[0]


class DaskExecutor:
    """Jobs on Dask workers, results published here as they complete (the only writer).

    At most two tasks per worker are queued, so that Ctrl-C or a crash leaves little to cancel
    and the ledger shows which recordings are really in progress.
    """

    name = "dask"

    def __init__(self, cluster: DaskCluster) -> None:
        self.cluster = cluster

    def run(self, runner: Runner, keys: list[str]) -> None:
        from distributed import as_completed

        from confindex.run.job import Job

        cluster = self.cluster
        client = cluster.client
        options = runner.options.to_dict()
        in_flight: dict[Any, Row] = {}
        done = as_completed(loop=client.loop)
        run = runner.ledger.owner  # tells this run's jobs from other clients' on the scheduler
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
                    runner.ledger.count_attempt(key)
                runner.ledger.set_activity(key, "transcribing")

        client.subscribe_topic(ATTEMPT_TOPIC, started)

        def submit_more() -> None:
            limit = max(2, 2 * max(1, cluster.worker_count()))
            while len(in_flight) < limit and (row := runner.next_row(keys)) is not None:
                local = runner.local_only(row)
                if local is not None:  # already transcribed: index it here, no task
                    runner.finish(local)
                    continue
                media_path = None
                if row.kind == "file":
                    media_path = row.source
                elif row.media_path:  # downloaded by an earlier local run
                    media_path = str(runner.ws.media_file(row.media_path))
                job = Job(
                    source=row.source,
                    recording=row.recording,
                    media_path=media_path,
                    ydl_extra=dict(runner.ydl_extra),
                )
                announce = {"run": run, "key": row.key}
                names[row.key] = row.recording_id or row.source
                fut = client.submit(remote_job, job, options, announce, pure=False, retries=0)
                in_flight[fut] = row
                done.add(fut)
                log.info("%s: sent to the Dask cluster", row.recording_id or row.source)
                # "transcribing" once a worker says it started (see `started`).
                runner.activity(row.key, "queued on the cluster")
                if runner.reporter:
                    runner.reporter.stage(row.recording_id or row.source, "transcribe")

        try:
            submit_more()
            for fut in done:
                row = in_flight.pop(fut)
                self._collect(runner, fut, row)
                submit_more()
        except BaseException:
            client.cancel(list(in_flight))  # queued work is dropped; finished work is kept
            raise
        finally:
            with suppressed(log, "unsubscribing from the job starts"):
                client.unsubscribe_topic(ATTEMPT_TOPIC)

    @staticmethod
    def _collect(runner: Runner, fut: Any, row: Row) -> None:
        """One finished task: a failure recorded, or the transcript handed to the runner."""
        from distributed import KilledWorker

        try:
            out = fut.result()
        except KilledWorker:
            msg = "Dask workers died running it, more often than the scheduler allows"
            runner.failed(row, ConfindexError(f"{msg} (out of memory? a crash?)"), "transcribe", 0)
            return
        except (ModelError, DeviceError):
            runner.ledger.release(row.key)
            raise
        except Exception:
            # A bug in the job (expected failures come back as values): stop the run.
            runner.bug(row, "transcribe")
            raise
        if "failed" in out:
            runner.failed(row, ConfindexError(out["failed"]), "transcribe", 0.0)
            return
        runner.finish_remote(row, out)


def executor_for(download_workers: int, cluster: DaskCluster | None) -> Executor:
    """The executor of a bulk run: Dask with a cluster, else pipelined downloads with
    `download_workers` > 0, else inline."""
    if cluster is not None:
        return DaskExecutor(cluster)
    if download_workers > 0:
        return PipelinedExecutor(download_workers)
    return InlineExecutor()
