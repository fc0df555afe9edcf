"""Moved media (issue 31): `serve` looks for a recording's media on every request, a file
fetched again from a new path (same content) relinks the recording, and `serve` on a folder
that does not exist says so in one line."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
from conftest import SAMPLES, run, shared_file
from servekit import PANEL_ID, panel_transcript, start_server, stop_server

from confindex.store.transcript import load, save
from confindex.store.workspace import Workspace


def test_serve_rechecks_media_on_each_request(tmp_path) -> None:
    ws = Workspace(tmp_path / "ws").ensure()
    media = tmp_path / "talks" / "panel.ogg"
    media.parent.mkdir()
    shutil.copyfile(SAMPLES / "panel.ogg", media)
    t = panel_transcript()
    t.recording = dataclasses.replace(t.recording, source=str(media))
    save(ws, t)
    server = start_server(ws)
    try:
        assert server.request(f"/media/{PANEL_ID}")[0] == 200
        moved = tmp_path / "elsewhere.ogg"
        media.rename(moved)
        status, _h, body = server.request(f"/media/{PANEL_ID}")
        assert status == 404 and body == b"no local media for this recording"
        assert 'id="no-media"' in server.request(f"/r/{PANEL_ID}")[2].decode()
        moved.rename(media)  # put back: plays again, no restart
        status, headers, _b = server.request(f"/media/{PANEL_ID}")
        assert status == 200 and headers["content-type"] == "audio/ogg"
        assert 'id="player"' in server.request(f"/r/{PANEL_ID}")[2].decode()
    finally:
        stop_server(server)


def test_serve_on_a_missing_folder_is_a_one_line_error(tmp_path) -> None:
    r = run("serve", "--port", "0", ws=Workspace(tmp_path / "nope"))
    assert r.exit_code != 0
    lines = r.stderr.strip().splitlines()
    assert lines == [f"Error: no workspace at {tmp_path / 'nope'}: give an existing folder "
                     "with --workspace"]  # fmt: skip
    assert not (tmp_path / "nope").exists()  # nothing created


@pytest.mark.slow
def test_a_moved_file_fetched_again_relinks_its_recording(tmp_path) -> None:
    """The real fetch (Whisper base) of JFK's 11 s, the file moved, fetched again."""
    ws = Workspace(tmp_path / "ws")
    first = tmp_path / "a" / "jfk.flac"
    first.parent.mkdir()
    shutil.copyfile(shared_file("en/jfk.flac"), first)
    r = run("--json", "fetch", str(first), ws=ws)
    assert r.exit_code == 0, r.stderr
    (rid,) = ws.transcript_ids()
    server = start_server(ws)
    try:
        assert server.request(f"/media/{rid}")[0] == 200
        moved = tmp_path / "b" / "jfk-renamed.flac"
        moved.parent.mkdir()
        first.rename(moved)
        assert server.request(f"/media/{rid}")[0] == 404
        r = run("--json", "fetch", str(moved), ws=ws)
        assert r.exit_code == 0, r.stderr
        out = json.dumps(json.loads(r.stdout))
        assert f"same content as {rid}, moved: its media path is now {moved}" in out
        rec = load(ws, rid).recording
        assert rec.media_path == str(moved) and rec.source == str(moved)
        assert ws.transcript_ids() == [rid]  # no second recording
        assert server.request(f"/media/{rid}")[0] == 200  # the running server plays it again
        # Fetched again where it is now: a plain duplicate, nothing changes.
        r = run("--json", "fetch", str(moved), ws=ws)
        assert r.exit_code == 0 and load(ws, rid).recording.media_path == str(moved)
    finally:
        stop_server(server)


def test_cite_in_a_silence_says_it_cites_the_nearest_sentence(tmp_path) -> None:
    ws = Workspace(tmp_path / "ws").ensure()
    save(ws, panel_transcript())
    r = run("cite", PANEL_ID, "--at", "31.5", ws=ws)  # between 30.75 and 33.35: a pause
    assert r.exit_code == 0
    assert r.stderr.strip().splitlines() == [
        "note: nothing is said at 00:00:31; citing the nearest sentence (00:00:25–00:00:30)"
    ]
    assert "That famous handshake in space" in r.stdout
    r = run("cite", PANEL_ID, "--at", "34", ws=ws)  # said then: no note
    assert r.exit_code == 0 and r.stderr == ""
