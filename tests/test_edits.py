"""Corrections (issue 27) on synthetic transcripts: the words, speakers and metadata a user
fixes, versions and conflicts, history and undo, exact citations, and kill -9 safety.

No audio here (the real clip and forced alignment: test_edits_real.py): edited words without
media are spread over their span and marked estimated.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run

from confindex.api import Archive
from confindex.errors import ConflictError, InputError
from confindex.formats.cite import cite, cite_span
from confindex.search import index as search_index
from confindex.store import edits
from confindex.store import transcript as store
from confindex.store.transcript import (
    AutoName,
    Provenance,
    Recording,
    SpeakerSegment,
    Transcript,
    Turn,
    Word,
)
from confindex.store.workspace import Workspace

RID = "talk-1"


def _words(text: str, start: float, speaker: str) -> list[Word]:
    return [
        Word(round(start + i * 0.5, 3), round(start + i * 0.5 + 0.4, 3), " " + w, 0.9, speaker)
        for i, w in enumerate(text.split())
    ]


def make(rid: str = RID, **rec_kw) -> Transcript:
    t1 = "Comment est Rigbert petit encore gouverner la France."
    t2 = "Marie Le Pen a répondu hier soir sur BFN-STORI."
    t3 = "Nous en reparlerons demain matin."
    rec = dict(id=rid, title="Le débat", source="/data/debat.mp3", kind="file")
    rec.update(rec_kw)
    turns = [
        Turn(0, 10.0, 13.9, "SPEAKER_00", t1, "fr", _words(t1, 10.0, "SPEAKER_00")),
        Turn(1, 20.0, 24.4, "SPEAKER_01", t2, "fr", _words(t2, 20.0, "SPEAKER_01")),
        Turn(2, 30.0, 32.4, "SPEAKER_02", t3, "fr", _words(t3, 30.0, "SPEAKER_02")),
    ]
    return Transcript(
        recording=Recording(**rec),
        provenance=Provenance("test"),
        language="fr",
        duration=40.0,
        turns=turns,
        diarization=[
            SpeakerSegment(10.0, 14.0, "SPEAKER_00"),
            SpeakerSegment(20.0, 24.5, "SPEAKER_01"),
            SpeakerSegment(30.0, 32.5, "SPEAKER_02"),
        ],
    )


def workspace(path: Path, n: int = 1) -> Workspace:
    ws = Workspace(path).ensure()
    ts = [make(RID if i == 0 else f"talk-{i + 1}") for i in range(n)]
    for t in ts:
        store.save(ws, t)
    search_index.add(ws, ts)
    return ws


def said(t: Transcript) -> str:
    return " ".join(w.text.strip() for tn in t.turns for w in tn.words)


def test_replace_words_keeps_the_others_and_marks_the_new_ones() -> None:
    t = make()
    # "est Rigbert petit" start at 10.5, 11.0, 11.5
    new, change = edits.replace_words(t, 10.5, 11.5, ["Éric", "Woerth", "peut-il"])
    assert said(new).startswith("Comment Éric Woerth peut-il encore gouverner")
    words = [w for tn in new.turns for w in tn.words]
    fixed = [w for w in words if w.verified]
    assert [w.text.strip() for w in fixed] == ["Éric", "Woerth", "peut-il"]
    assert all(w.estimated for w in fixed)  # no times given: spread over the old words
    assert fixed[0].start == 10.5 and fixed[-1].end <= 11.9
    assert all(a.end <= b.start + 1e-9 for a, b in itertools.pairwise(fixed))
    unchanged = [w for w in words if not w.verified]
    assert [(w.start, w.text) for w in unchanged] == [
        (w.start, w.text) for tn in t.turns for w in tn.words if not 10.5 <= w.start <= 11.5
    ]
    assert new.turns[0].text.startswith("Comment Éric Woerth peut-il")
    assert change.kind == "edit" and '"est Rigbert petit" → "Éric Woerth peut-il"' in change.summary
    assert said(t).startswith("Comment est Rigbert")  # the input is not modified
    # Aligned times are used as given and the words are not estimated.
    new, _ = edits.replace_words(t, 20.0, 20.5, ["Marine", "Le"], [(20.0, 20.3), (20.3, 20.6)])
    w0 = new.turns[1].words[0]
    assert (w0.text, w0.start, w0.end, w0.verified, w0.estimated) == (
        " Marine", 20.0, 20.3, True, False)  # fmt: skip


def test_verified_flags_round_trip_and_stay_out_of_plain_words() -> None:
    t, _ = edits.replace_words(make(), 24.0, 24.2, ["BFM", "Story."])
    text = t.to_json()
    back = Transcript.from_json(text)
    assert [w.text for w in back.turns[1].words if w.verified] == [" BFM", " Story."]
    assert text.count('"verified": true') == 2
    assert '"verified": false' not in text and '"estimated": false' not in text
    assert back.changes[0].kind == "edit"
    old = json.loads(make().to_json())  # a transcript of before: loads, no change log
    old.pop("changes"), old.pop("meta")
    assert Transcript.from_dict(old).changes == []


def test_merge_and_assign_speakers() -> None:
    t = make()
    t.speakers = {"SPEAKER_01": "Marine Le Pen"}
    merged, change = edits.merge_speakers(t, "SPEAKER_01", ["SPEAKER_02"])
    assert {tn.speaker for tn in merged.turns} == {"SPEAKER_00", "SPEAKER_01"}
    assert {s.speaker for s in merged.diarization} == {"SPEAKER_00", "SPEAKER_01"}
    assert all(w.speaker == tn.speaker for tn in merged.turns for w in tn.words)
    assert merged.speakers == {"SPEAKER_01": "Marine Le Pen"}
    assert "SPEAKER_02 → Marine Le Pen" in change.summary
    with pytest.raises(InputError, match="no speaker 'SPEAKER_09'"):
        edits.merge_speakers(t, "SPEAKER_01", ["SPEAKER_09"])
    # A false speaker change: the words from 11.5 to 12.5 are someone else's.
    split, change = edits.assign_span(t, 11.5, 12.5, "SPEAKER_05")
    who = [(w.text.strip(), w.speaker) for tn in split.turns for w in tn.words][:7]
    assert who == [
        ("Comment", "SPEAKER_00"), ("est", "SPEAKER_00"), ("Rigbert", "SPEAKER_00"),
        ("petit", "SPEAKER_05"), ("encore", "SPEAKER_05"), ("gouverner", "SPEAKER_05"),
        ("la", "SPEAKER_00"),
    ]  # fmt: skip
    assert [tn.speaker for tn in split.turns[:3]] == ["SPEAKER_00", "SPEAKER_05", "SPEAKER_00"]
    assert [tn.id for tn in split.turns] == list(range(len(split.turns)))
    assert split.turns[1].text == "petit encore gouverner"
    assert any(s.speaker == "SPEAKER_05" and s.start == 11.5 for s in split.diarization)
    # Assigning it back joins the turn again.
    back, _ = edits.assign_span(split, 11.5, 12.5, "SPEAKER_00")
    assert back.turns[0].text == make().turns[0].text


def test_meta_checked_and_applied() -> None:
    t, change = edits.set_meta(
        make(), {"title": "Face à face", "date": "2022-04", "doi": "https://doi.org/10.5281/zenodo.42",
                 "authors": ["Jean Dupont", "Radio France"], "channel": "BFM"},
    )  # fmt: skip
    assert t.recording.title == "Face à face" and t.recording.upload_date == "2022-04"
    assert t.meta["doi"] == "10.5281/zenodo.42" and t.recording.channel == "BFM"
    assert 'title: "Le débat" → "Face à face"' in change.summary
    for bad, msg in [({"date": "2022-13"}, "not a date"), ({"date": "April"}, "YYYY"),
                     ({"doi": "zenodo"}, "DOI"), ({"url": "ftp://x"}, "http"),
                     ({"colour": "red"}, "unknown metadata")]:  # fmt: skip
        with pytest.raises(InputError, match=msg):
            edits.set_meta(make(), bad)


def test_meta_in_every_style_parsed_back_and_automatic_names_are_not_authors() -> None:
    import bibtexparser
    import rispy
    from bibtexparser.middlewares import SeparateCoAuthors, SplitNameParts

    t, _ = edits.set_meta(
        make(), {"title": "Face à face", "date": "2022-04-12", "doi": "10.5281/zenodo.42",
                 "authors": ["Jean Dupont", "Anne Martin"], "channel": "BFM TV",
                 "url": "https://example.org/face.mp3"},
    )  # fmt: skip
    c = cite_span(t, 20.0, 21.0)
    assert c.quote == "Marie Le Pen"
    apa = c.render("apa")
    assert apa.startswith("Dupont, J., & Martin, A. (2022, April 12). Face à face [Audio].")
    assert "https://doi.org/10.5281/zenodo.42" in apa and '"Marie Le Pen"' in apa
    assert c.render("chicago").startswith('Jean Dupont and Anne Martin, "Face à face," BFM TV, ')
    assert "April 12, 2022" in c.render("chicago") and "doi.org/10.5281" in c.render("chicago")
    lib = bibtexparser.parse_string(
        c.render("bibtex"), append_middleware=[SeparateCoAuthors(), SplitNameParts()]
    )
    entry = lib.entries[0]
    assert [(n.first, n.last) for n in entry["author"]] == [(["Jean"], ["Dupont"]),
                                                             (["Anne"], ["Martin"])]  # fmt: skip
    assert entry["doi"] == "10.5281/zenodo.42" and entry["title"] == "Face à face"
    (ref,) = rispy.loads(c.render("ris"))
    assert ref["authors"] == ["Dupont, Jean", "Martin, Anne"] and ref["doi"] == "10.5281/zenodo.42"
    assert ref["title"] == "Face à face" and ref["publisher"] == "BFM TV"
    item = json.loads(c.render("csl"))[0]
    assert item["DOI"] == "10.5281/zenodo.42" and item["issued"] == {"date-parts": [[2022, 4, 12]]}
    assert item["author"][1] == {"family": "Martin", "given": "Anne"}
    # The link is the user's URL (a media file): the span as a media fragment.
    assert c.url == "https://example.org/face.mp3#t=20.0,21.4"

    # A voice-library guess is not an author; confirmed (a plain name), it is.
    auto = make()
    auto.speakers["SPEAKER_01"] = "Marine Tondelier"
    auto.auto_names["SPEAKER_01"] = AutoName("Marine Tondelier", 0.95, 0.2)
    c = cite_span(auto, 20.0, 21.0)
    assert c.speaker is None and "Tondelier" not in c.render("apa")
    assert cite(auto, 21.0).speaker is None
    auto.auto_names.clear()
    assert cite_span(auto, 20.0, 21.0).render("apa").startswith("Tondelier, M. (n.d.)")


def test_cite_span_quotes_exactly_the_words_chosen() -> None:
    t = make()
    c = cite_span(t, 10.5, 11.5)
    assert c.quote == "est Rigbert petit"
    assert (c.start, c.end) == (10.5, 11.9)
    assert c.url == "file:///data/debat.mp3#t=10.5,11.9"  # a local file: a media fragment
    # Across a speaker change: nobody's words, so no speaker as author.
    assert cite_span(t, 13.0, 20.6).speaker_label is None
    with pytest.raises(InputError, match="no words start"):
        cite_span(t, 15.0, 16.0)
    yt = make(
        kind="youtube", extractor="youtube", extractor_id="abc", source="https://youtu.be/abc"
    )
    assert cite_span(yt, 10.5, 11.5).url == "https://youtu.be/abc?t=10"  # a page: no fragment


def test_cli_edit_search_cite_history_undo_meta(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws")
    r = run("edit", RID, "--span", "0:10.5-11.5", "--text", "Éric Woerth peut-il", ws=ws)
    assert r.exit_code == 0, r.output
    assert '"est Rigbert petit" → "Éric Woerth peut-il"' in r.output
    hits = json.loads(run("--json", "search", "Woerth", ws=ws).stdout)["hits"]
    assert [(h["recording_id"], h["turn_id"]) for h in hits] == [(RID, 0)]
    assert hits[0]["mentions"][0]["time"] >= 10.5
    assert json.loads(run("--json", "search", "Rigbert", ws=ws).stdout)["hits"] == []
    verified = json.loads(run("--json", "search", "verified:yes", ws=ws).stdout)["hits"]
    assert [(h["recording_id"], h["turn_id"]) for h in verified] == [(RID, 0)]
    others = json.loads(run("--json", "search", "verified:no", ws=ws).stdout)["hits"]
    assert sorted(h["turn_id"] for h in others) == [1, 2]
    r = run("cite", RID, "--span", "10.5-11.5", ws=ws)
    assert r.exit_code == 0 and '"Éric Woerth peut-il"' in r.output, r.output
    review = json.loads(run("--json", "review", RID, ws=ws).stdout)
    assert review["verified"] == pytest.approx(3 / 22)  # 3 of 22 words corrected
    assert run("meta", RID, "--title", "Face à face", "--date", "2022", ws=ws).exit_code == 0
    r = run("history", RID, ws=ws)
    lines = r.output.strip().splitlines()
    assert len(lines) == 2 and "edit" in lines[0] and "Woerth" in lines[0]
    assert 'title: "Le débat" → "Face à face"' in lines[1]
    assert run("undo", RID, ws=ws).exit_code == 0  # the meta goes
    assert store.load(ws, RID).recording.title == "Le débat"
    assert run("undo", RID, ws=ws).exit_code == 0  # the edit goes
    assert said(store.load(ws, RID)).startswith("Comment est Rigbert petit")
    assert json.loads(run("--json", "search", "Woerth", ws=ws).stdout)["hits"] == []
    assert len(json.loads(run("--json", "search", "Rigbert", ws=ws).stdout)["hits"]) == 1
    assert run("history", RID, ws=ws).output.strip() == f"{RID}: no changes yet."
    # Bad input: one line, non-zero, nothing changed.
    before = ws.transcript_path(RID).read_bytes()
    for args in (["--span", "12-10", "--text", "x"], ["--span", "10-11", "--text", "  "],
                 ["--span", "50-60", "--text", "x"]):  # fmt: skip
        r = run("edit", RID, *args, ws=ws)
        assert r.exit_code != 0 and r.output.count("\n") <= 2, r.output
    r = run("meta", RID, "--date", "yesterday", ws=ws)
    assert r.exit_code != 0 and "YYYY" in r.output
    assert ws.transcript_path(RID).read_bytes() == before


def test_cli_speakers_merge_and_assign_update_exports(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws")
    r = run("speakers", RID, "merge", "SPEAKER_01", "SPEAKER_02", ws=ws)
    assert r.exit_code == 0, r.output
    rttm = (ws.transcripts / f"{RID}.rttm").read_text()
    assert {line.split()[7] for line in rttm.splitlines()} == {"SPEAKER_00", "SPEAKER_01"}
    srt = (ws.transcripts / f"{RID}.srt").read_text()
    assert "SPEAKER_02" not in srt
    r = run("speakers", RID, "assign", "--span", "11.5-12.5", "SPEAKER_07", ws=ws)
    assert r.exit_code == 0, r.output
    hits = json.loads(run("--json", "search", "gouverner", ws=ws).stdout)["hits"]
    assert [h["speaker"] for h in hits] == ["SPEAKER_07"]
    assert run("speakers", RID, "rename", "SPEAKER_07", "Éric Woerth", ws=ws).exit_code == 0
    log = run("history", RID, ws=ws).output.strip().splitlines()
    assert [x.split()[1] for x in log] == ["merge", "assign", "rename"]
    assert "SPEAKER_07: 'SPEAKER_07' → 'Éric Woerth'" in log[2]
    r = run("speakers", RID, "merge", "SPEAKER_01", ws=ws)
    assert r.exit_code == 2 and "merge takes" in r.output


def test_two_clients_one_conflict_nothing_lost(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws")
    a, b = Archive(ws.root), Archive(ws.root)
    va, vb = a.version(RID), b.version(RID)
    assert va == vb
    saved = a.edit(RID, "20.0-21.0", "Marine Le Pen", expect=va, align=False)
    assert saved.version != va
    with pytest.raises(ConflictError, match="changed by someone else"):
        b.edit(RID, "24.0-24.2", "BFM Story", expect=vb, align=False)
    with pytest.raises(ConflictError):
        b.set_meta(RID, title="x", expect=vb)
    t = store.load(ws, RID)
    assert "Marine Le Pen" in said(t) and "BFN-STORI." in said(t)  # a's edit kept, b's not in
    # b reloads and edits again: both edits are there.
    b.edit(RID, "24.0-24.2", "BFM Story.", expect=b.version(RID), align=False)
    t = store.load(ws, RID)
    assert "Marine Le Pen a répondu hier soir sur BFM Story." in said(t)
    assert [c.kind for c in t.changes] == ["edit", "edit"]


_KILLER = """
import sys
from confindex.api import Archive
a = Archive(sys.argv[1])
i = 0
while True:
    a.edit("talk-1", "20.0-20.6", f"Marine{i} Le", align=False)
    a.undo("talk-1")
    i += 1
"""


def test_kill_9_during_edits_leaves_a_whole_transcript_and_a_rebuildable_index(
    tmp_path: Path,
) -> None:
    ws = workspace(tmp_path / "ws")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for delay in (0.9, 1.3, 1.7):
        p = subprocess.Popen([sys.executable, "-c", _KILLER, str(ws.root)], env=env)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        t = store.load(ws, RID)  # whole JSON: the old version or the new one
        text = said(t)
        assert "Le Pen a répondu" in text
        Archive(ws.root).index()  # the index agrees with whichever it is
        first = t.turns[1].words[0].text.strip()
        hits = json.loads(run("--json", "search", f'"{first}"', ws=ws).stdout)["hits"]
        assert [h["turn_id"] for h in hits if h["recording_id"] == RID] == [1], first
        if first != "Marie":
            assert json.loads(run("--json", "search", "Marie", ws=ws).stdout)["hits"] == []


def test_every_write_of_a_correction_comes_from_the_store(tmp_path: Path, monkeypatch) -> None:
    from test_store import WriteAudit

    ws = workspace(tmp_path / "ws")
    audit = WriteAudit(ws.root, monkeypatch)
    for args in (
        ["edit", RID, "--span", "10.5-11.5", "--text", "Éric Woerth peut-il"],
        ["speakers", RID, "merge", "SPEAKER_01", "SPEAKER_02"],
        ["speakers", RID, "assign", "--span", "11.5-12.5", "SPEAKER_07"],
        ["meta", RID, "--title", "Face à face", "--doi", "10.5281/zenodo.42"],
        ["undo", RID],
        ["history", RID],
        ["cite", RID, "--span", "10.5-11.5"],
    ):
        r = run(*args, ws=ws)
        assert r.exit_code == 0, (args, r.output)
    monkeypatch.undo()
    # vectors/ (#28's semantic store, written by search/vector_build.py under the Store) is
    # not a correction's write; tests/test_store.py reports it on main too.
    strays = [s for s in audit.strays() if not s[1].startswith("vectors")]
    assert strays == []
    written = {w.replace(os.sep, "/") for _op, w, _ok, _w in audit.writes}
    assert f"transcripts/{RID}.json" in written and f"transcripts/{RID}.srt" in written
    assert {"transcripts", "index"} <= audit.touched()


def test_a_new_transcription_keeps_edits_and_metadata_unless_discarded(tmp_path: Path) -> None:
    from confindex.store.store import Store

    ws = workspace(tmp_path / "ws")
    a = Archive(ws.root)
    a.edit(RID, "10.5-11.5", "Éric Woerth peut-il", align=False)
    a.set_meta(RID, title="Face à face", doi="10.5281/zenodo.42")
    # What `transcribe`/`fetch --force` publish: a fresh decode, the old errors back, the
    # recording's metadata as yt-dlp or the file gives it.
    Store(ws).publish(make())
    t = store.load(ws, RID)
    assert said(t).startswith("Comment Éric Woerth peut-il encore gouverner")
    assert t.recording.title == "Face à face" and t.meta["doi"] == "10.5281/zenodo.42"
    assert [c.kind for c in t.changes] == ["edit", "meta", "transcribe"]
    assert "1 edited passage(s) kept" in t.changes[-1].summary
    hits = json.loads(run("--json", "search", "Woerth", ws=ws).stdout)["hits"]
    assert (
        len(hits) == 1
        and json.loads(run("--json", "search", "Rigbert", ws=ws).stdout)["hits"] == []
    )
    Store(ws).publish(make(), keep_edits=False)  # --discard-edits
    t = store.load(ws, RID)
    assert said(t).startswith("Comment est Rigbert petit")
    assert t.recording.title == "Face à face"  # metadata is not an edit of the words
    assert "edits discarded" in t.changes[-1].summary


def test_search_hits_say_a_name_is_automatic(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws").ensure()
    t = make()
    t.speakers["SPEAKER_01"] = "Marine Tondelier"
    t.auto_names["SPEAKER_01"] = AutoName("Marine Tondelier", 0.95, 0.2)
    store.save(ws, t)
    search_index.add(ws, [t])
    r = run("search", "répondu", ws=ws)
    assert "Marine Tondelier (automatic)" in r.output, r.output
    (hit,) = json.loads(run("--json", "search", "répondu", ws=ws).stdout)["hits"]
    assert hit["speaker_automatic"] is True
    r = run("cite", RID, "--span", "20-21", ws=ws)
    assert "Tondelier" not in r.output  # not an author until confirmed
    assert run("speakers", RID, "confirm", "SPEAKER_01", ws=ws).exit_code == 0
    r = run("search", "répondu", ws=ws)
    assert "Marine Tondelier" in r.output and "(automatic)" not in r.output
    assert run("cite", RID, "--span", "20-21", ws=ws).output.startswith("Tondelier, M.")
