"""Speaker names are manual work: every re-transcription path keeps them (issue 16).

Real parts: a real two-speaker recording (pyannote sample) served over loopback HTTP to real
yt-dlp, the embedded Whisper model, the shipped diarization models, the CLI.
"""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import run, shared_file

from confindex.store import transcript as store
from confindex.store.ledger import Ledger
from confindex.store.publish import history
from confindex.store.workspace import Workspace

pytestmark = pytest.mark.slow

NAMES = {"Ada Lovelace", "Grace Hopper"}


@pytest.fixture(scope="module")
def named(tmp_path_factory, request):
    """The sample fetched over HTTP, its two speakers named: (workspace, recording id)."""
    import functools
    import threading

    from conftest import LoopbackServer, _QuietHandler

    src = shared_file("diar/pyannote_sample.wav")
    root = tmp_path_factory.mktemp("www")
    shutil.copy(src, root / "call.wav")
    server = LoopbackServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    request.addfinalizer(server.shutdown)
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    r = run("fetch", f"http://127.0.0.1:{server.server_address[1]}/call.wav", ws=ws)
    assert r.exit_code == 0, r.output
    (rid,) = ws.transcript_ids()
    listing = json.loads(run("speakers", rid, "--json", ws=ws).stdout)["speakers"]
    labels = [s["label"] for s in listing][:2]
    assert len(labels) == 2
    for label, name in zip(labels, sorted(NAMES), strict=True):
        assert run("speakers", rid, "rename", label, name, ws=ws).exit_code == 0
    return ws, rid


def names_in_use(ws: Workspace, rid: str) -> dict[str, str]:
    """label -> name for the named labels that speak in the turns."""
    t = store.load(ws, rid)
    speaking = {turn.speaker for turn in t.turns}
    return {lab: n for lab, n in t.speakers.items() if lab in speaking}


def test_no_diarize_keeps_every_name_on_the_same_voices(named):
    ws, rid = named
    before = store.load(ws, rid)
    r = run("transcribe", rid, "--no-diarize", ws=ws)
    assert r.exit_code == 0, r.output
    after = store.load(ws, rid)
    assert set(names_in_use(ws, rid).values()) == NAMES
    assert after.speakers == before.speakers
    # The words say the same speakers said them: the earlier diarization was reused.
    assert after.diarization == before.diarization
    assert len(history(ws, rid)) >= 1
    # Recorded in the ledger like a fetch: one row, indexed, not left claimed.
    with Ledger.of(ws) as led:
        rows = led.by_recording_id(rid)
    assert [(r.stage, r.owner) for r in rows] == [("indexed", None)]


def test_other_language_keeps_every_name(named):
    ws, rid = named
    r = run("transcribe", rid, "--language", "fr", ws=ws)
    assert r.exit_code == 0, r.output
    assert store.load(ws, rid).language == "fr"
    assert set(names_in_use(ws, rid).values()) == NAMES


def test_media_deleted_keeps_every_name_and_undo_goes_back(named):
    ws, rid = named
    for f in ws.media.iterdir():
        f.unlink()
    r = run("transcribe", rid, "--language", "en", ws=ws)
    assert r.exit_code == 0, r.output
    t = store.load(ws, rid)
    assert t.language == "en"
    assert set(names_in_use(ws, rid).values()) == NAMES
    # The names are in the index too: a speaker search finds her turns, and only hers.
    hits = json.loads(run("search", "--json", "speaker:Grace", ws=ws).stdout)["hits"]
    assert hits and {h["speaker_name"] for h in hits} == {"Grace Hopper"}
    r = run("transcribe", rid, "--undo", ws=ws)
    assert r.exit_code == 0, r.output
    assert store.load(ws, rid).language == "fr"  # the version before, back
    assert set(names_in_use(ws, rid).values()) == NAMES
