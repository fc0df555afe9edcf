"""The whole pipeline without the Whisper model: `fetch → search → cite` with the FakeDecoder.

The speech engine is the one part replaced (speech/fake.py, selected by CONFINDEX_FAKE_DECODER):
its words and times come from a script, here the words and times the embedded base model gives
for JFK's clip. Everything else is real: the audio decoded from the real recording, Silero-free
speech units cut from the script, turns, quality flags, the transcript JSON, the Whoosh index,
search and citations through the real CLI, and yt-dlp over loopback HTTP. Recognition itself is
measured by the real-model tests (test_pipeline_e2e.py, test_asr_languages.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import assert_no_traceback, run, shared_file

from confindex.speech.decoder import FAKE_ENV
from confindex.store import transcript as store
from confindex.store.workspace import Workspace

# What the embedded base model hears in jfk.flac (start, end, word): its real output.
JFK = [
    (0.0, 0.52, "And"), (0.52, 0.84, "so"), (0.84, 1.18, "my"), (1.18, 1.56, "fellow"),
    (1.56, 2.1, "Americans,"), (2.76, 3.74, "ask"), (3.74, 4.24, "not"), (4.24, 5.52, "what"),
    (5.52, 5.76, "your"), (5.76, 6.26, "country"), (6.26, 6.62, "can"), (6.62, 6.82, "do"),
    (6.82, 7.08, "for"), (7.08, 7.36, "you,"), (7.74, 8.48, "ask"), (8.48, 8.76, "what"),
    (8.76, 9.04, "you"), (9.04, 9.32, "can"), (9.32, 9.56, "do"), (9.56, 9.78, "for"),
    (9.78, 9.96, "your"), (9.96, 10.36, "country."),
]  # fmt: skip


@pytest.fixture
def jfk_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "jfk.fake.json"
    script.write_text(json.dumps({"language": "en", "words": JFK}), encoding="utf-8")
    monkeypatch.setenv(FAKE_ENV, str(script))
    return script


def test_fetch_search_cite_runs_without_the_model_in_under_two_seconds(tmp_path, jfk_script):
    jfk = shared_file("en/jfk.flac")
    ws = Workspace(tmp_path / "ws")
    wall, cpu = time.perf_counter(), time.process_time()

    r = run("fetch", str(jfk), "--no-diarize", "--json", ws=ws)
    assert r.exit_code == 0, r.output
    rid = json.loads(r.stdout)["recordings"][0]["recording_id"]
    s = run("search", "ask not", "--json", ws=ws)
    assert s.exit_code == 0, s.output
    c = run("cite", rid, "--at", "8.5", ws=ws)
    assert c.exit_code == 0, c.output

    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"fetch → search → cite: {cpu:.2f} CPU s, {wall:.2f} s wall")  # shown with -s
    # The acceptance bound (issue 26): the path in < 2 s. CPU time of this process, as the
    # wall time of a shared 2-core machine depends on what else runs (wall printed on failure).
    assert cpu < 2.0, f"fetch → search → cite took {cpu:.2f} CPU s ({wall:.2f} s wall)"

    t = store.load(ws, rid)
    assert [w.text for turn in t.turns for w in turn.words] == [w for _, _, w in JFK]
    assert t.turns[0].words[5].start == 2.76  # the script's times, on the recording's clock
    assert t.language == "en" and t.provenance.engine.name == "fake"
    assert t.provenance.engine.sha256 and t.provenance.engine.model == jfk_script.name
    hits = json.loads(s.stdout)["hits"]
    assert len(hits) == 1 and hits[0]["recording_id"] == rid
    assert hits[0]["time"] == 2.76  # "ask not": the second the script says
    assert "ask what you can do for your country." in c.stdout
    assert "jfk" in c.stdout


def test_fetch_over_loopback_in_a_subprocess_uses_the_scripted_decoder(
    tmp_path, http_root, jfk_script
):
    """The variable reaches a CLI started as a subprocess (as a Dask worker's would), and the
    media comes through yt-dlp from a real HTTP server."""
    root, base = http_root
    shutil.copy(shared_file("en/jfk.flac"), root / "jfk.flac")
    ws = tmp_path / "ws"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cli = [sys.executable, "-m", "confindex"]
    p = subprocess.run(
        [*cli, "fetch", f"{base}/jfk.flac", "--no-diarize", "--json", "-w", str(ws)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert_no_traceback(p.stderr)
    assert p.returncode == 0, p.stderr
    t = store.load(Workspace(ws), json.loads(p.stdout)["recordings"][0]["recording_id"])
    assert t.recording.webpage_url == f"{base}/jfk.flac" and t.provenance.engine.name == "fake"
    assert t.text == " ".join(w for _, _, w in JFK)
    p = subprocess.run(
        [*cli, "search", "fellow Americans", "--json", "-w", str(ws)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    hits = json.loads(p.stdout)["hits"]
    assert [h["time"] for h in hits] == [1.18]


def test_a_bad_script_is_a_one_line_error(tmp_path, monkeypatch):
    script = tmp_path / "bad.json"
    script.write_text('{"words": [[0.0, "no end"]]}', encoding="utf-8")
    monkeypatch.setenv(FAKE_ENV, str(script))
    r = run("fetch", str(shared_file("en/jfk.flac")), "--no-diarize", ws=Workspace(tmp_path / "w"))
    assert r.exit_code != 0
    assert "fake decoder's script" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_each_stretch_is_decoded_in_the_language_the_decoder_detects(tmp_path, monkeypatch):
    """The pipeline around the engine: speech cut into units at a pause, a language detected
    per unit, the units decoded by language and turned into one turn per language."""
    words = [
        {"start": 0.5, "end": 1.0, "text": "Bonjour", "language": "fr"},
        {"start": 1.1, "end": 1.6, "text": "à", "language": "fr"},
        {"start": 1.7, "end": 2.6, "text": "tous.", "language": "fr"},
        {"start": 6.0, "end": 6.5, "text": "Thank", "language": "en"},
        {"start": 6.6, "end": 7.2, "text": "you.", "language": "en"},
    ]
    script = tmp_path / "two.json"
    script.write_text(json.dumps({"language": "fr", "words": words}), encoding="utf-8")
    monkeypatch.setenv(FAKE_ENV, str(script))
    ws = Workspace(tmp_path / "ws")
    r = run("fetch", str(shared_file("en/jfk.flac")), "--no-diarize", "--json", ws=ws)
    assert r.exit_code == 0, r.output
    t = store.load(ws, json.loads(r.stdout)["recordings"][0]["recording_id"])
    assert [(x.language, x.text) for x in t.turns] == [
        ("fr", "Bonjour à tous."),
        ("en", "Thank you."),
    ]
    assert t.provenance.options["language_seconds"].keys() == {"fr", "en"}
