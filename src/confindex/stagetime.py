"""CPU and wall seconds per step of one recording's transcription (issue 33).

`fetch -v` logs them and the transcript keeps them (`provenance.options["stages"]`), so that
users and benches see where the time goes. CPU is the process's (`time.process_time`: every
thread, CTranslate2's and ONNX Runtime's workers included) for a step that runs alone, and the
calling thread's (`time.thread_time`) for a step that runs beside others (`side=True`, e.g.
diarization in its own thread, single-threaded in sherpa-onnx): the process clock would count
the other steps' CPU twice there. Steps that repeat (decoding calls) add up.

A step that runs alone still leaves out the CPU of *side threads* (`side_thread`): a bulk run's
download thread listens to the next recording (decodes, diarizes it) while the main thread
decodes this one, and the process clock counted that work in this recording's steps (its
`flags` read 5.1 CPU s in a bulk run against 0.5 alone). A side step counts the pools its
thread starts through `inherit_side` (diarization's embedding workers: the re-reading of long
turns cost 9.7 CPU s on the 177-s radio clip, as much as sherpa-onnx's pass, and the step read
9.7 CPU s of its 22.0), and a step timed on a side thread is a side step whatever it says.
Native worker threads that a side thread's libraries start (ONNX Runtime's, if given more than
one thread) are not seen.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_side_lock = threading.Lock()
_side_live: dict[int, float] = {}  # a running side thread's ident -> its CPU when it began
_side_ended = 0.0  # CPU s that side threads spent, from their start as such to their end
_pooled: dict[int, float] = {}  # a side thread's ident -> CPU s of the pool workers it started
_thread_clock = getattr(time, "pthread_getcpuclockid", None)  # not on Windows or macOS


def side_thread(fn: F) -> F:
    """`fn` run as side work: while it runs, the calling thread's CPU is left out of the
    steps that other threads time (see the module's docstring)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        global _side_ended
        ident = threading.get_ident()
        with _side_lock:
            nested = ident in _side_live
            if not nested:
                _side_live[ident] = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            if not nested:
                with _side_lock:
                    _side_ended += time.thread_time() - _side_live.pop(ident)
                    _pooled.pop(ident, None)

    return run  # type: ignore[return-value]


def inherit_side(fn: F) -> F:
    """`fn` as side work when the calling thread is a side thread (for the pools it starts:
    diarization's embedding workers), its CPU then counted in that thread's side steps; else
    `fn` itself (a step that runs alone sees its pools on the process clock)."""
    parent = threading.get_ident()
    if not _is_side(parent):
        return fn
    inner = side_thread(fn)

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        c0 = time.thread_time()
        try:
            return inner(*args, **kwargs)
        finally:
            with _side_lock:
                _pooled[parent] = _pooled.get(parent, 0.0) + time.thread_time() - c0

    return run  # type: ignore[return-value]


def _is_side(ident: int) -> bool:
    """Whether the thread `ident` is running side work now (`side_thread`)."""
    with _side_lock:
        return ident in _side_live


def side_cpu(but: int | None = None) -> float:
    """CPU seconds side threads have spent so far (those that ended included), but the thread
    `but`'s."""
    with _side_lock:
        total = _side_ended
        if _thread_clock is not None:
            for ident, began in _side_live.items():
                if ident == but:
                    continue
                # Alive: it leaves the table under this lock before it ends.
                with contextlib.suppress(OSError):
                    total += time.clock_gettime(_thread_clock(ident)) - began
    return total


class StageTimes:
    """Named steps' CPU and wall seconds; safe to feed from several threads."""

    def __init__(self, known: dict[str, Any] | None = None) -> None:
        self._steps: dict[str, list[float]] = {}
        self._side: set[str] = set()
        self._lock = threading.Lock()
        for name, v in (known or {}).items():  # steps measured elsewhere (a download)
            self.add(name, float(v["cpu_s"]), float(v["wall_s"]), bool(v.get("side")))

    @contextmanager
    def step(self, name: str, *, side: bool = False) -> Iterator[None]:
        """Time the block as step `name`; `side`: it runs beside other steps, so only this
        thread's CPU (and its pools') counts. A step on a side thread is always such a step:
        the process clock there counted the main thread's decoding (a bulk run's `audio` step
        of jfk read 0.26 CPU s in 0.13 s of wall)."""
        side = side or _is_side(threading.get_ident())
        clock = _own_thread_time if side else _own_process_time
        c0, w0 = clock(), time.perf_counter()
        try:
            yield
        finally:
            self.add(name, clock() - c0, time.perf_counter() - w0, side)

    def add(self, name: str, cpu: float, wall: float, side: bool = False) -> None:
        with self._lock:
            acc = self._steps.setdefault(name, [0.0, 0.0])
            acc[0] += cpu
            acc[1] += wall
            if side:
                self._side.add(name)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """{step: {"cpu_s", "wall_s"[, "side": True]}} in the order the steps first ran."""
        with self._lock:
            return {
                name: {
                    "cpu_s": round(cpu, 3),
                    "wall_s": round(wall, 3),
                    **({"side": True} if name in self._side else {}),
                }
                for name, (cpu, wall) in self._steps.items()
            }

    def summary(self) -> str:
        """One line: "decode 0.4/0.3 s, diarize 12.1/12.5 s (side), …" (CPU/wall)."""
        return ", ".join(
            f"{name} {v['cpu_s']:.1f}/{v['wall_s']:.1f} s" + (" (side)" if v.get("side") else "")
            for name, v in self.to_dict().items()
        )


def _own_thread_time() -> float:
    """This thread's CPU and its pools' (`inherit_side`): a side step's own work."""
    ident = threading.get_ident()
    with _side_lock:
        pooled = _pooled.get(ident, 0.0)
    return time.thread_time() + pooled


def _own_process_time() -> float:
    """The process's CPU less the side threads' (a step on the main thread, or on any thread
    that is not a side thread)."""
    return time.process_time() - side_cpu(but=threading.get_ident())


@contextmanager
def maybe(times: StageTimes | None, name: str, *, side: bool = False) -> Iterator[None]:
    """`times.step(name)`, or nothing when no one measures."""
    if times is None:
        yield
    else:
        with times.step(name, side=side):
            yield
