"""The voice library, recognition, review and schema 2, without models (fast).

Voiceprints here are made-up unit vectors with known cosines; the real-speech behaviour (real
CAM++ voiceprints of real meetings) is in tests/test_voices_real.py.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from confindex.evaluation.evaluate import score_names
from confindex.speech import voices
from confindex.speech.diarize import clean_pieces
from confindex.store import speakers as sp
from confindex.store import transcript as store
from confindex.store.store import Store
from confindex.store.transcript import (
    Provenance,
    Recording,
    SpeakerSegment,
    Transcript,
    Turn,
    Voiceprint,
    Word,
)


def unit(*xs: float) -> list[float]:
    v = np.zeros(8)
    v[: len(xs)] = xs
    return list(v / np.linalg.norm(v))


def at(cos: float, base: int = 0, other: int = 1) -> list[float]:
    """A unit vector whose cosine with axis `base` is `cos`."""
    v = np.zeros(8)
    v[base] = cos
    v[other] = math.sqrt(1 - cos * cos)
    return list(v)


ALICE = unit(1)
BOB = unit(0, 0, 1)


def make(rid: str, prints: dict[str, list[float]], names: dict[str, str] | None = None):
    turns, diar = [], []
    for i, label in enumerate(prints):
        start = 10.0 * i
        words = [Word(start, start + 1, "hello", speaker=label)]
        turns.append(Turn(i, start, start + 5, label, f"hello from {label}", words=words))
        diar.append(SpeakerSegment(start, start + 5, label))
    return Transcript(
        recording=Recording(id=rid, title=rid, source=f"/x/{rid}.wav", kind="file"),
        provenance=Provenance(confindex_version="test"),
        language="en",
        duration=10.0 * len(prints),
        turns=turns,
        speakers=dict(names or {}),
        diarization=diar,
        voiceprints={k: Voiceprint(v, 5.0) for k, v in prints.items()},
    )


def library(**people: list[float]) -> voices.Library:
    lib = voices.Library()
    for name, v in people.items():
        lib.enroll(name, f"enroll-{name}", "SPEAKER_00", Voiceprint(v, 5.0))
    return lib


# --- matching -----------------------------------------------------------------------------


def test_best_match_needs_threshold_and_margin():
    assert voices.best_match({"A": 0.90, "B": 0.50}) == voices.Match("A", 0.9, 0.4)
    assert voices.best_match({"A": 0.77}) is None  # under the threshold
    assert voices.best_match({"A": 0.90, "B": 0.85}) is None  # too close to a second person
    assert voices.best_match({"A": 0.90}) == voices.Match("A", 0.9, None)
    assert voices.best_match({"A": 0.90, "B": 0.85}, exclude=["b"]) == voices.Match("A", 0.9, None)


def test_library_keeps_several_enrollments_and_scores_the_best():
    lib = voices.Library()
    lib.enroll("Alice", "r1", "SPEAKER_00", Voiceprint(ALICE, 5))
    lib.enroll("alice ", "r2", "SPEAKER_01", Voiceprint(at(0.5), 5))  # another room
    assert len(lib.people) == 1 and len(lib.people["alice"].enrollments) == 2
    assert lib.scores(at(0.5))["alice "] == pytest.approx(1.0)
    # a recording does not recognise itself
    assert lib.scores(at(0.5), exclude_recording="r2")["alice "] == pytest.approx(0.5)
    # the same voice named someone else moves
    lib.enroll("Bob", "r2", "SPEAKER_01", Voiceprint(BOB, 5))
    assert [e.recording for e in lib.people["alice"].enrollments] == ["r1"]
    lib.unenroll("r1", "SPEAKER_00")
    assert list(lib.people) == ["bob"]


def test_library_file_is_json_atomic_and_rebuilt_when_damaged(ws):
    t = make("r1", {"SPEAKER_00": ALICE, "SPEAKER_01": BOB}, {"SPEAKER_00": "Alice"})
    store.save(ws, t)
    lib = voices.rebuild(ws)
    assert [p.name for p in lib.people.values()] == ["Alice"]
    Store(ws).save_voices(lib)
    data = json.loads(voices.path(ws).read_text())
    assert data["version"] == 1 and data["people"][0]["enrollments"][0]["recording"] == "r1"
    assert not list(ws.root.glob(".voices.json.*.tmp"))
    voices.path(ws).write_text("{not json")
    # Reading never writes; the Store (the library's one writer) saves the repaired library.
    assert [p.name for p in voices.load(ws).people.values()] == ["Alice"]
    assert voices.path(ws).read_text() == "{not json"
    assert [p.name for p in Store(ws).voices().people.values()] == ["Alice"]
    assert json.loads(voices.path(ws).read_text())["people"][0]["name"] == "Alice"


def test_rebuild_leaves_out_automatic_and_not_enrolled_names(ws):
    t = make(
        "r1",
        {"SPEAKER_00": ALICE, "SPEAKER_01": BOB, "SPEAKER_02": unit(0, 1)},
        {"SPEAKER_00": "Alice", "SPEAKER_01": "Bob", "SPEAKER_02": "Carol"},
    )
    t.auto_names["SPEAKER_01"] = store.AutoName("Bob", 0.9)
    t.not_enrolled.append("SPEAKER_02")
    store.save(ws, t)
    assert [p.name for p in voices.rebuild(ws).people.values()] == ["Alice"]


# --- recognition -------------------------------------------------------------------------


def test_identify_names_known_voices_only_and_keeps_user_names():
    lib = library(Alice=ALICE, Bob=BOB)
    t = make(
        "new",
        {"SPEAKER_00": at(0.9), "SPEAKER_01": at(0.9, 2, 3), "SPEAKER_02": unit(0, 0, 0, 0, 1)},
    )
    changes = voices.identify(t, lib)
    assert t.speakers == {"SPEAKER_00": "Alice", "SPEAKER_01": "Bob"}
    assert t.auto_names["SPEAKER_00"].score == pytest.approx(0.9)
    assert {c.label for c in changes} == {"SPEAKER_00", "SPEAKER_01"}
    # a user's name is never overwritten, and that person is not given to another label
    t2 = make("new2", {"SPEAKER_00": at(0.9), "SPEAKER_01": at(0.95)}, {"SPEAKER_01": "Carol"})
    voices.identify(t2, lib)
    assert t2.speakers == {"SPEAKER_01": "Carol", "SPEAKER_00": "Alice"}
    # one person per recording: the best-scoring voice gets the name
    t3 = make("new3", {"SPEAKER_00": at(0.85), "SPEAKER_01": at(0.95)})
    voices.identify(t3, lib)
    assert t3.speakers == {"SPEAKER_01": "Alice"}


def test_reject_reverts_and_is_not_suggested_again_confirm_keeps():
    lib = library(Alice=ALICE, Bob=BOB)
    t = make("new", {"SPEAKER_00": at(0.9), "SPEAKER_01": at(0.9, 2, 3)})
    voices.identify(t, lib)
    assert voices.reject(t, "SPEAKER_00") == "Alice"
    assert "SPEAKER_00" not in t.speakers and t.rejected_names == {"SPEAKER_00": ["Alice"]}
    assert voices.confirm(t, "SPEAKER_01") == "Bob"
    assert t.auto_names == {} and t.speakers == {"SPEAKER_01": "Bob"}
    assert voices.identify(t, lib) == []
    assert t.speakers == {"SPEAKER_01": "Bob"}
    with pytest.raises(Exception, match="no automatic name"):
        voices.reject(t, "SPEAKER_01")


def test_automatic_name_goes_when_the_library_no_longer_matches():
    t = make("new", {"SPEAKER_00": at(0.9)})
    voices.identify(t, library(Alice=ALICE))
    assert t.speakers == {"SPEAKER_00": "Alice"}
    changes = voices.identify(t, voices.Library())
    assert t.speakers == {} and t.auto_names == {}
    assert changes == [voices.Change("SPEAKER_00", "Alice", None, None)]


# --- through the workspace and CLI ------------------------------------------------------------


def test_rename_enrolls_review_confirm_reject_and_search(ws):
    from conftest import run

    store.save(ws, make("r1", {"SPEAKER_00": ALICE, "SPEAKER_01": BOB}))
    store.save(ws, make("r2", {"SPEAKER_00": at(0.9, 2, 3), "SPEAKER_01": at(0.92)}))
    assert run("speakers", "r1", "rename", "SPEAKER_00", "Alice Martin", ws=ws).exit_code == 0
    r = run("speakers", "r1", "rename", "SPEAKER_01", "Bob", "--no-enroll", ws=ws)
    assert r.exit_code == 0, r.output
    assert [p.name for p in voices.load(ws).people.values()] == ["Alice Martin"]

    r = run("speakers", "identify", "--json", ws=ws)
    assert r.exit_code == 0, r.output
    got = {x["recording"]: x["changes"] for x in json.loads(r.stdout)["recordings"]}
    assert got["r2"] == [{"label": "SPEAKER_01", "old": None, "new": "Alice Martin", "score": 0.92}]
    assert got["r1"] == []
    hits = json.loads(run("search", 'speaker:"Alice Martin"', "--json", ws=ws).stdout)["hits"]
    assert {(h["recording_id"], h["speaker"], h["speaker_name"]) for h in hits} == {
        ("r1", "SPEAKER_00", "Alice Martin"),
        ("r2", "SPEAKER_01", "Alice Martin"),
    }

    r = run("speakers", "review", ws=ws)
    assert "r2  SPEAKER_01  'Alice Martin'  score 0.92" in r.stdout
    assert run("speakers", "r2", ws=ws).stdout.count("auto 0.92") == 1
    r = run("speakers", "r2", "reject", "SPEAKER_01", ws=ws)
    assert r.exit_code == 0 and "no longer 'Alice Martin'" in r.stdout
    hits = json.loads(run("search", 'speaker:"Alice Martin"', "--json", ws=ws).stdout)["hits"]
    assert {h["recording_id"] for h in hits} == {"r1"}
    run("speakers", "identify", "r2", ws=ws)
    assert store.load(ws, "r2").speakers == {}
    assert "No automatic names" in run("speakers", "review", ws=ws).stdout

    # bad input: one line, non-zero
    r = run("speakers", "r2", "confirm", "SPEAKER_01", ws=ws)
    assert r.exit_code != 0 and "no automatic name" in r.output
    r = run("speakers", "r2", "frobnicate", ws=ws)
    assert r.exit_code == 2 and "unknown action" in r.output


def test_publish_names_known_voices_and_a_new_version_keeps_the_users_choices(ws):
    """The one writer recognises voices; a re-transcription (labels swapped) carries the users'
    names, their rejections and their opt-outs by time overlap, not the library's names."""
    from confindex.api import Archive
    from confindex.store.publish import publish

    archive = Archive(ws)
    publish(ws, make("r1", {"SPEAKER_00": ALICE}))
    archive.rename_speaker("r1", "SPEAKER_00", "Alice")
    done = publish(ws, make("r2", {"SPEAKER_00": at(0.92), "SPEAKER_01": BOB}))
    assert done.recognised == {"SPEAKER_00": "Alice"}
    assert store.load(ws, "r2").auto_names["SPEAKER_00"].score == 0.92
    assert [(p.recording, p.label, p.name) for p in archive.pending_names()] == [
        ("r2", "SPEAKER_00", "Alice")
    ]
    r = archive.reject_speaker("r2", "SPEAKER_00")
    assert (r.label, r.name) == ("SPEAKER_00", "Alice")
    assert store.load(ws, "r2").speakers == {}
    archive.rename_speaker("r2", "SPEAKER_01", "Bob", enroll=False)
    assert {p.name for p in voices.load(ws).people.values()} == {"Alice"}

    # transcribed again: the same voices at the same times, under each other's label
    new = make("r2", {"SPEAKER_01": at(0.92), "SPEAKER_00": BOB})
    done = publish(ws, new)
    t = store.load(ws, "r2")
    assert done.recognised == {} and t.auto_names == {}  # Alice was rejected for that voice
    assert t.speakers == {"SPEAKER_00": "Bob"}
    assert t.rejected_names == {"SPEAKER_01": ["Alice"]} and t.not_enrolled == ["SPEAKER_00"]
    assert {p.name for p in voices.rebuild(ws).people.values()} == {"Alice"}


def test_undo_of_a_rename_takes_the_voice_out_of_the_library(ws):
    from confindex.api import Archive
    from confindex.store.publish import publish

    archive = Archive(ws)
    publish(ws, make("r1", {"SPEAKER_00": ALICE}))
    archive.rename_speaker("r1", "SPEAKER_00", "Alice")
    assert {p.name for p in voices.load(ws).people.values()} == {"Alice"}
    archive.undo("r1")
    assert store.load(ws, "r1").speakers == {} and voices.load(ws).people == {}


def test_rm_takes_the_recordings_voices_out_of_the_library(ws):
    from conftest import run

    store.save(ws, make("r1", {"SPEAKER_00": ALICE}))
    store.save(ws, make("r2", {"SPEAKER_00": ALICE}))
    store.save(ws, make("r3", {"SPEAKER_00": at(0.9)}))
    assert run("speakers", "r1", "rename", "SPEAKER_00", "Alice", ws=ws).exit_code == 0
    assert run("speakers", "r2", "rename", "SPEAKER_00", "Alice", ws=ws).exit_code == 0
    assert [len(p.enrollments) for p in voices.load(ws).people.values()] == [2]
    assert run("rm", "r1", ws=ws).exit_code == 0
    lib = voices.load(ws)
    assert [p.name for p in lib.people.values()] == ["Alice"]
    assert [e.recording for p in lib.people.values() for e in p.enrollments] == ["r2"]
    assert run("rm", "r2", ws=ws).exit_code == 0
    assert voices.load(ws).people == {}
    run("speakers", "identify", "r3", ws=ws)  # nobody left to recognise
    assert store.load(ws, "r3").speakers == {}


def test_people_view_merges_spellings_with_dates(ws):
    a = make("r1", {"SPEAKER_00": ALICE}, {"SPEAKER_00": "Jean Dupont"})
    a.recording.upload_date = "2024-05-01"
    b = make("r2", {"SPEAKER_00": ALICE, "SPEAKER_01": BOB}, {"SPEAKER_01": "jean  dupont"})
    b.recording.upload_date = "2025-06-02"
    b.auto_names["SPEAKER_01"] = store.AutoName("jean  dupont", 0.9)
    people, unnamed = sp.archive_speakers([a, b])
    assert unnamed == 1 and len(people) == 1
    p = people[0]
    assert p.recordings == ["r1", "r2"] and p.automatic == 1
    assert (p.first, p.last) == ("2024-05-01", "2025-06-02")


# --- schema 2 ---------------------------------------------------------------------------------


def test_version_1_transcript_migrates_and_saves_as_2(ws):
    t = make("old", {"SPEAKER_00": ALICE}, {"SPEAKER_00": "Alice"})
    d = t.to_dict()
    for key in ("voiceprints", "auto_names", "rejected_names", "not_enrolled", "flags"):
        del d[key]
    d["schema_version"] = 1
    loaded = store.Transcript.from_dict(d)
    assert loaded.schema_version == 3 and loaded.voiceprints == {} and loaded.auto_names == {}
    assert loaded.speakers == {"SPEAKER_00": "Alice"}
    text = make("new", {"SPEAKER_00": ALICE}).to_json()
    assert json.loads(text)["schema_version"] == 3
    # a voiceprint is one line, not 192
    assert any(line.strip().startswith('"vector": [') for line in text.splitlines())
    assert store.Transcript.from_json(text).voiceprints["SPEAKER_00"].vector == ALICE


# --- pure helpers --------------------------------------------------------------------------------


def test_clean_pieces_leave_out_overlap_longest_first():
    segs = [
        SpeakerSegment(0, 10, "A"),
        SpeakerSegment(4, 5, "B"),
        SpeakerSegment(12, 13, "A"),
        SpeakerSegment(14, 14.3, "A"),
    ]
    assert clean_pieces(segs, "A") == [(5, 10), (0, 4), (12, 13)]


def test_score_names_precision_recall():
    s = score_names(
        {"S0": "MEE009", "S1": "MEE012", "S2": None, "S3": "MEE009"},
        {"S0": "MEE009", "S1": "MEE009", "S2": "MEE012", "S3": None},
        {"MEE009", "MEE012"},
    )
    assert (s.named, s.correct, s.recognisable) == (3, 1, 3)
    assert s.precision == pytest.approx(1 / 3) and s.recall == pytest.approx(1 / 3)
