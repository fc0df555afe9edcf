"""Per-step CPU seconds (stagetime.py, issue 33) leave out side threads' work: a bulk run's
download thread listens to the next recording while the main thread decodes this one."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from confindex import stagetime
from confindex.stagetime import StageTimes, inherit_side, side_thread

needs_thread_clock = pytest.mark.skipif(
    not hasattr(time, "pthread_getcpuclockid"), reason="no per-thread CPU clock here"
)


def _burn(seconds: float) -> None:
    """Busy this thread for `seconds` of its own CPU."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        sum(range(200))


@needs_thread_clock
def test_a_step_leaves_out_what_a_side_thread_spends_meanwhile() -> None:
    times = StageTimes()
    started = threading.Event()

    @side_thread
    def listen_ahead() -> None:  # as the download thread of a bulk run
        started.set()
        _burn(0.6)

    other = threading.Thread(target=listen_ahead)
    other.start()
    started.wait()
    with times.step("flags"):
        _burn(0.3)
    other.join()
    cpu = times.to_dict()["flags"]["cpu_s"]
    # The process clock gave 0.3 + up to 0.6 here.
    assert 0.25 <= cpu <= 0.4, cpu


@needs_thread_clock
def test_a_side_thread_that_ends_during_a_step_is_left_out_too() -> None:
    times = StageTimes()
    with times.step("decoding"):
        t = threading.Thread(target=side_thread(_burn), args=(0.4,))
        t.start()
        t.join()
        _burn(0.2)
    cpu = times.to_dict()["decoding"]["cpu_s"]
    assert 0.15 <= cpu <= 0.3, cpu


def test_a_step_counts_its_own_worker_threads() -> None:
    """Threads a step starts itself (as CTranslate2's workers) are its own CPU."""
    times = StageTimes()
    with times.step("decoding"), ThreadPoolExecutor(2) as pool:
        list(pool.map(_burn, [0.2, 0.2]))
    assert times.to_dict()["decoding"]["cpu_s"] >= 0.35


@needs_thread_clock
def test_pools_started_by_a_side_thread_are_side_and_others_are_not() -> None:
    def embed_all(n: int) -> None:  # diarization's embedding workers
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(inherit_side(_burn), [0.15] * n))

    before = stagetime.side_cpu()
    embed_all(2)  # from a thread that is not a side thread: its own step's work
    assert stagetime.side_cpu() - before < 0.05
    t = threading.Thread(target=side_thread(embed_all), args=(2,))
    t.start()
    t.join()
    assert stagetime.side_cpu() - before >= 0.28


def test_side_thread_nested_counts_once_and_returns_the_value() -> None:
    before = stagetime.side_cpu()
    out: list[int] = []

    def inner() -> int:
        _burn(0.1)
        return 7

    def outer() -> None:
        out.append(side_thread(inner)())

    t = threading.Thread(target=side_thread(outer))
    t.start()
    t.join()
    assert out == [7]
    assert 0.08 <= stagetime.side_cpu() - before <= 0.2


@needs_thread_clock
def test_a_step_on_a_side_thread_counts_its_own_work() -> None:
    """A bulk run's download thread listens ahead and times its steps (vad, evidence): they
    read -0.0 CPU s when a side thread's own CPU was taken off its own steps."""
    times = StageTimes()

    def listen() -> None:
        with times.step("vad"):
            _burn(0.3)

    t = threading.Thread(target=side_thread(listen))
    t.start()
    t.join()
    assert 0.25 <= times.to_dict()["vad"]["cpu_s"] <= 0.4


@needs_thread_clock
def test_a_side_step_counts_the_pools_its_thread_starts() -> None:
    """Diarization's embedding workers are its own CPU: the re-reading of long turns cost as
    much as sherpa-onnx's pass on the radio clip, and the step left it out."""
    times = StageTimes()

    def diarize() -> None:
        with times.step("diarize", side=True), ThreadPoolExecutor(2) as pool:
            _burn(0.1)
            list(pool.map(inherit_side(_burn), [0.15, 0.15]))

    t = threading.Thread(target=side_thread(diarize))
    t.start()
    with times.step("decoding"):  # beside it, on this thread: none of the pool's CPU here
        _burn(0.1)
    t.join()
    steps = times.to_dict()
    assert 0.37 <= steps["diarize"]["cpu_s"] <= 0.5, steps  # the thread read 0.1 alone
    assert steps["decoding"]["cpu_s"] <= 0.2, steps


@needs_thread_clock
def test_a_step_on_a_side_thread_leaves_out_the_main_threads_work() -> None:
    """The download thread of a bulk run decodes the next recording's file (`audio`) while
    the main thread decodes speech: the step is that thread's work only, marked side."""
    times = StageTimes()
    go = threading.Event()

    @side_thread
    def listen_ahead() -> None:
        go.wait()
        with times.step("audio"):
            _burn(0.2)

    t = threading.Thread(target=listen_ahead)
    t.start()
    go.set()
    _burn(0.4)  # the main thread meanwhile
    t.join()
    audio = times.to_dict()["audio"]
    assert audio["cpu_s"] <= 0.3 and audio.get("side") is True, audio
