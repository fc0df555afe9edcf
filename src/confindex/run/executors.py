"""Where jobs run: in this process (`local`, the default) or on a Dask cluster (`dask`).

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
import sys
import time
from dataclasses import dataclass
from typing import Any

from confindex.errors import ConfindexError, DeviceError, ModelError, os_error_message
from confindex.log import suppressed

log = logging.getLogger("confindex.run.executors")

# Retries of a task whose worker died (Dask's `distributed.scheduler.allowed-failures`).
ALLOWED_FAILURES = 2
CONNECT_TIMEOUT = 10.0  # seconds to reach a scheduler before giving up
# Dask event topic on which a worker says it started a job (see remote_job).
ATTEMPT_TOPIC = "confindex-job-started"


class ExecutorError(ConfindexError):
    """The cluster cannot be started or reached."""


@dataclass
class ExecutorOptions:
    """`--executor`, `--workers`, `--scheduler`."""

    kind: str = "local"  # local | dask
    workers: int | None = None  # LocalCluster worker processes
    scheduler: str | None = None  # tcp://HOST:PORT of a running scheduler
    threads_per_worker: int = 1
    connect_timeout: float = CONNECT_TIMEOUT
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


def _connect(distributed: Any, address: str, timeout: float) -> Any:
    """A Client of the scheduler at `address`, within `timeout` seconds or a
    TimeoutError. Dask's own timeout covers the TCP connect, not the handshake: a port that
    accepts and never answers (not a scheduler) hung `fetch --scheduler` silently. The
    attempt runs in a daemon thread; one past its deadline is left behind, and Client
    destructors of failed attempts are kept off stderr (`_quiet_client_del`)."""
    import threading

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
    from confindex.run.bulk import ENV_STAGE_DELAY, options_from_dict
    from confindex.run.job import cached_transcriber, run_job

    where = _worker_address()
    if announce is not None:
        _announce(announce, where)
    opts = options_from_dict(options)
    _undo_nanny_thread_limits()
    delay = _stage_delay(os.environ.get(ENV_STAGE_DELAY, ""), "transcribing")
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
    if "ctranslate2" in sys.modules:
        return  # too late: OpenMP read them already
    import dask

    preset = dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {}
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        if var in preset and os.environ.get(var) == str(preset[var]):
            del os.environ[var]


def _stage_delay(spec: str, name: str) -> float:
    for part in spec.split(","):
        k, _, v = part.partition("=")
        if k.strip() == name:
            with contextlib.suppress(ValueError):
                return float(v)
    return 0.0
