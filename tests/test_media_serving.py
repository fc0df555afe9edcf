"""`/media/ID` serves only audio or video (issue 30): workspaces are shared between archivists,
and a transcript naming `/etc/passwd`, a text file called `.mp3`, a FIFO or a media file outside
both the workspace and the recorded source as its media must not make the server hand it out."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import SAMPLES
from servekit import panel_transcript, start_server, stop_server

from confindex.store.transcript import save
from confindex.store.workspace import Workspace
from confindex.web.media import find_media, looks_like_media


def _rec(t, **kw):  # type: ignore[no-untyped-def]
    return replace(t, recording=replace(t.recording, **kw))


def test_only_media_inside_the_workspace_or_the_source_is_found(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws").ensure()
    t = panel_transcript()
    ogg = SAMPLES / "panel.ogg"
    # The recorded source itself (outside the workspace): served.
    assert find_media(ws.root, t.recording).path == Path(t.recording.source)
    # A transcript naming a system file as its media, or as its source: refused.
    assert find_media(ws.root, _rec(t, media_path="/etc/passwd").recording) is not None  # source
    bad = _rec(t, media_path="/etc/passwd", source="/etc/passwd")
    assert find_media(ws.root, bad.recording) is None
    # Text dressed as audio, inside the workspace: refused by its first bytes.
    fake = ws.root / "media" / "notes.mp3"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text("root:x:0:0:root:/root:/bin/bash\n")
    assert find_media(ws.root, _rec(t, media_path="media/notes.mp3", source="x").recording) is None
    # Real media copied into the workspace: served.
    real = ws.root / "media" / "copy.ogg"
    shutil.copy(ogg, real)
    assert find_media(ws.root, _rec(t, media_path=str(real), source="x").recording).path == real
    # Real media elsewhere that is not the recorded source: refused.
    other = tmp_path / "elsewhere.ogg"
    shutil.copy(ogg, other)
    assert find_media(ws.root, _rec(t, media_path=str(other), source="x").recording) is None
    # A symlink inside the workspace to a file outside it: refused.
    (ws.root / "media" / "link.ogg").symlink_to(other)
    assert find_media(ws.root, _rec(t, media_path="media/link.ogg", source="x").recording) is None
    # A FIFO named like audio: refused without blocking.
    os.mkfifo(ws.root / "media" / "pipe.wav")
    assert find_media(ws.root, _rec(t, media_path="media/pipe.wav", source="x").recording) is None


def test_media_signatures() -> None:
    for name in ("panel.ogg",):
        assert looks_like_media((SAMPLES / name).read_bytes()[:512])
    assert looks_like_media(b"RIFF\x00\x00\x00\x00WAVEfmt ")
    assert not looks_like_media(b"RIFF\x00\x00\x00\x00WEBPVP8 ")
    assert looks_like_media(b"\x00\x00\x00\x20ftypisom")
    assert looks_like_media(b"ID3\x04\x00")
    assert looks_like_media(b"\xff\xfb\x90\x00")
    assert not looks_like_media(b"root:x:0:0")
    assert not looks_like_media(b"%PDF-1.7")
    assert not looks_like_media(b"")


@pytest.fixture
def hostile_served(tmp_path: Path):  # type: ignore[no-untyped-def]
    ws = Workspace(tmp_path / "ws").ensure()
    t = panel_transcript()
    save(ws, _rec(t, id="passwd-media", media_path="/etc/passwd", source="/etc/passwd"))
    (ws.root / "media").mkdir(exist_ok=True)
    (ws.root / "media" / "secret.mp3").write_text("the archive's private notes\n")
    save(ws, _rec(t, id="text-media", media_path="media/secret.mp3", source="x"))
    save(ws, t)
    server = start_server(ws)
    yield server
    stop_server(server)


def test_serve_refuses_a_non_media_file_a_transcript_names(hostile_served) -> None:
    server = hostile_served
    for rid in ("passwd-media", "text-media"):
        status, _h, body = server.request(f"/media/{rid}")
        assert status == 404, rid
        assert b"root:" not in body and b"private" not in body
    status, _h, body = server.request(f"/media/{panel_transcript().recording.id}")
    assert status == 200 and body == (SAMPLES / "panel.ogg").read_bytes()
