"""End to end on real parts: yt-dlp over loopback HTTP, the embedded Whisper model, the
shipped diarization models, a Whoosh index on disk, and the CLI as a user runs it."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from conftest import SAMPLES, run, shared_file

from confindex.search import hits as search_api
from confindex.search import index as search_index
from confindex.store import transcript as store
from confindex.store.workspace import Workspace

pytestmark = pytest.mark.slow

TURN_FIELDS = {"id", "start", "end", "speaker", "text", "language", "words"}


def files_in(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture(scope="module")
def fetched(tmp_path_factory, request):
    """The bundled panel fetched once over HTTP through real yt-dlp: (workspace, url, result)."""
    import functools
    import threading

    from conftest import LoopbackServer, _QuietHandler

    root = tmp_path_factory.mktemp("www")
    (root / "talks").mkdir()
    shutil.copy(SAMPLES / "panel.ogg", root / "talks" / "panel.ogg")
    server = LoopbackServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    request.addfinalizer(server.shutdown)
    url = f"http://127.0.0.1:{server.server_address[1]}/talks/panel.ogg"
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    result = run("fetch", url, "--json", ws=ws)
    return ws, url, result


def test_fetch_url_writes_transcript_turns_and_exports(fetched, panel):
    ws, url, result = fetched
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    [rec] = report["recordings"]
    assert rec["status"] == "done"
    t = store.load(ws, rec["recording_id"])

    # Metadata and provenance
    assert t.recording.source == url
    assert t.recording.extractor == "Generic"
    assert t.recording.media_sha256 and (ws.root / t.recording.media_path).exists()
    engine = t.provenance.engine
    assert (
        engine.name == "faster-whisper" and engine.version and engine.sha256.startswith("905e5bf8")
    )
    assert engine.runtime.startswith("ctranslate2 ")
    assert t.provenance.device == "cpu" and t.provenance.compute_type == "int8"

    # Words of the known English speech
    text = t.text.lower()
    for phrase in ("cold war", "in orbit", "handshake in space"):
        assert phrase in text, text

    # Turn JSON fields, two speakers, French and English turns
    raw = json.loads(ws.transcript_path(t.id).read_text())
    assert raw["schema_version"] == 3
    for turn in raw["turns"]:
        assert set(turn) >= TURN_FIELDS
        assert turn["start"] <= turn["end"]
        assert turn["words"] and turn["words"][0]["start"] == turn["start"]
    assert {tr.speaker for tr in t.turns} == {"SPEAKER_00", "SPEAKER_01"}
    assert {tr.language for tr in t.turns} >= {"en", "fr"}

    # .srt cue timings within 1 s of the script
    line = next(x for x in panel["lines"] if "Cold War" in x["text"])
    srt = (ws.transcripts / f"{t.id}.srt").read_text()
    # a cue's text is all its lines (≤ 2 × 42 characters since issue 15), joined
    cues = re.findall(
        r"(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})\n((?:.+\n?)+)", srt
    )
    cues = [(*c[:8], " ".join(c[8].split())) for c in cues]

    def secs(h, m, s, ms):
        return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000

    hits = [(secs(*c[:4]), secs(*c[4:8])) for c in cues if "cold war" in c[8].lower()]
    assert hits, srt
    start, end = hits[0]
    assert line["start"] - 1.0 <= start and end <= line["end"] + 1.0
    assert abs(end - line["end"]) <= 1.0
    for ext in ("srt", "vtt", "txt", "md", "rttm"):
        assert (ws.transcripts / f"{t.id}.{ext}").stat().st_size > 0


def test_fetch_twice_is_idempotent_and_rebuild_gives_same_hits(fetched):
    ws, url, _ = fetched
    docs = search_index.doc_count(ws)
    n_turns = len(store.load(ws, ws.transcript_ids()[0]).turns)
    assert docs == n_turns

    again = run("fetch", url, "--json", ws=ws)
    assert again.exit_code == 0
    assert json.loads(again.stdout)["recordings"][0]["status"] == "skipped"
    assert search_index.doc_count(ws) == docs

    def hits(q):
        return [(h.recording_id, h.turn_id, h.time) for h in search_api.search(ws, q).hits]

    queries = ["orbit", "cold war", "together", "spatiale"]
    before = {q: hits(q) for q in queries}
    assert before["orbit"], "incremental index finds nothing"
    rebuilt = run("index", "--rebuild", ws=ws)
    assert rebuilt.exit_code == 0, rebuilt.output
    search_api.close_all()
    assert {q: hits(q) for q in queries} == before
    assert search_index.doc_count(ws) == docs


def test_jfk_search_finds_ask_not_at_the_right_second(tmp_path):
    jfk = shared_file("en/jfk.flac")
    ws = Workspace(tmp_path / "ws")
    r = run("fetch", str(jfk), ws=ws)
    assert r.exit_code == 0, r.output
    s = run("search", "ask not", "--json", ws=ws)
    assert s.exit_code == 0, s.output
    hits = json.loads(s.stdout)["hits"]
    assert hits and hits[0]["recording_id"].startswith("jfk-")
    # "ask not" is spoken from about 2.8 s into the clip.
    assert abs(hits[0]["time"] - 2.8) <= 1.5
    assert hits[0]["link"].startswith("file://") and "#t=2" in hits[0]["link"]
    text = run("search", "ask not", ws=ws).stdout
    assert ("[00:00:02]" in text and "**ask** **not**" in text.lower()) or "**ask not**" in text


def test_french_recording_is_transcribed_as_french(tmp_path):
    wav = shared_file("fr/picovoice_test_fr.wav")
    ws = Workspace(tmp_path / "ws")
    r = run("fetch", str(wav), "--no-diarize", "--json", ws=ws)
    assert r.exit_code == 0, r.output
    t = store.load(ws, json.loads(r.stdout)["recordings"][0]["recording_id"])
    assert t.language == "fr"
    assert "consulat" in t.text.lower() and "forêts" in t.text.lower()
    assert all(turn.language == "fr" for turn in t.turns)


@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("missing", "no such file"),
        ("text-as-mp3", "not a media file"),
        ("unreachable", "cannot download"),
        ("cuda", "cuda"),
        ("silent", "silent"),
    ],
)
def test_bad_fetch_input_is_one_line_and_leaves_nothing(tmp_path, case, expect):
    import wave

    ws = Workspace(tmp_path / "ws")
    args = {
        "missing": [str(tmp_path / "nope.mp3")],
        "text-as-mp3": [str(tmp_path / "notes.mp3")],
        "unreachable": ["http://127.0.0.1:9/talk.mp3"],
        "cuda": ["--device", "cuda", str(tmp_path / "notes.mp3")],
        "silent": [str(tmp_path / "silence.wav")],
    }[case]
    (tmp_path / "notes.mp3").write_text("these are my notes, not audio\n" * 50)
    with wave.open(str(tmp_path / "silence.wav"), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(16000)
        f.writeframes(b"\0\0" * 16000 * 3)
    r = run("fetch", *args, ws=ws)
    assert r.exit_code != 0
    lines = r.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("Error: ") and expect in lines[-1].lower(), r.stderr
    assert len([x for x in lines if x.startswith("Error")]) == 1
    assert "Traceback" not in r.output
    assert files_in(ws.transcripts) == []
    assert search_index.doc_count(ws) == 0
    tmp_left = [p for p in (ws.root / ".confindex" / "tmp").rglob("*") if p.is_file()]
    assert tmp_left == []


@pytest.mark.parametrize(("query", "code"), [("", 2), ('"unbalanced', 2), ("   ", 2)])
def test_bad_queries_are_one_line_errors(fetched, query, code):
    ws, _, _ = fetched
    r = run("search", query, ws=ws)
    assert r.exit_code == code
    assert r.stderr.startswith("Error: ") and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.output


def test_hub_model_offline_is_a_one_line_error_and_leaves_the_recording_queued(
    tmp_path, monkeypatch
):
    # The hub itself is out of reach here: HF_HUB_OFFLINE makes faster-whisper look only in
    # its local cache, so this checks the online code path's failure, never the network.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    ws = Workspace(tmp_path / "ws")
    r = run("fetch", str(SAMPLES / "panel.ogg"), "--model", "large-v3", "--no-diarize", ws=ws)
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines()[-1].startswith("Error: cannot get model 'large-v3'")
    assert files_in(ws.transcripts) == []
    status = json.loads(run("status", "--json", ws=ws).stdout)
    assert status["counts"].get("failed", 0) == 0  # not the recording's fault: still to do


def test_an_unreachable_hub_fails_before_any_decoding(tmp_path):
    """Online code path (no HF_HUB_OFFLINE) with the hub out of reach: a closed loopback port
    stands in for it, so no real network is tried. The model is checked before the media is
    touched: a file that is not media at all gets the model error (it once got "not a media
    file", i.e. the whole recording was decoded first), and nothing is marked failed."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    junk = tmp_path / "talk.mp3"
    junk.write_bytes(os.urandom(50_000))
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=f"http://127.0.0.1:{port}")
    ws = tmp_path / "ws"
    cmd = "from confindex.cli import main; main()"
    args = ["-w", str(ws), "fetch", str(junk), "--model", "large-v3", "--no-diarize"]
    r = subprocess.run(
        [sys.executable, "-c", cmd, *args], capture_output=True, text=True, env=env, timeout=120
    )
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert lines[0].startswith("Error: cannot get model 'large-v3' from the Hugging Face Hub")
    status = json.loads(run("status", "--json", ws=Workspace(ws)).stdout)
    assert status["counts"].get("failed", 0) == 0


def test_fetch_formats_output_dir_umask_and_skip_reasons(tmp_path, monkeypatch):
    """Issue 15: `--formats`/`--output-dir` choose which exports are written and where, files
    get the umask's mode, and a rerun says in plain text why each input was skipped."""
    import os

    jfk = shared_file("en/jfk.flac")
    copy = tmp_path / "copy.flac"
    shutil.copy(jfk, copy)
    ws = Workspace(tmp_path / "ws")
    monkeypatch.chdir(tmp_path)  # --output-dir is relative to where the command runs
    bad = run("fetch", str(jfk), "--formats", "srt,pdf", ws=ws)
    assert bad.exit_code == 2 and "pdf" in bad.stderr and not ws.transcripts.exists()
    old = os.umask(0o002)
    try:
        args = ("--formats", "srt,vtt", "--output-dir", "subs", "--no-diarize", "--beam-size", "1")
        r = run("fetch", str(jfk), *args, ws=ws)
    finally:
        os.umask(old)
    assert r.exit_code == 0, r.output
    [rid] = ws.transcript_ids()
    assert files_in(ws.transcripts) == [f"{rid}.json"]  # no exports beside the transcript
    assert files_in(tmp_path / "subs") == [f"{rid}.srt", f"{rid}.vtt"]
    assert "ask not" in (tmp_path / "subs" / f"{rid}.srt").read_text().lower()
    made = [f for f in [*ws.root.rglob("*"), *(tmp_path / "subs").rglob("*")] if f.is_file()]
    assert ws.root / ".confindex" / "ledger.sqlite" in made  # SQLite's own default was 0644
    assert ws.transcript_path(rid) in made and len(made) > 5  # transcript, index, ledger, subs
    for f in made:  # group-writable, as umask 002 asks (Whoosh makes its lock 0777 - umask)
        assert f.stat().st_mode & 0o777 == (0o775 if f.name == "MAIN_WRITELOCK" else 0o664), f

    again = run("fetch", str(jfk), str(copy), *args, ws=ws)
    assert again.exit_code == 0, again.output
    assert "0 done, 2 skipped, 0 failed" in again.stderr
    assert f"skipped {rid}: already indexed" in again.stderr
    assert f": duplicate of {rid}" in again.stderr


def test_config_files_and_environment_give_fetch_its_defaults(tmp_path, monkeypatch):
    """Issue 15: defaults from the user config file (platformdirs' config dir), the workspace's
    confindex.toml over it, CONFINDEX_<COMMAND>_<OPTION> over both; TOML
    lists for comma-separated options (`languages = ["en", "fr"]` once failed as "['en'")."""
    jfk = shared_file("en/jfk.flac")
    monkeypatch.delenv("CONFINDEX_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))  # platformdirs on Linux
    user = tmp_path / "xdg" / "confindex" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text('[fetch]\nformats = ["srt", "vtt", "txt"]\ndiarize = false\nbeam_size = 1\n')
    ws = Workspace(tmp_path / "ws").ensure()
    (ws.root / "confindex.toml").write_text(
        '[fetch]\nformats = ["srt", "vtt"]\nlanguages = ["en", "fr"]\n'
    )
    monkeypatch.setenv("CONFINDEX_FETCH_FORMATS", "srt")
    r = run("fetch", str(jfk), ws=ws)
    assert r.exit_code == 0, r.output
    [rid] = ws.transcript_ids()
    assert files_in(ws.transcripts) == [f"{rid}.json", f"{rid}.srt"]  # the environment's
    t = store.load(ws, rid)
    assert t.provenance.options["languages"] == ["en", "fr"]  # the workspace file's list
    assert len({x.speaker for x in t.turns}) == 1  # the user file's diarize = false
    assert "ask not" in (ws.transcripts / f"{rid}.srt").read_text().lower()


def test_the_run_summary_wraps_each_failure_as_one_item(tmp_path, monkeypatch):
    """Issue 15: the summary once wrapped mid-phrase back to column 0 ("`confindex" /
    "retry-failed`"); each skip or failure is one item with a hanging indent, at 80 columns."""
    import random

    monkeypatch.setenv("COLUMNS", "80")
    bad = [tmp_path / f"{'a-rather-long-name-for-a-recording-' * 2}{i}.mp3" for i in (1, 2)]
    for i, p in enumerate(bad, 1):
        # Seeded, not os.urandom: about 1 in 200 random 30-kB files probes as a UTF-8
        # subtitle stream ("has no audio track"), which failed this test once in CI.
        p.write_bytes(random.Random(i).randbytes(30_000))
    ws = Workspace(tmp_path / "ws")
    r = run("fetch", *map(str, bad), "--no-diarize", ws=ws)
    assert r.exit_code == 1, r.output
    lines = r.stderr.splitlines()
    first = [i for i, x in enumerate(lines) if re.match(r"failed( |$)", x)]
    assert len(first) == 2, r.stderr
    for i in first:
        item = [lines[i]]
        for x in lines[i + 1 :]:
            if not x.startswith("    "):
                break
            item.append(x)
        assert len(item) > 1 and all(len(x) <= 80 for x in item), r.stderr
        assert "is not a media file or is corrupt" in " ".join(" ".join(item).split())


def test_demo_panel_subtitles_are_built_for_reading(fetched, tmp_path):
    """Issue 15 found 8 of the demo's 13 cues over 42 characters per line and a 0.1 s cue:
    the panel's real exports now pass the reading rules, read back by srt, webvtt-py, ffmpeg."""
    from test_subtitles import check

    ws, _, result = fetched
    rid = json.loads(result.stdout)["recordings"][0]["recording_id"]
    srt_text = (ws.transcripts / f"{rid}.srt").read_text(encoding="utf-8")
    vtt_text = (ws.transcripts / f"{rid}.vtt").read_text(encoding="utf-8")
    assert check(srt_text, vtt_text, tmp_path) >= 13


def test_progress_shows_on_a_terminal_even_with_json(tmp_path):
    """`fetch --json` with stderr on a terminal: the progress bars and each recording's outcome
    there, stdout pure JSON (issue 15: --json used to silence progress)."""
    from test_catalog import on_a_terminal

    jfk = shared_file("en/jfk.flac")
    argv = ["-w", str(tmp_path / "ws"), "--json", "fetch", str(jfk), "--no-diarize"]
    argv += ["--beam-size", "1"]
    progress, stdout = on_a_terminal(argv, {"HF_HUB_OFFLINE": "1"}, 80, stream="stderr")
    report = json.loads(stdout)
    assert report["recordings"][0]["status"] == "done"
    shown = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", progress)  # the bars' cursor movements
    rid = report["recordings"][0]["recording_id"]
    assert re.search(rf"transcribe +{rid} ", shown), shown[-2000:]  # its live bar
    assert re.search(rf"done +{rid} +1 turns", shown), shown[-2000:]
