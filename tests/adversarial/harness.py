"""What every hostile case must satisfy, and the workspaces and media they run against.

The contract (issue 16): one line on stderr (`Error: …`), no traceback, exit code 1 or 2,
nothing half-written (no temp file, no partial index generation, every transcript whole),
and the archive still works afterwards (search finds what it held; a later good fetch works:
the `slow` test at the end of each module fetches real speech into the same workspace).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import assert_no_traceback

from confindex.search import index
from confindex.store.transcript import (
    Provenance,
    Recording,
    Transcript,
    Turn,
    Word,
    load_path,
    save,
)
from confindex.store.workspace import Workspace

CLI = [sys.executable, "-c", "from confindex.cli import main; main()"]
QUIET = ["--quiet", "--no-diarize", "--beam-size", "1"]
GOOD_WORDS = "the quick brown fox jumps over the lazy dog near the river bank"


def good_archive(root: Path) -> Workspace:
    """A workspace holding one indexed recording (built without a model: fast)."""
    ws = Workspace(root).ensure()
    words = [Word(i * 0.5, i * 0.5 + 0.4, " " + w) for i, w in enumerate(GOOD_WORDS.split())]
    t = Transcript(
        recording=Recording(id="good", title="Good talk", source="/nowhere/good.wav", kind="file"),
        provenance=Provenance("test"),
        language="en",
        duration=10.0,
        turns=[Turn(0, 0.0, words[-1].end, "SPEAKER_00", GOOD_WORDS, "en", words)],
        speakers={"SPEAKER_00": "Ada"},
    )
    save(ws, t)
    index.add(ws, [t])
    return ws


def assert_one_line_error(r, codes: tuple[int, ...] = (1, 2)) -> str:
    """A click Result or CompletedProcess: exit 1/2, exactly one `Error: …` line on stderr."""
    code = getattr(r, "exit_code", getattr(r, "returncode", None))
    err = r.stderr if isinstance(r.stderr, str) else r.stderr.decode(errors="replace")
    assert_no_traceback(err)
    assert code in codes, f"exit {code}: {err!r}"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), f"stderr: {err!r}"
    return lines[0]


def assert_intact(ws: Workspace) -> None:
    """Nothing half-written; the archive still answers."""
    leftovers = [p for p in ws.root.rglob("*") if p.name.endswith((".tmp", ".part", ".ytdl"))]
    assert not leftovers, leftovers
    gens = sorted(ws.index_dir.glob("g-*"))
    assert len(gens) <= 1, f"partial index generations left: {gens}"
    for p in ws.transcripts.glob("*.json"):
        load_path(p)  # whole, readable JSON
    from confindex.search.hits import search

    assert [h.recording_id for h in search(ws, "brown fox").hits] == ["good"]


def cli(*args: str, timeout: float = 90, env: dict[str, str] | None = None):
    """The real CLI in a subprocess, for inputs that could hang: a hang fails the test."""
    r = subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        stdin=subprocess.DEVNULL,
    )
    assert_no_traceback(r.stderr, f"confindex {' '.join(args)}")
    return r


def write_wav(path: Path, samples, rate: int = 16000) -> Path:
    import wave

    import numpy as np

    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return path
