"""CPU and wall seconds per step of one recording's transcription (issue 33).

`fetch -v` logs them and the transcript keeps them (`provenance.options["stages"]`), so that
users and benches see where the time goes. CPU is the process's (`time.process_time`: every
thread, CTranslate2's and ONNX Runtime's workers included) for a step that runs alone, and the
calling thread's (`time.thread_time`) for a step that runs beside others (`side=True`, e.g.
diarization in its own thread, single-threaded in sherpa-onnx): the process clock would count
the other steps' CPU twice there. Steps that repeat (decoding calls) add up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


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
        clock = time.thread_time if side else time.process_time
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


@contextmanager
def maybe(times: StageTimes | None, name: str, *, side: bool = False) -> Iterator[None]:
    """`times.step(name)`, or nothing when no one measures."""
    if times is None:
        yield
    else:
        with times.step(name, side=side):
            yield
