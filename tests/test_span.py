"""`confindex transcribe REC --span START-END` (issue 14): re-decode one passage with other
options and splice it in, keeping every other word and the speakers' names."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import run, shared_file

from confindex.errors import InputError
from confindex.run.span import parse_span, splice
from confindex.speech import quality
from confindex.speech.turns import build_turns, words_of
from confindex.store.transcript import (
    Flag,
    Provenance,
    Recording,
    Segment,
    SpeakerSegment,
    Transcript,
    Word,
    load,
)
from confindex.store.workspace import Workspace


def test_parse_span():
    assert parse_span("12:30-14:00") == (750.0, 840.0)
    assert parse_span("750-840") == (750.0, 840.0)
    assert parse_span("1:02:03..1:05:00") == (3723.0, 3900.0)
    assert parse_span("12m30s..14m") == (750.0, 840.0)
    assert parse_span("0:10-0:40", duration=30.0) == (10.0, 30.0)  # clipped to the end
    for bad, msg in (("14:00-12:30", "end must come after"), ("abc", "START-END"),
                     ("", "START-END"), ("1:00-1:10", "starts after")):  # fmt: skip
        with pytest.raises(InputError, match=msg):
            parse_span(bad, duration=30.0)


def words(start: float, text: str, who: str, p: float = 0.9) -> list[Word]:
    return [Word(start + i * 0.5, start + i * 0.5 + 0.4, tok, p, who)
            for i, tok in enumerate(text.split())]  # fmt: skip


def test_splice_replaces_the_span_and_keeps_the_rest_and_the_names():
    before = words(0.0, "bonjour à tous", "S1")
    middle = words(5.0, "le soyouz xx yy zz", "S2", 0.1)
    after = words(10.0, "merci beaucoup", "S1")
    segs = [Segment(i, ws_[0].start, ws_[-1].end, " ".join(w.text for w in ws_), ws_, -0.3, 0.1,
                    "fr") for i, ws_ in enumerate((before, middle, after))]  # fmt: skip
    rec = Recording("r", "Talk", "/r.wav", kind="file")
    old = Transcript(rec, Provenance("t"), "fr", 12.0, segments=segs,
                     turns=build_turns(words_of(segs), "fr"),
                     speakers={"S1": "Diane", "S2": "Sheila"})  # fmt: skip
    old.flags = quality.assess(segs)
    assert [f.kind for f in old.flags] == ["lowconf"]
    diar = [SpeakerSegment(0.0, 2.0, "S1"), SpeakerSegment(4.5, 8.0, "S2"),
            SpeakerSegment(9.5, 12.0, "S1")]  # fmt: skip
    new_words = [Word(5.0, 5.4, "le"), Word(5.5, 5.9, "Soyouz"), Word(6.0, 6.4, "décolle")]
    new = [Segment(0, 5.0, 6.4, "le Soyouz décolle", new_words, -0.2, 0.05, "fr")]
    new_flag = Flag("language", 5.0, 6.4, 0.5, "test", [0])
    t = splice(old, 4.5, 8.0, new, [new_flag], diar)
    assert [w.text for turn in t.turns for w in turn.words] == [
        "bonjour", "à", "tous", "le", "Soyouz", "décolle", "merci", "beaucoup"]  # fmt: skip
    assert [(t.speaker_name(x.speaker), x.text) for x in t.turns] == [
        ("Diane", "bonjour à tous"), ("Sheila", "le Soyouz décolle"),
        ("Diane", "merci beaucoup")]  # fmt: skip
    assert [s.text for s in t.segments] == ["bonjour à tous", "le Soyouz décolle",
                                            "merci beaucoup"]  # fmt: skip
    assert [s.id for s in t.segments] == [0, 1, 2]
    # The old low-confidence flag was inside the span: gone; the span's own flag is in.
    assert [(f.kind, f.segments) for f in t.flags] == [("language", [1])]
    assert old.turns[1].text == "le soyouz xx yy zz"  # the input is not modified


@pytest.fixture(scope="module")
def fetched(tmp_path_factory):
    """The pyannote sample (two real speakers) fetched for real, one speaker named."""
    wav = shared_file("diar/pyannote_sample.wav")
    ws = Workspace(tmp_path_factory.mktemp("span") / "ws")
    media = ws.root.parent / "call.wav"
    shutil.copy(wav, media)
    r = run("fetch", str(media), "--json", ws=ws)
    assert r.exit_code == 0, r.output
    rid = json.loads(r.stdout)["recordings"][0]["recording_id"]
    assert run("speakers", rid, "rename", "SPEAKER_00", "Diane", ws=ws).exit_code == 0
    return ws, rid


@pytest.mark.slow
def test_transcribe_span_redecodes_one_passage_and_keeps_the_rest(fetched):
    ws, rid = fetched
    old = load(ws, rid)
    outside = [(w.start, w.text, w.speaker) for x in old.turns for w in x.words
               if not 10.0 <= (w.start + w.end) / 2 < 20.0]  # fmt: skip
    r = run("transcribe", rid, "--span", "0:10-0:20", "--beam-size", "1", "--language", "en",
            "--json", ws=ws)  # fmt: skip
    assert r.exit_code == 0, r.output
    t = load(ws, rid)
    kept = [(w.start, w.text, w.speaker) for x in t.turns for w in x.words
            if not 10.0 <= (w.start + w.end) / 2 < 20.0]  # fmt: skip
    assert kept == outside
    inside = [w for x in t.turns for w in x.words if 10.0 <= (w.start + w.end) / 2 < 20.0]
    assert inside and {w.speaker for w in inside} <= {"SPEAKER_00", "SPEAKER_01"}
    assert t.speakers.get("SPEAKER_00") == "Diane"
    spans = t.provenance.options["spans"]
    assert spans[-1]["start"] == 10.0 and spans[-1]["end"] == 20.0
    assert spans[-1]["options"]["beam_size"] == 1
    # Published: the index answers with the new words.
    word = inside[len(inside) // 2].text.strip(".,?!")
    s = run("search", word, "--json", ws=ws)
    assert any(10.0 <= h["time"] <= 20.5 for h in json.loads(s.stdout)["hits"]), s.stdout
    # The one publish kept the replaced version: `--undo` brings the whole-file decode back.
    from confindex import Archive

    assert len(Archive(ws.root).history(rid)) >= 1
    u = run("transcribe", rid, "--undo", ws=ws)
    assert u.exit_code == 0, u.output
    back = load(ws, rid)
    assert [x.text for x in back.turns] == [x.text for x in old.turns]
    assert back.speakers.get("SPEAKER_00") == "Diane"


@pytest.mark.slow
def test_transcribe_span_bad_input_is_one_line(fetched):
    ws, rid = fetched
    for span, msg in (("0:40-0:50", "starts after"), ("0:20-0:10", "end must come after")):
        r = run("transcribe", rid, "--span", span, ws=ws)
        assert r.exit_code != 0 and msg in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    r = run("transcribe", "nothing-here", "--span", "0:01-0:02", ws=ws)
    assert r.exit_code != 0 and "no recording" in r.stderr
    r = run("transcribe", rid, "--span", "0:01-0:02", "--undo", ws=ws)
    assert r.exit_code == 2 and "--undo restores a whole version" in r.stderr
