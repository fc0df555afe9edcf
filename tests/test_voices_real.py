"""Voices on real speech: two AMI meeting excerpts with the same two people, the pyannote
telephone call and the JFK clip (../shared/data; skipped when absent). Real Whisper, real
sherpa-onnx diarization and CAM++ voiceprints, real Whoosh index, real CLI."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import run, shared_file

from confindex.evaluation.der import der, read_rttm
from confindex.speech import audio, voices
from confindex.speech.diarize import diarize
from confindex.store import transcript as store
from confindex.store.workspace import Workspace

pytestmark = pytest.mark.slow


def fetch(ws: Workspace, path) -> store.Transcript:
    r = run("fetch", str(path), "--json", ws=ws)
    assert r.exit_code == 0, r.output
    return store.load(ws, json.loads(r.stdout)["recordings"][0]["recording_id"])


def truth(t: store.Transcript, rttm) -> dict[str, str]:
    """Diarization label -> the reference speaker it overlaps most."""
    return der(read_rttm(rttm), t.diarization).mapping


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """dev00 fetched and both speakers named after the reference; then dev01 and JFK fetched."""
    dev00 = shared_file("diar/ami_dev00.wav")
    dev01 = shared_file("diar/ami_dev01.wav")
    jfk = shared_file("en/jfk.flac")
    root = tmp_path_factory.mktemp("voices")
    media = root / "media-in"
    media.mkdir()
    for p in (dev00, dev01, jfk):  # copies: the old-transcript test needs media it may touch
        shutil.copy(p, media / p.name)
    ws = Workspace(root / "ws")
    t0 = fetch(ws, media / dev00.name)
    names = {"MEE009": "Maria Ortega", "MEE012": "Ken Ito"}
    for label, ref in truth(t0, dev00.with_suffix(".rttm")).items():
        r = run("speakers", t0.id, "rename", label, names[ref], ws=ws)
        assert r.exit_code == 0, r.output
    t1 = fetch(ws, media / dev01.name)
    tj = fetch(ws, media / jfk.name)
    return ws, names, t0, t1, tj, dev01.with_suffix(".rttm")


def test_enrolled_people_are_named_in_another_meeting_and_nobody_else(archive):
    ws, names, _t0, t1, tj, rttm1 = archive
    assert {p.name for p in voices.load(ws).people.values()} == set(names.values())
    assert len({s.speaker for s in t1.diarization}) == 2
    expected = {label: names[ref] for label, ref in truth(t1, rttm1).items()}
    assert t1.speakers == expected  # both named, each by the right name
    assert set(t1.auto_names) == set(expected)
    assert all(a.score >= voices.THRESHOLD for a in t1.auto_names.values())
    assert tj.speakers == {} and tj.auto_names == {}  # JFK is nobody we know


def test_confirmed_name_found_by_speaker_search_elsewhere_and_reject_reverts(archive):
    ws, _names, t0, t1, _tj, _rttm1 = archive
    ken = next(label for label, name in t1.speakers.items() if name == "Ken Ito")
    r = run("search", 'speaker:"Ken Ito"', "--json", ws=ws)
    hits = json.loads(r.stdout)["hits"]
    assert {h["recording_id"] for h in hits} == {t0.id, t1.id}
    assert all(h["speaker_name"] == "Ken Ito" for h in hits)
    auto_hit = next(h for h in hits if h["recording_id"] == t1.id)
    assert auto_hit["speaker"] == ken
    r = run("speakers", "review", "--json", ws=ws)
    pending = {(p["recording"], p["label"], p["name"]) for p in json.loads(r.stdout)["pending"]}
    assert (t1.id, ken, "Ken Ito") in pending

    r = run("speakers", t1.id, "reject", ken, ws=ws)
    assert r.exit_code == 0, r.output
    hits = json.loads(run("search", 'speaker:"Ken Ito"', "--json", ws=ws).stdout)["hits"]
    assert {h["recording_id"] for h in hits} == {t0.id}
    assert ken not in store.load(ws, t1.id).speakers
    run("speakers", "identify", t1.id, ws=ws)  # never suggested again for this recording
    assert ken not in store.load(ws, t1.id).speakers
    r = run("export", t1.id, "--format", "txt", ws=ws)
    assert "Ken Ito" not in r.stdout and "Maria Ortega" in r.stdout


def test_old_transcript_loads_searches_exports_and_gets_voiceprints(archive, tmp_path):
    ws, names, t0, *_ = archive
    d = json.loads(ws.transcript_path(t0.id).read_text())
    for key in ("voiceprints", "auto_names", "rejected_names", "not_enrolled", "flags"):
        del d[key]
    d["schema_version"] = 1
    old = Workspace(tmp_path / "old")
    old.transcripts.mkdir(parents=True)
    old.transcript_path(t0.id).write_text(json.dumps(d))
    assert run("index", "--rebuild", ws=old).exit_code == 0
    hits = json.loads(run("search", 'speaker:"Maria Ortega"', "--json", ws=old).stdout)["hits"]
    assert hits and all(h["recording_id"] == t0.id for h in hits)
    r = run("export", t0.id, "--format", "md", ws=old)
    assert r.exit_code == 0 and "Maria Ortega" in r.stdout
    # the media is still where the transcript says: voiceprints are computed from it
    r = run("speakers", "identify", "--json", ws=old)
    assert json.loads(r.stdout)["recordings"][0]["voiceprints"] is True
    t = store.load(old, t0.id)
    assert set(t.voiceprints) == set(t0.voiceprints)
    assert json.loads(old.transcript_path(t0.id).read_text())["schema_version"] == 3
    # and its user-given names make the library again
    assert {p.name for p in voices.rebuild(old).people.values()} == set(names.values())


@pytest.mark.parametrize(
    ("clip", "speakers", "max_der"),
    [
        # before (main, same models): 2 speakers, DER 0.017
        ("pyannote_sample", 2, 0.05),
        # before: 2 speakers, DER 0.272; measured after: 0.194
        ("ami_dev00", 2, 0.272),
        # before: 4 speakers for 2, DER 0.364; measured after: 2 speakers, 0.167
        ("ami_dev01", 2, 0.25),
    ],
)
def test_speaker_counts_and_der_on_real_meetings(clip, speakers, max_der):
    wav = shared_file(f"diar/{clip}.wav")
    hyp = diarize(audio.decode(wav))
    assert len({s.speaker for s in hyp}) == speakers
    assert der(read_rttm(wav.with_suffix(".rttm")), hyp).der <= max_der


def test_eval_speakers_cli_precision_recall():
    d = shared_file("diar/ami_dev00.wav").parent
    args = [str(d / f"ami_dev0{i}.{ext}") for i in (0, 1) for ext in ("wav", "rttm")]
    r = run("eval", "speakers", *args, "--json")
    assert r.exit_code == 0, r.output
    ev = json.loads(r.stdout)
    assert (ev["precision"], ev["recall"], ev["named"]) == (1.0, 1.0, 2)
    r = run("eval", "speakers", args[0], args[1], str(d / "nope.wav"), args[3])
    assert r.exit_code != 0 and "no such file" in r.output
