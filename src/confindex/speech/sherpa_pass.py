"""sherpa-onnx's diarization pass (segmentation, embeddings, clustering), in this process or, for
diarization that runs beside other work, in a child process.

sherpa-onnx's Python binding holds the GIL for the whole of `OfflineSpeakerDiarization.process`
(no `gil_scoped_release`, unlike its embedding extractor's `compute`; its C API, which ctypes
would call without the GIL, has no `window_shift_ratio`, which we tune). In a thread beside
other work it stops every other Python thread for its whole length (~26 s per 10 min of
audio): a pure-Python loop on the main thread ran at 3% of its speed meanwhile, and a bulk
run's main thread, decoding recording N while its download thread diarized N+1, got the GIL
back only at each progress callback (its `flags` step: 0.5 CPU s in 5-11 s of wall).

So a thread other than the main one hands the pass to one child process (spawned once, kept
for the run; its pipelines are cached there as in-process), which gives the same segments:
the same library, models and settings (tests/test_sherpa_pass.py). The main thread (nothing
runs beside it), Windows and `CONFINDEX_DIARIZE_PROCESS=0` keep the pass in-process, as
before. Only the pass moves: re-reading, overlap and voiceprints use
the embedding extractor, which releases the GIL.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confindex.speech.diarize_options import DiarizationError, DiarizeOptions
from confindex.store.transcript import SpeakerSegment

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    import numpy as np
    import sherpa_onnx

log = logging.getLogger("confindex.speech.diarize")

ENV = "CONFINDEX_DIARIZE_PROCESS"  # "0": never a child process


def sherpa_pass(
    options: DiarizeOptions,
    num_clusters: int,
    audio: np.ndarray,
    progress: Callable[[int, int], Any] | None,
) -> list[SpeakerSegment]:
    """sherpa-onnx's segments of 16 kHz float32 `audio` by start time, labelled "#k" by
    cluster; in the child process when `in_child()`. Callers hold diarize._LOCK."""
    if in_child():
        try:
            return _CHILD.run(options, num_clusters, audio, progress)
        except _NoChild as exc:  # the GIL held as before, but the recording is diarized
            log.warning("diarizing in this process: %s", exc)
    return process(pipeline(options, num_clusters), audio, progress)


class _NoChild(Exception):
    """The child process cannot be started, or ended before it served one pass."""


def child_cpu() -> float:
    """CPU seconds the child process has spent on passes so far (stage timings add it)."""
    return _CHILD.cpu


def in_child() -> bool:
    """Whether this thread's pass goes to the child process: a thread other than the main one
    (others run beside it), unless $CONFINDEX_DIARIZE_PROCESS is 0."""
    if os.environ.get(ENV, "").strip() == "0" or os.name != "posix":  # pass_fds: POSIX
        return False
    # On the main thread nothing else runs meanwhile: no process to pay for.
    return threading.current_thread() is not threading.main_thread()


# Loaded pipelines (in the process that runs the pass), keyed by what sherpa-onnx fixes at
# construction time (clustering can be changed afterwards with set_config). Callers hold
# diarize._LOCK: one pipeline object must not run two recordings at once.
_CACHE: dict[tuple[Any, ...], sherpa_onnx.OfflineSpeakerDiarization] = {}


def _config(
    options: DiarizeOptions, num_clusters: int
) -> sherpa_onnx.OfflineSpeakerDiarizationConfig:
    import sherpa_onnx

    seg, emb = options.model_paths()
    threads = options.threads()
    return sherpa_onnx.OfflineSpeakerDiarizationConfig(
        segmentation=sherpa_onnx.OfflineSpeakerSegmentationModelConfig(
            pyannote=sherpa_onnx.OfflineSpeakerSegmentationPyannoteModelConfig(
                model=str(seg), window_shift_ratio=options.window_shift
            ),
            num_threads=threads,
        ),
        embedding=sherpa_onnx.SpeakerEmbeddingExtractorConfig(model=str(emb), num_threads=threads),
        clustering=sherpa_onnx.FastClusteringConfig(
            num_clusters=num_clusters, threshold=options.threshold
        ),
        min_duration_on=options.min_duration_on,
        min_duration_off=options.min_duration_off,
    )


def pipeline(options: DiarizeOptions, num_clusters: int) -> sherpa_onnx.OfflineSpeakerDiarization:
    """The cached pipeline for `options`, its clustering set to `num_clusters` (-1: threshold)."""
    import sherpa_onnx

    config = _config(options, num_clusters)
    seg, emb = options.model_paths()
    key = (
        str(seg.resolve()),
        str(emb.resolve()),
        options.threads(),
        options.min_duration_on,
        options.min_duration_off,
        options.window_shift,
    )
    sd = _CACHE.get(key)
    if sd is None:
        if not config.validate():
            raise DiarizationError(f"sherpa-onnx rejected the diarization models in {seg.parent}")
        try:
            sd = sherpa_onnx.OfflineSpeakerDiarization(config)
        except Exception as exc:  # a file that is not a suitable ONNX model
            msg = " ".join(str(exc).split())[:200]
            raise DiarizationError(
                f"cannot load diarization models from {seg.parent}: {msg}"
            ) from None
        _CACHE[key] = sd
    else:
        sd.set_config(config)  # only the clustering part is taken, which is all that varies
    return sd


def process(
    sd: sherpa_onnx.OfflineSpeakerDiarization,
    audio: np.ndarray,
    progress: Callable[[int, int], Any] | None,
) -> list[SpeakerSegment]:
    def callback(done: int, total: int) -> int:
        if progress is not None:
            progress(done, total)
        return 0  # non-zero would abort

    result = sd.process(audio, callback=callback).sort_by_start_time()
    return [SpeakerSegment(float(s.start), float(s.end), f"#{s.speaker}") for s in result]


class _Child:
    """One child process (`python -m confindex.speech.sherpa_pass FD`) that runs passes one at
    a time over a socket pair; callers hold diarize._LOCK. Not multiprocessing's spawn: it
    imports the parent's main module again, which runs a user's unguarded script twice."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.conn: Connection | None = None
        self.cpu = 0.0  # CPU s of the passes run there (the process clock sees none of it)
        self.served = 0  # passes the current child has answered

    def _start(self) -> Connection:
        from multiprocessing.connection import Connection

        # The child imports confindex from where this process did (a script may have put it on
        # sys.path itself).
        here_pkg = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (here_pkg, os.environ.get("PYTHONPATH", "")) if p)
        here, there = socket.socketpair()
        try:
            self.proc = subprocess.Popen(
                [sys.executable or "python3", "-m", __name__, str(there.fileno())],
                pass_fds=(there.fileno(),),
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": path},
                start_new_session=True,  # Ctrl-C goes to the parent, which ends us by closing
            )
        except OSError as exc:
            here.close()
            raise _NoChild(f"cannot start {sys.executable!r}: {exc.strerror or exc}") from None
        finally:
            there.close()
        self.served = 0
        self.conn = Connection(here.detach())
        log.debug("diarization pass in child process %s", self.proc.pid)
        return self.conn

    def run(
        self,
        options: DiarizeOptions,
        num_clusters: int,
        audio: np.ndarray,
        progress: Callable[[int, int], Any] | None,
    ) -> list[SpeakerSegment]:
        import numpy as np

        audio = np.ascontiguousarray(audio, dtype=np.float32)
        alive = self.proc is not None and self.proc.poll() is None and self.conn is not None
        conn = self.conn if alive and self.conn is not None else self._start()
        try:
            conn.send((options, num_clusters, len(audio)))
            conn.send_bytes(memoryview(audio).cast("B"))
            while True:
                kind, value = conn.recv()
                if kind == "progress":
                    if progress is not None:
                        progress(*value)
                elif kind == "done":
                    segments, cpu = value
                    self.cpu += cpu
                    self.served += 1
                    return segments
                else:  # "error": the exception the pass raised there (the child goes on)
                    raise value
        except DiarizationError:
            raise
        except (EOFError, OSError):
            code = self.proc.poll() if self.proc is not None else None
            first = self.served == 0
            self.close()
            if first:  # it could not even start serving (e.g. it cannot import us)
                raise _NoChild(
                    f"the diarization process ended at once (exit code {code})"
                ) from None
            raise DiarizationError(
                f"the diarization process ended unexpectedly (exit code {code})"
            ) from None
        except BaseException:  # a progress callback's error: the pipe holds a half-read reply
            self.close()
            raise

    def close(self) -> None:
        """End the child: it reads the end of its socket and leaves."""
        if self.conn is not None:
            self.conn.close()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=0.5)  # idle, it leaves at once
            except subprocess.TimeoutExpired:  # inside a pass nobody waits for any more
                self.proc.kill()
                self.proc.wait()
        self.proc = self.conn = None


_CHILD = _Child()
atexit.register(_CHILD.close)


def _serve(conn: Connection) -> None:
    """The child: one pass per request until the parent closes its end."""
    import numpy as np

    while True:
        try:
            options, n_clusters, n = conn.recv()
            audio = np.frombuffer(conn.recv_bytes(), dtype=np.float32, count=n)
        except (EOFError, OSError):
            return  # the parent is gone
        try:

            def progress(done: int, total: int) -> None:
                conn.send(("progress", (done, total)))

            c0 = time.process_time()
            segments = process(pipeline(options, n_clusters), audio, progress)
            reply: tuple[str, Any] = ("done", (segments, time.process_time() - c0))
        except Exception as exc:  # the parent raises it
            reply = (
                "error",
                exc
                if isinstance(exc, DiarizationError)
                else DiarizationError(f"diarization failed: {' '.join(str(exc).split())[:200]}"),
            )
        try:
            conn.send(reply)
        except (OSError, BrokenPipeError):
            return


if __name__ == "__main__":
    from multiprocessing.connection import Connection as _Connection

    _serve(_Connection(int(sys.argv[1])))
