"""Hostile files given to the other commands that read them (`eval`, `-a` batch lists):
one line, never a hang (run in a subprocess with a timeout), never a traceback (issue 16)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import SAMPLES
from harness import assert_intact, assert_one_line_error, cli, good_archive


@pytest.fixture(scope="module")
def odd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("odd")
    os.mkfifo(d / "fifo")
    (d / "zero").symlink_to("/dev/zero")
    (d / "binary").write_bytes(os.urandom(2000) + b"\xff")
    (d / "dir").mkdir()
    return d


AUDIO = str(SAMPLES / "panel.ogg")
CASES = [
    ("eval", "asr", "{d}/fifo", "{d}/binary"),
    ("eval", "asr", "{d}/zero", "{d}/binary"),
    ("eval", "asr", AUDIO, "{d}/fifo"),
    ("eval", "asr", AUDIO, "{d}/zero"),
    ("eval", "asr", AUDIO, "{d}/binary"),
    ("eval", "asr", AUDIO, "{d}/dir"),
    ("eval", "diarization", AUDIO, "{d}/fifo"),
    ("eval", "diarization", AUDIO, "{d}/zero"),
    ("eval", "diarization", AUDIO, "{d}/binary"),
    ("eval", "diarization", "{d}/fifo", str(SAMPLES / "panel.rttm")),
    ("eval", "search", "{d}/fifo"),
    ("eval", "search", "{d}/zero"),
    ("eval", "search", "{d}/binary"),
    ("eval", "search", "{d}/dir"),
]


@pytest.mark.parametrize("args", CASES, ids=lambda a: " ".join(Path(x).name for x in a[1:]))
def test_special_files_given_to_other_commands(odd: Path, tmp_path: Path, args) -> None:
    argv = [a.format(d=odd) for a in args]
    if argv[1] == "search":
        argv += ["-w", str(tmp_path / "ws")]
    r = cli(*argv, timeout=60)
    assert_one_line_error(r)


@pytest.mark.parametrize("name", ["fifo", "zero", "fifo-link"])
def test_export_never_replaces_a_special_file(odd: Path, tmp_path: Path, name: str) -> None:
    """`export -o` writes atomically (a temp file renamed over the target): run as root with
    `-o /dev/full`, that replaced the device node with a regular file. A FIFO, a symlink to
    /dev/zero and a symlink to a FIFO stand in for devices (the test never touches /dev)."""
    if name == "fifo-link" and not (odd / "fifo-link").exists():
        (odd / "fifo-link").symlink_to(odd / "fifo")
    ws = good_archive(tmp_path / "ws")
    target = odd / name
    before = os.stat(target).st_mode
    r = cli("-w", str(ws.root), "export", "good", "--format", "vtt", "-o", str(target))
    line = assert_one_line_error(r)
    assert "not a regular file" in line and "not overwritten" in line
    assert os.stat(target).st_mode == before and target.is_symlink() == (name != "fifo")
    assert not list(odd.glob(".*.tmp"))
    assert_intact(ws)
