"""Listing and naming speakers, through the library and the real CLI (real export and index)."""

from __future__ import annotations

import json

import pytest
from conftest import run

from confindex.errors import InputError, NotFoundError
from confindex.store import speakers as sp
from confindex.store.transcript import (
    Provenance,
    Recording,
    SpeakerSegment,
    Transcript,
    Turn,
    Word,
    load,
    save,
)
from confindex.store.workspace import Workspace


def make_transcript(rid: str = "panel-2024", title: str = "Space panel") -> Transcript:
    turns = [
        Turn(0, 0.0, 4.0, "SPEAKER_00", "Bonsoir et bienvenue à ce débat sur la diplomatie.", "fr"),
        Turn(
            1,
            4.5,
            10.0,
            "SPEAKER_01",
            "Thank you. Cooperation in orbit began with Apollo-Soyuz.",
            "en",
        ),
        Turn(2, 10.5, 12.0, "SPEAKER_00", "Exactement.", "fr"),
    ]
    for tn in turns:  # word timings, as every transcript has (search times hits by them)
        parts = tn.text.split()
        step = (tn.end - tn.start) / len(parts)
        tn.words = [
            Word(round(tn.start + i * step, 2), round(tn.start + (i + 1) * step, 2), " " + w)
            for i, w in enumerate(parts)
        ]
    return Transcript(
        recording=Recording(id=rid, title=title, source=f"/media/{rid}.mp4", kind="file"),
        provenance=Provenance(confindex_version="test"),
        language="fr",
        duration=15.0,
        turns=turns,
        diarization=[
            SpeakerSegment(0.0, 4.0, "SPEAKER_00"),
            SpeakerSegment(4.5, 10.0, "SPEAKER_01"),
            SpeakerSegment(10.5, 12.0, "SPEAKER_00"),
            SpeakerSegment(13.0, 14.0, "SPEAKER_02"),  # spoke, but no words were attributed
        ],
    )


@pytest.fixture
def saved(ws: Workspace) -> Transcript:
    ws.ensure()
    t = make_transcript()
    save(ws, t)
    return t


def test_list_speakers_talk_time_turns_and_quote():
    infos = sp.list_speakers(make_transcript())
    assert [s.label for s in infos] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_02"]
    s0, s1, s2 = infos
    assert (s0.talk_time, s0.turns, s0.first_start) == (5.5, 2, 0.0)
    assert s0.first_quote == "Bonsoir et bienvenue à ce débat sur la diplomatie."
    assert (s1.talk_time, s1.turns) == (5.5, 1)
    assert (s2.talk_time, s2.turns, s2.first_quote) == (1.0, 0, "")
    assert s0.name is None and s0.display == "SPEAKER_00"


def test_quote_cuts_at_a_word():
    assert sp.quote("one two three four", limit=12) == "one two…"
    assert sp.quote("  short\n text ") == "short text"


def test_set_name_by_label_name_or_case_and_clear():
    t = make_transcript()
    assert sp.set_name(t, "SPEAKER_01", "  Jean-Loup   Chrétien ") == "SPEAKER_01"
    assert t.speakers == {"SPEAKER_01": "Jean-Loup Chrétien"}
    assert t.speaker_name("SPEAKER_01") == "Jean-Loup Chrétien"
    # fix a typo by naming the current name; labels are case-insensitive
    assert sp.set_name(t, "Jean-Loup Chrétien", "J.-L. Chrétien") == "SPEAKER_01"
    assert sp.set_name(t, "speaker_00", "Marc") == "SPEAKER_00"
    # the label itself clears the name
    sp.set_name(t, "SPEAKER_00", "SPEAKER_00")
    assert t.speakers == {"SPEAKER_01": "J.-L. Chrétien"}
    assert [turn.speaker for turn in t.turns] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_00"]


def test_unknown_speaker_and_empty_name_are_one_line_errors():
    t = make_transcript()
    with pytest.raises(NotFoundError) as exc:
        sp.set_name(t, "SPEAKER_07", "Nobody")
    assert exc.value.message == (
        "no speaker 'SPEAKER_07' in panel-2024; its speakers: SPEAKER_00, SPEAKER_01, SPEAKER_02"
    )
    with pytest.raises(InputError, match="empty"):
        sp.set_name(t, "SPEAKER_00", "   ")
    t.speakers = {"SPEAKER_00": "Ann", "SPEAKER_01": "Ann"}
    with pytest.raises(InputError, match="rename by label"):
        sp.set_name(t, "Ann", "Anne")


def test_cli_lists_speakers(ws: Workspace, saved: Transcript):
    res = run("speakers", "panel", ws=ws)  # a unique id prefix is enough
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0] == "panel-2024  Space panel"
    assert lines[1].startswith("SPEAKER_00")
    assert "00:00:05" in lines[1] and "2 turns" in lines[1] and '"Bonsoir' in lines[1]
    data = json.loads(run("speakers", "panel-2024", "--json", ws=ws).output)
    assert [s["label"] for s in data["speakers"]] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_02"]


def test_cli_rename_saves_exports_and_indexes(ws: Workspace, saved: Transcript):
    res = run("speakers", "panel-2024", "rename", "SPEAKER_01", "Jean-Loup Chrétien", ws=ws)
    assert res.exit_code == 0, res.output
    assert "SPEAKER_01 of panel-2024 is named 'Jean-Loup Chrétien'" in res.output
    t = load(ws, "panel-2024")
    assert t.speakers == {"SPEAKER_01": "Jean-Loup Chrétien"}
    assert [turn.speaker for turn in t.turns] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_00"]
    # exports rewritten with the name
    srt = (ws.transcripts / "panel-2024.srt").read_text(encoding="utf-8")
    assert "Jean-Loup Chrétien" in srt
    # the index knows the name: search by speaker name finds their turn
    from confindex.search.hits import search

    hits = search(ws, 'speaker:"Jean-Loup Chrétien" Apollo').hits
    assert [(h.turn_id, h.speaker_name) for h in hits] == [(1, "Jean-Loup Chrétien")]
    # --json after a rename shows the name
    listing = json.loads(run("speakers", "panel-2024", "--json", ws=ws).output)
    assert listing["speakers"][1]["name"] == "Jean-Loup Chrétien"


def test_cli_rename_unknown_speaker_fails_cleanly(ws: Workspace, saved: Transcript):
    res = run("speakers", "panel-2024", "rename", "SPEAKER_09", "X", ws=ws)
    assert res.exit_code == 1
    assert res.stderr.strip().startswith("Error: no speaker 'SPEAKER_09' in panel-2024")
    assert len(res.stderr.strip().splitlines()) == 1
    assert load(ws, "panel-2024").speakers == {}


def test_cli_errors(ws: Workspace, saved: Transcript):
    assert run("speakers", "nope", ws=ws).exit_code == 1
    assert run("speakers", ws=ws).exit_code == 2  # neither RECORDING nor --all
    assert run("speakers", "panel-2024", "rename", "SPEAKER_00", ws=ws).exit_code == 2
    assert run("speakers", "panel-2024", "--all", ws=ws).exit_code == 2


def test_cli_all_lists_names_across_the_archive(ws: Workspace, saved: Transcript):
    other = make_transcript("gala-2025", "Gala")
    other.speakers = {"SPEAKER_00": "Jean-Loup Chrétien", "SPEAKER_01": "Maya Brooks"}
    save(ws, other)
    t = load(ws, "panel-2024")
    t.speakers = {"SPEAKER_01": "Jean-Loup Chrétien"}
    save(ws, t)
    data = json.loads(run("speakers", "--all", "--json", ws=ws).output)
    by_name = {a["name"]: a for a in data["speakers"]}
    jl = by_name["Jean-Loup Chrétien"]
    assert jl["recordings"] == ["gala-2025", "panel-2024"]
    assert jl["labels"] == {"gala-2025": "SPEAKER_00", "panel-2024": "SPEAKER_01"}
    assert jl["talk_time"] == 11.0 and jl["turns"] == 3
    assert data["speakers"][0]["name"] == "Jean-Loup Chrétien"  # most talk time first
    assert data["unnamed"] == 3  # gala SPEAKER_02, panel SPEAKER_00 and SPEAKER_02
    text = run("speakers", "--all", ws=ws).output
    assert "Maya Brooks" in text and "2 recordings: gala-2025, panel-2024" in text


def test_cli_help_has_an_example():
    res = run("speakers", "--help")
    assert 'rename SPEAKER_01 "Jean-Loup Chrétien"' in res.output
