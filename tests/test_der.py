"""DER and RTTM: hand-computed cases (seconds are chosen so the arithmetic is exact)."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from conftest import run, shared_file

from confindex.errors import InputError
from confindex.evaluation.der import assign, der, parse_rttm, read_rttm, to_rttm
from confindex.store.transcript import SpeakerSegment


def S(start: float, end: float, speaker: str) -> SpeakerSegment:
    return SpeakerSegment(start, end, speaker)


def test_perfect_hypothesis_with_other_labels_scores_zero():
    ref = [S(0, 10, "A"), S(10, 20, "B")]
    hyp = [S(0, 10, "x"), S(10, 20, "y")]
    r = der(ref, hyp, collar=0)
    assert r.der == 0
    assert r.total == 20
    assert r.mapping == {"x": "A", "y": "B"}


def test_missed_speech():
    r = der([S(0, 10, "A")], [S(0, 5, "x")], collar=0)
    assert (r.missed, r.false_alarm, r.confusion) == (5, 0, 0)
    assert r.der == 0.5


def test_false_alarm_beyond_reference():
    r = der([S(0, 10, "A")], [S(0, 10, "x"), S(10, 12, "y")], collar=0)
    assert (r.missed, r.false_alarm, r.confusion) == (0, 2, 0)
    assert r.der == pytest.approx(0.2)


def test_confusion_uses_optimal_mapping():
    # x talks 10 s with A and 5 s with B: x->A, y->B; 10-15 s is confusion.
    r = der([S(0, 10, "A"), S(10, 20, "B")], [S(0, 15, "x"), S(15, 20, "y")], collar=0)
    assert r.mapping == {"x": "A", "y": "B"}
    assert (r.missed, r.false_alarm, r.confusion) == (0, 0, 5)
    assert r.der == 0.25


def test_greedy_mapping_would_be_wrong():
    # Overlaps: x-A 5 s, y-A 6 s, y-B 4 s. Greedy (largest first) takes y->A and leaves x->B
    # (6 s matched); the optimum is x->A + y->B (9 s matched).
    ref = [S(0, 5, "A"), S(5, 11, "A"), S(11, 15, "B")]
    hyp = [S(0, 5, "x"), S(5, 15, "y")]
    r = der(ref, hyp, collar=0)
    assert r.mapping == {"x": "A", "y": "B"}
    assert r.confusion == 6  # 5-11 s: A talks, y (mapped to B) is labelled
    assert r.der == pytest.approx(6 / 15)


def test_overlap_counts_each_reference_speaker():
    # 5-10 s two people talk, the hypothesis hears one: 5 s missed; 10-15 s confusion.
    r = der([S(0, 10, "A"), S(5, 15, "B")], [S(0, 15, "x")], collar=0)
    assert r.total == 20
    assert r.missed == 5
    assert r.confusion == 5
    assert r.der == 0.5


def test_overlap_found_by_hypothesis_is_correct():
    r = der([S(0, 10, "A"), S(5, 15, "B")], [S(0, 10, "x"), S(5, 15, "y")], collar=0)
    assert r.der == 0
    assert r.total == 20


def test_one_to_one_mapping_leaves_a_label_unmapped():
    r = der([S(0, 20, "A")], [S(0, 10, "x"), S(10, 20, "y")], collar=0)
    assert len(r.mapping) == 1
    assert r.confusion == 10
    assert r.der == 0.5


def test_collar_excludes_reference_boundaries():
    ref = [S(0, 10, "A"), S(10, 20, "B")]
    hyp = [S(0, 10.2, "x"), S(10.2, 20, "y")]
    assert der(ref, hyp, collar=0).der == pytest.approx(0.2 / 20)
    r = der(ref, hyp, collar=0.25)
    assert r.der == 0
    # scored: 0.25-9.75 and 10.25-19.75
    assert r.total == pytest.approx(19)


def test_collar_does_not_hide_errors_away_from_boundaries():
    ref = [S(0, 10, "A")]
    hyp = [S(0, 10, "x"), S(3, 4, "y")]  # 1 s false alarm in the middle
    r = der(ref, hyp, collar=0.25)
    assert r.false_alarm == pytest.approx(1)
    assert r.total == pytest.approx(9.5)


def test_same_speaker_overlapping_segments_are_merged():
    r = der([S(0, 10, "A"), S(5, 15, "A")], [S(0, 15, "x")], collar=0)
    assert r.total == 15
    assert r.der == 0


def test_empty_cases():
    assert der([], [], collar=0).der == 0
    assert math.isinf(der([], [S(0, 1, "x")], collar=0).der)
    r = der([S(0, 4, "A")], [], collar=0)
    assert r.der == 1 and r.missed == 4


def test_tuples_are_accepted_and_zero_length_ignored():
    r = der([(0, 10, "A"), (3, 3, "B")], [(0.0, 10.0, "x")], collar=0)
    assert r.der == 0 and r.total == 10


def test_negative_collar_is_rejected():
    with pytest.raises(ValueError):
        der([S(0, 1, "A")], [], collar=-1)


def _brute_force(w: list[list[float]]) -> float:
    rows, cols = len(w), len(w[0])
    best = 0.0
    if rows <= cols:
        for perm in itertools.permutations(range(cols), rows):
            best = max(best, sum(w[i][perm[i]] for i in range(rows)))
    else:
        for perm in itertools.permutations(range(rows), cols):
            best = max(best, sum(w[perm[j]][j] for j in range(cols)))
    return best


@pytest.mark.parametrize("seed", range(40))
def test_assignment_is_optimal(seed: int):
    rng = random.Random(seed)
    rows, cols = rng.randint(1, 6), rng.randint(1, 6)
    w = [[rng.choice([0.0, rng.uniform(0, 10)]) for _ in range(cols)] for _ in range(rows)]
    got = assign(w)
    used = [c for c in got if c >= 0]
    assert len(used) == len(set(used)) == min(rows, cols)
    assert sum(w[i][c] for i, c in enumerate(got) if c >= 0) == pytest.approx(_brute_force(w))


def test_rttm_round_trip(tmp_path):
    segs = [S(1.5, 3.25, "SPEAKER_01"), S(0.0, 1.0, "Jean-Loup Chrétien")]
    text = to_rttm(segs, "my talk")
    lines = text.splitlines()
    assert lines[0] == "SPEAKER my_talk 1 0.000 1.000 <NA> <NA> Jean-Loup_Chrétien <NA> <NA>"
    assert lines[1] == "SPEAKER my_talk 1 1.500 1.750 <NA> <NA> SPEAKER_01 <NA> <NA>"
    path = tmp_path / "x.rttm"
    path.write_text(";; comment\n" + text + "SPEAKER other 1 9 1 <NA> <NA> Z <NA> <NA>\n")
    back = read_rttm(path, file_id="my_talk")
    assert back == [S(0.0, 1.0, "Jean-Loup_Chrétien"), S(1.5, 3.25, "SPEAKER_01")]
    assert len(read_rttm(path)) == 3


def test_rttm_bad_line_names_the_line():
    # A bad reference is the user's input: a one-line InputError naming the line (issue 16).
    with pytest.raises(InputError, match="line 2"):
        parse_rttm("SPEAKER f 1 0 1 <NA> <NA> A <NA> <NA>\nSPEAKER f 1 zero 1 <NA> <NA> A\n")
    with pytest.raises(InputError, match="line 1"):
        parse_rttm("SPEAKER f 1 nan 1 <NA> <NA> A <NA> <NA>\n")


@pytest.mark.parametrize(
    "content",
    [b"SPEAKER f 1 zero 1 <NA> <NA> A <NA> <NA>\n", b"\xff\xfe\x00binary\x00", b"SPEAKER f\n"],
)
def test_eval_diarization_bad_rttm_is_a_one_line_error(tmp_path, content: bytes):
    bad = tmp_path / "bad.rttm"
    bad.write_bytes(content)
    r = run("eval", "diarization", str(tmp_path / "x.wav"), str(bad))
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {bad}"), r.stderr


def test_shared_pyannote_reference_parses():
    ref = read_rttm(shared_file("diar/pyannote_sample.rttm"))
    assert {s.speaker for s in ref} == {"speaker90", "speaker91"}
    assert der(ref, ref).der == 0
