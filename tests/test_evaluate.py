"""WER/CER and normalisers (hand-computed), search scoring, and `confindex eval` on real audio."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from confindex.cli import cli
from confindex.errors import InputError
from confindex.evaluation.evaluate import (
    SearchRef,
    error_rates,
    evaluate_search,
    normaliser,
    read_search_refs,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def shared(rel: str) -> Path:
    p = SHARED / rel
    if not p.exists():
        pytest.skip(f"{p} is not available (../shared is absent)")
    return p


# --- error rates: every expected value below is counted by hand --------------------------------


def test_wer_counts_substitution_deletion_insertion() -> None:
    # ref: the cat sat on the mat (6 words); hyp: the bat sat on mat
    # cat→bat (S), second "the" deleted (D): 2 edits, and no 2-edit alignment is different
    r = error_rates("the cat sat on the mat", "the bat sat on mat")
    assert (r.substitutions, r.deletions, r.insertions) == (1, 1, 0)
    assert r.wer == pytest.approx(2 / 6)
    assert r.ref_words == 6 and r.hyp_words == 5
    # one inserted word in a 3-word reference
    r = error_rates("a b c", "a b x c")
    assert (r.substitutions, r.deletions, r.insertions) == (0, 0, 1)
    assert r.wer == pytest.approx(1 / 3)


def test_cer_counts_characters_including_spaces() -> None:
    # "abc de" (6 chars) vs "abd de": one substitution → 1/6
    assert error_rates("abc de", "abd de").cer == pytest.approx(1 / 6)
    # "abc" vs "abcd": one insertion → 1/3
    assert error_rates("abc", "abcd").cer == pytest.approx(1 / 3)


def test_perfect_and_empty_hypothesis() -> None:
    assert error_rates("a b c", "a b c").wer == 0.0
    r = error_rates("a b c", "")
    assert r.wer == 1.0 and r.deletions == 3


def test_wer_above_one_when_hypothesis_is_longer() -> None:
    # 1 substitution + 2 insertions over 1 reference word
    assert error_rates("hello", "yellow fellow mellow").wer == pytest.approx(3.0)


def test_empty_reference_is_an_input_error() -> None:
    with pytest.raises(InputError):
        error_rates(" ,. ", "anything", normaliser("whisper-basic"))


def test_no_normaliser_counts_punctuation_and_case() -> None:
    # "Hello," vs "hello": both tokens differ → WER 1 without normalising, 0 with
    assert error_rates("Hello, world.", "hello world").wer == pytest.approx(1.0)
    assert error_rates("Hello, world.", "hello world", normaliser("whisper-basic")).wer == 0.0


def test_english_normaliser_numbers_spelling_contractions() -> None:
    en = normaliser("auto", "en")
    assert en.name == "whisper-english"
    assert en("Twenty-five colours, Mr. Smith!") == "25 colors mister smith"
    # spelled-out and digit forms score as the same words
    assert error_rates("It was nineteen seventy five.", "it was 1975", en).wer == 0.0


def test_basic_normaliser_keeps_french_accents() -> None:
    fr = normaliser("auto", "fr")
    assert fr.name == "whisper-basic"
    assert fr("L'histoire de Jean-Loup Chrétien : diplomatie spatiale !") == (
        "l histoire de jean loup chrétien diplomatie spatiale"
    )
    # an accent error is a word error in French
    r = error_rates("forêts et conseiller général", "forets et conseiller général", fr)
    assert r.wer == pytest.approx(1 / 4)
    assert r.cer == pytest.approx(1 / len("forêts et conseiller général"))


def test_unknown_normaliser() -> None:
    with pytest.raises(InputError):
        normaliser("fancy")


# --- search scoring against a fake search function ---------------------------------------------


def _hit(rid: str, t: float) -> SimpleNamespace:
    return SimpleNamespace(recording_id=rid, time=t)


def test_evaluate_search_recall_rank_and_time_error(tmp_path: Path, monkeypatch) -> None:
    import confindex.store.transcript as tr

    monkeypatch.setattr(
        tr, "resolve_recording", lambda ws, ref: SimpleNamespace(recording=SimpleNamespace(id=ref))
    )
    results = {
        "q1": [_hit("other", 5.0), _hit("a", 40.0), _hit("a", 21.0)],  # closest: 21 (rank 2)
        "q2": [_hit("other", 1.0)],  # not found
        "q3": [_hit("b", 100.0)],  # found, far away
    }
    refs = [SearchRef("q1", "a", 20.0), SearchRef("q2", "a", 0.0), SearchRef("q3", "b", 90.0)]

    def fake(ws, query, limit=10):
        return results[query]

    ev = evaluate_search(None, refs, k=10, search_fn=fake)  # type: ignore[arg-type]
    assert [o.rank for o in ev.outcomes] == [2, None, 1]
    assert ev.outcomes[0].hit_time == 21.0 and ev.outcomes[0].time_error == 1.0
    assert ev.recall == pytest.approx(2 / 3)
    assert ev.mean_time_error == pytest.approx((1.0 + 10.0) / 2)
    assert ev.max_time_error == pytest.approx(10.0)
    assert ev.mrr == pytest.approx((1 / 2 + 1 / 1) / 3)

    strict = evaluate_search(None, refs, k=10, tolerance=5.0, search_fn=fake)  # type: ignore[arg-type]
    assert [o.rank for o in strict.outcomes] == [3, None, None]
    assert strict.recall == pytest.approx(1 / 3)
    # k=1 cuts q1's only hits in recording a
    assert evaluate_search(None, refs, k=1, search_fn=fake).recall == pytest.approx(1 / 3)  # type: ignore[arg-type]


def test_read_search_refs(tmp_path: Path) -> None:
    p = tmp_path / "q.json"
    p.write_text(json.dumps({"queries": [{"query": "x", "recording": "r", "time": "1:05"}]}))
    assert read_search_refs(p) == [SearchRef("x", "r", 65.0)]
    p.write_text(json.dumps([{"query": "x", "time": 3}]))
    with pytest.raises(InputError):
        read_search_refs(p)


# --- the real CLI on real recordings -----------------------------------------------------------


@pytest.mark.slow
def test_eval_asr_jfk_is_word_perfect() -> None:
    audio, ref = shared("en/jfk.flac"), shared("en/jfk.ref.txt")
    result = CliRunner().invoke(cli, ["eval", "asr", str(audio), str(ref), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["language"] == "en"
    assert data["rates"]["normaliser"] == "whisper-english"
    assert data["rates"]["wer"] == 0.0
    assert data["rates"]["ref_words"] == 22


@pytest.mark.slow
def test_eval_asr_french_table() -> None:
    audio = shared("fr/picovoice_test_fr.wav")
    ref = shared("fr/picovoice_test_fr.ref.txt")
    result = CliRunner().invoke(cli, ["eval", "asr", str(audio), str(ref)])
    assert result.exit_code == 0, result.output
    assert "whisper-basic" in result.stdout
    wer_line = next(line for line in result.stdout.splitlines() if line.startswith("WER"))
    assert float(wer_line.split()[1]) <= 0.25


def test_eval_asr_missing_reference_is_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["eval", "asr", str(SAMPLES / "panel.ogg"), str(tmp_path / "nope.txt")]
    )
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: no such file: {tmp_path / 'nope.txt'}"


@pytest.mark.slow
def test_eval_diarization_on_bundled_sample() -> None:
    result = CliRunner().invoke(
        cli,
        ["eval", "diarization", str(SAMPLES / "panel.ogg"), str(SAMPLES / "panel.rttm"), "--json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ref_speakers"] == 2 and data["hyp_speakers"] == 2
    assert data["der"] < 0.05


def test_eval_diarization_reports_overlap_der_on_a_real_meeting() -> None:
    """ami_trn04: 2.1 s of its speech is two people at once; the table shows the three parts
    and the overlap-only DER, and --json gives the same figures."""
    wav = shared("diar/ami_trn04.wav")
    args = ["eval", "diarization", str(wav), str(wav.with_suffix(".rttm"))]
    data = json.loads(CliRunner().invoke(cli, [*args, "--json"]).stdout)
    assert data["overlap_total"] > 1.0 and 0 <= data["overlap_der"] <= 1
    total = data["missed"] + data["false_alarm"] + data["confusion"]
    assert abs(total / data["total"] - data["der"]) < 1e-9
    table = CliRunner().invoke(cli, args)
    assert table.exit_code == 0, table.output
    for line in ("missed", "false alarm", "confusion", "overlap DER"):
        assert line in table.stdout
    assert f"{data['overlap_der']:.3f}" in table.stdout


def test_timing_mode_scores_every_mention_against_a_word_timed_reference(
    tmp_path: Path, monkeypatch
) -> None:
    import confindex.store.transcript as tr
    from confindex.evaluation.evaluate import read_word_timings, said_at

    monkeypatch.setattr(
        tr, "resolve_recording", lambda ws, ref: SimpleNamespace(recording=SimpleNamespace(id=ref))
    )
    words = [("Nicolas", 1.2), ("dit", 1.5), ("que", 1.7), ("les", 2.0), ("conseillers", 2.2)]
    words += [("généraux", 2.9), ("et", 3.4), ("Nicolas", 9.8), ("rit.", 10.3)]
    wfile = tmp_path / "ref.words.json"
    wfile.write_text(json.dumps([{"text": t, "start": s, "end": s + 0.2} for t, s in words]))
    ref_words = read_word_timings(wfile)
    assert said_at("Nicolas", ref_words, "fr") == [1.2, 9.8]
    assert said_at('"conseiller général"', ref_words, "fr") == [2.2]  # inflected, in order
    qfile = tmp_path / "q.json"
    qfile.write_text(json.dumps([{"query": "Nicolas", "recording": "r"}]))
    refs = read_search_refs(qfile, ref_words, "fr")
    assert refs == [SearchRef("Nicolas", "r", 1.2), SearchRef("Nicolas", "r", 9.8)]
    # One hit holding two mentions: each reference moment is scored on its closest mention.
    hit = SimpleNamespace(
        recording_id="r", time=1.0, mentions=[SimpleNamespace(time=1.0), SimpleNamespace(time=12.5)]
    )
    ev = evaluate_search(None, refs, k=100, tolerance=2.0, search_fn=lambda *a, **k: [hit])  # type: ignore[arg-type]
    assert [o.time_error for o in ev.outcomes] == [0.2, None]  # 12.5 is 2.7 s from 9.8
    assert ev.recall == 0.5 and ev.max_time_error == pytest.approx(0.2)
    qfile.write_text(json.dumps([{"query": "budget", "recording": "r"}]))
    with pytest.raises(InputError, match="never says 'budget'"):
        read_search_refs(qfile, ref_words, "fr")
