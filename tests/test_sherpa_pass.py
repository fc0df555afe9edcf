"""sherpa-onnx's diarization pass runs in a child process when diarization runs beside other
work (speech/sherpa_pass.py, issue 33): its Python binding holds the GIL for the whole pass,
which stopped every other thread (a bulk run's decoding, one recording's VAD and model load).
Real sherpa-onnx and the shipped models on the bundled real-voice sample."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import SAMPLES

from confindex.speech import audio, diarize, sherpa_pass
from confindex.speech.diarize import DiarizationError, DiarizeOptions


@pytest.fixture(scope="module")
def samples():
    return audio.decode_with_info(SAMPLES / "panel.ogg")[0]


@pytest.fixture(scope="module")
def short(samples):
    return samples[: 16_000 * 12]  # both speakers: they alternate every ~8 s


# The child runs sherpa-onnx's pass only; re-reading long turns and the overlap pass run in this
# process either way, so the tests of the child's mechanics leave them out (they were ~60 % of
# these tests' CPU).
PASS_ONLY = DiarizeOptions(refine=False, overlap=False)


def _beside(fn, *args):
    """`fn(*args)` in a thread, as `Transcriber.listen` and a bulk run's download thread
    call diarization."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


def test_the_child_process_gives_the_same_speakers_as_in_process(samples) -> None:
    # 25 s: three turns of two speakers, long enough to be re-read in windows (the whole
    # 58-s sample took 16.7 of test-fast's seconds and showed nothing more).
    part = samples[: 16_000 * 25]
    before = sherpa_pass.child_cpu()
    here = diarize.diarize_with_voices(part)  # main thread: in this process
    assert sherpa_pass.child_cpu() == before
    there = _beside(diarize.diarize_with_voices, part)
    assert sherpa_pass.child_cpu() > before  # the pass ran there
    assert len(here.segments) == 3 and len({s.speaker for s in here.segments}) == 2
    assert there.segments == here.segments
    assert there.voiceprints.keys() == here.voiceprints.keys()


def test_the_main_thread_runs_while_a_thread_diarizes(samples) -> None:
    """In-process, sherpa-onnx's pass held the GIL throughout: a Python loop on the main
    thread ran at 3-5% of its speed meanwhile (≥ 66% with the child process, loaded
    machine)."""

    def spin(seconds: float) -> int:
        n, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            n += 1
        return n

    _beside(diarize.diarize, samples[: 16_000 * 5], PASS_ONLY)  # the child started
    alone = spin(0.5) * 2
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(diarize.diarize, samples, PASS_ONLY)
        beside = spin(1.0)
        assert not job.done(), "the pass ended within the second measured"
        job.result()
    assert beside >= 0.25 * alone, (beside, alone)


def test_progress_comes_back_from_the_child(short) -> None:
    seen: list[tuple[int, int]] = []
    _beside(diarize.diarize, short, PASS_ONLY, lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1] > 1


def test_a_child_that_died_is_reported_in_one_line_and_replaced(short) -> None:
    _beside(diarize.diarize, short[: 16_000 * 5], PASS_ONLY)
    proc = sherpa_pass._CHILD.proc
    assert proc is not None and proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)  # between two passes: the next one starts a new child
    proc.wait()
    assert _beside(diarize.diarize, short, PASS_ONLY)
    assert sherpa_pass._CHILD.proc is not proc

    # Killed during a pass: one line, then a new child again.
    def kill_soon() -> None:
        time.sleep(0.3)
        os.kill(sherpa_pass._CHILD.proc.pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_soon)
    killer.start()
    with pytest.raises(DiarizationError, match="diarization process ended unexpectedly"):
        _beside(diarize.diarize, short, PASS_ONLY)
    killer.join()
    assert _beside(diarize.diarize, short, PASS_ONLY)


def test_a_bad_model_is_the_same_one_line_error_from_the_child(short, tmp_path: Path) -> None:
    (tmp_path / "segmentation.onnx").write_bytes(b"not a model")
    (tmp_path / "embedding.onnx").write_bytes(b"not a model")
    options = DiarizeOptions(model_dir=tmp_path)
    with pytest.raises(DiarizationError) as here:
        diarize.diarize(short, options)
    with pytest.raises(DiarizationError) as there:
        _beside(diarize.diarize, short, options)
    assert str(there.value) == str(here.value)
    assert "\n" not in str(there.value) and str(tmp_path) in str(there.value)
    assert _beside(diarize.diarize, short, PASS_ONLY)  # the child goes on serving


def test_the_environment_keeps_the_pass_in_process(short, monkeypatch) -> None:
    monkeypatch.setenv(sherpa_pass.ENV, "0")
    before = sherpa_pass.child_cpu()
    assert _beside(diarize.diarize, short, PASS_ONLY)
    assert sherpa_pass.child_cpu() == before


def test_without_a_child_process_the_pass_runs_here(short, monkeypatch, caplog) -> None:
    """A Python that cannot be started again (an embedded interpreter) or a child that
    ends before serving: the recording is still diarized, in this process, with a warning."""
    here = diarize.diarize(short, PASS_ONLY)
    sherpa_pass._CHILD.close()
    monkeypatch.setattr(sherpa_pass.sys, "executable", "/nonexistent/python")
    before = sherpa_pass.child_cpu()
    with caplog.at_level("WARNING", logger="confindex"):
        assert _beside(diarize.diarize, short, PASS_ONLY) == here
    assert sherpa_pass.child_cpu() == before
    assert "diarizing in this process" in caplog.text
    monkeypatch.setattr(sherpa_pass.sys, "executable", "/bin/false")  # starts, then exits
    caplog.clear()
    with caplog.at_level("WARNING", logger="confindex"):
        assert _beside(diarize.diarize, short, PASS_ONLY) == here
    assert "ended at once" in caplog.text
