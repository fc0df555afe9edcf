"""Logging through `logging.getLogger("confindex")`: -v, --log-file, yt-dlp's messages routed
in, bugs logged with their traceback and stopping the run, no environment changes at import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run

from confindex.store.ledger import Ledger
from confindex.store.workspace import Workspace


def test_ytdlp_messages_reach_the_log_file(tmp_path: Path, http_root) -> None:
    _root, base = http_root
    log = tmp_path / "run.log"
    ws = Workspace(tmp_path / "ws")
    r = run("--log-file", str(log), "fetch", f"{base}/missing.mp3", "--no-diarize", ws=ws)
    assert r.exit_code == 1
    assert len(r.stderr.strip().splitlines()) == 1  # the log does not add lines to stderr
    text = log.read_text()
    assert "confindex.yt_dlp" in text and "404" in text


def test_verbose_tells_each_stage_and_the_failure(tmp_path: Path, http_root) -> None:
    _root, base = http_root
    ws = Workspace(tmp_path / "ws")
    r = run("-v", "fetch", f"{base}/missing.mp3", "--no-diarize", ws=ws)
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert "info: run 1: 1 recording(s) on this machine" in lines
    failed = [ln for ln in lines if ln.startswith("info: ") and ": failed (" in ln]
    assert len(failed) == 1 and "404" in failed[0]
    quiet = run("fetch", f"{base}/missing.mp3", "--no-diarize", ws=ws)
    assert not [ln for ln in quiet.stderr.splitlines() if ln.startswith("info: ")]


def test_a_bug_is_one_line_exit_70_and_its_traceback_is_logged(tmp_path, monkeypatch) -> None:
    from confindex import api

    def broken(self):
        raise TypeError("unsupported operand")

    monkeypatch.setattr(api.Archive, "stats", broken)
    log = tmp_path / "bug.log"
    r = run("--log-file", str(log), "stats", ws=Workspace(tmp_path / "ws"))
    assert r.exit_code == 70
    assert r.stderr.strip().splitlines() == [
        "Error: unexpected error (a bug, please report it): TypeError: unsupported operand "
        "(rerun with -v for the traceback)"
    ]
    text = log.read_text()
    assert "Traceback (most recent call last)" in text
    assert 'raise TypeError("unsupported operand")' in text


def test_a_bug_in_a_bulk_run_stops_it_and_marks_nothing_failed(tmp_path, monkeypatch) -> None:
    from confindex.run import fetch
    from confindex.run.bulk import BulkOptions, BulkRunner
    from confindex.run.inputs import url_item
    from confindex.run.job import FetchOptions

    def buggy(*a, **k):
        return None + 1  # a programming error, not the recording's fault

    monkeypatch.setattr(fetch, "download", buggy)
    ws = Workspace(tmp_path / "ws")
    items = [url_item(f"http://127.0.0.1:9/{n}.mp3") for n in ("a", "b")]
    runner = BulkRunner(ws, FetchOptions(diarize=False), BulkOptions(download_workers=0))
    with pytest.raises(TypeError):
        runner.run(items)
    with Ledger.of(ws) as led:
        rows = led.rows()
    # Not "failed" (retry-failed would loop on a bug): the first is given back, the second
    # was never started.
    assert [(r.stage, r.owner) for r in rows] == [("queued", None), ("queued", None)]


def test_importing_sets_no_environment_variables() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "OMP_WAIT_POLICY")}
    code = (
        "import os, confindex, confindex.speech.asr, confindex.api, confindex.cli, "
        "confindex.run.job; "
        "print(os.environ.get('HF_HUB_OFFLINE'), os.environ.get('OMP_WAIT_POLICY'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "None None"


def test_best_effort_housekeeping_is_never_silent(caplog) -> None:
    import logging

    from confindex.log import suppressed

    logger = logging.getLogger("confindex.test")
    with caplog.at_level(logging.DEBUG, logger="confindex"), suppressed(logger, "tidying up"):
        raise ValueError("disk gone")
    (rec,) = [r for r in caplog.records if r.name == "confindex.test"]
    assert rec.getMessage() == "tidying up failed (ignored)"
    assert rec.exc_info and rec.exc_info[0] is ValueError
    with pytest.raises(KeyboardInterrupt), suppressed(logger, "x"):
        raise KeyboardInterrupt  # Ctrl-C is never swallowed
