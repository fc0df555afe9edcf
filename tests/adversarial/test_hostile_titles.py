"""A real recording whose title and artist tags are made of escape sequences, a spreadsheet
formula and `<script>`, fetched for real (embedded Whisper), then read back through every
output: search text/csv/md/json, show, status, exports (issue 16, acceptance 3)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from conftest import run, shared_file
from harness import QUIET

from confindex import sanitize
from confindex.store.workspace import Workspace

TITLE = "\x1b]0;pwned\x07\x1b[2J=cmd|' /C calc'!A0 <script>alert(1)</script> \x9b31mspeech"
ARTIST = "@SUM(1+1)*cmd|' /C calc'!A0 \x1b]8;;http://evil/\x1b\\<b>Diane & Co <x></b>"
BAD = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    import av
    import numpy as np
    from faster_whisper.audio import decode_audio

    samples = decode_audio(str(shared_file("en/jfk.flac")), 16000)
    d = tmp_path_factory.mktemp("titles")
    out = d / "talk.mp3"
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)[None, :]
    with av.open(str(out), "w", format="mp3") as c:
        c.metadata["title"] = TITLE  # ID3 tags, read back by fetch as title and channel
        c.metadata["artist"] = ARTIST
        stream = c.add_stream("mp3", rate=16000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = 16000
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=16000)
        for f in resampler.resample(frame):
            for p in stream.encode(f):
                c.mux(p)
        for p in stream.encode(None):
            c.mux(p)
    ws = Workspace(d / "ws")
    r = run("fetch", str(out), *QUIET, ws=ws)
    assert r.exit_code == 0, r.output
    return ws


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["search", "country"],
        ["search", "country", "--format", "csv"],
        ["search", "country", "--format", "md"],
        ["search", "country", "--json"],
        ["search", "country", "--cite"],
        ["status"],
        ["stats"],
    ],
    ids=lambda a: " ".join(a[1:]) or a[0],
)
def test_hostile_tags_are_inert_everywhere(hostile: Workspace, args: list[str]) -> None:
    r = run(*args, ws=hostile)
    assert r.exit_code == 0, r.output
    assert not BAD.search(r.stdout.replace("\n", "").replace("\r", "")), repr(r.stdout)
    assert not BAD.search(r.stderr.replace("\n", ""))
    out = r.stdout
    if "--format" in args and "csv" in args:
        row = next(csv.DictReader(io.StringIO(out)))
        assert row["title"].startswith("'=cmd")  # text, not a formula
        assert not any(v.lstrip().startswith(("=", "+", "-", "@")) for v in row.values())
    if "md" in args:
        assert "<script" not in out and "&lt;script&gt;" in out
    if "--json" in args:
        hit = json.loads(out)["hits"][0]
        assert hit["title"] == TITLE and hit["channel"] == ARTIST  # data kept, escaped


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["txt", "md", "srt", "vtt", "json", "rttm"])
def test_hostile_tags_are_inert_in_exports(hostile: Workspace, fmt: str) -> None:
    rid = hostile.transcript_ids()[0]
    r = run("export", rid, "--format", fmt, ws=hostile)
    assert r.exit_code == 0, r.output
    assert not BAD.search(r.stdout.replace("\n", "")), repr(r.stdout[:300])
    if fmt == "md":
        assert "<script" not in r.stdout
        assert r.stdout.startswith("# " + sanitize.markdown(TITLE))
    written = Path(hostile.transcripts / f"{rid}.{fmt}")
    if fmt != "json":
        assert written.read_text(encoding="utf-8") == r.stdout  # files beside are the same
