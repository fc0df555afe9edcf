"""Exports for analysis tools (issue 14, acceptance 2): ELAN .eaf, EXMARaLDA .exb, MAXQDA,
ATLAS.ti, NVivo timestamped text and .docx — each read back by a real parser of its format
(the EAF XSD with lxml, pympi-ling, the EXMARaLDA DTD, python-docx, the tools' documented line
grammars), with speakers and times intact to the 0.1 s, on real recordings' speaker turns."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import docx
import pytest
from conftest import SHARED_DATA, run, shared_file
from lxml import etree
from pympi import Elan

from confindex.formats import export, qda
from confindex.speech.decoder import FAKE_ENV
from confindex.speech.turns import build_turns
from confindex.store.store import Store
from confindex.store.transcript import Provenance, Recording, Transcript, Turn, Word, save
from confindex.store.workspace import Workspace

XSD = Path(__file__).parent / "data" / "EAFv3.0.xsd"
EXB_DTD = SHARED_DATA / "schemas" / "exmaralda-basic-transcription-1.4.dtd"


# ----------------------------------------------------------------------- real transcripts
def stm_transcript() -> Transcript:
    """The pyannote sample's gold speaker turns (two real speakers, overlapping speech)."""
    turns = []
    for i, line in enumerate(shared_file("diar/pyannote_sample.stm").read_text().splitlines()):
        _, _, who, start, end, text = line.split(" ", 5)
        a, b = float(start), float(end)
        toks = text.split()
        step = (b - a) / len(toks)
        words = [Word(a + k * step, a + (k + 1) * step, tok, speaker=who) for k, tok in
                 enumerate(toks)]  # fmt: skip
        turns.append(Turn(i, a, b, who, text, "en", words))
    rec = Recording("pyannote-sample", "Telephone call", "/data/pyannote_sample.wav", kind="file")
    return Transcript(rec, Provenance("test"), "en", 30.0, turns=turns)


def radio_transcript() -> Transcript:
    """178 s of real French radio with its word timings, two speakers taking turns."""
    items = json.loads(
        shared_file("fr/radiofrance_smartphone.silver.words.json").read_text(encoding="utf-8")
    )
    words = [Word(x["start"], x["end"], x["text"], speaker=f"SPEAKER_0{(i // 60) % 2}")
             for i, x in enumerate(items)]  # fmt: skip
    rec = Recording("radio-1", "Le smartphone", "/data/radiofrance_smartphone.mp3", kind="file")
    return Transcript(
        rec, Provenance("test"), "fr", 178.0, turns=build_turns(words, "fr"),
        speakers={"SPEAKER_01": "Marie-Christine Dupont"},
    )  # fmt: skip


def expected(t: Transcript) -> list[tuple[str, float, float, str]]:
    return [(t.speaker_name(x.speaker) or "", x.start, x.end, x.text) for x in t.turns]


def assert_turns(got, t: Transcript, tol: float) -> None:
    """Speakers, texts and times (within `tol` seconds) of every turn, in order."""
    want = expected(t)
    assert len(got) == len(want)
    for (gs, ga, gb, gt), (ws_, wa, wb, wt) in zip(got, want, strict=True):
        assert gs == ws_
        assert abs(ga - wa) <= tol and abs(gb - wb) <= tol, (ga, gb, wa, wb)
        assert gt == " ".join(wt.split())


@pytest.fixture(params=["stm", "radio"])
def real(request) -> Transcript:
    return stm_transcript() if request.param == "stm" else radio_transcript()


# ----------------------------------------------------------------------------------- ELAN
def test_eaf_is_valid_against_elans_xsd_and_pympi_reads_tiers_turns_and_words(real, tmp_path):
    text = export.render(real, "eaf")
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    doc = etree.fromstring(text.encode())
    assert schema.validate(doc), schema.error_log
    slots = [int(x.get("TIME_VALUE")) for x in doc.iter("TIME_SLOT")]
    assert slots == sorted(slots)  # time order, as ELAN writes them
    path = tmp_path / "x.eaf"
    path.write_text(text, encoding="utf-8")
    eaf = Elan.Eaf(str(path))
    names = list(dict.fromkeys(real.speaker_name(x.speaker) for x in real.turns))
    assert sorted(eaf.get_tier_names()) == sorted([*names, *(f"{n} words" for n in names)])
    got = []
    for n in names:
        assert eaf.tiers[n][2]["PARTICIPANT"] == n
        assert eaf.tiers[f"{n} words"][2]["PARENT_REF"] == n
        for a, b, value in eaf.get_annotation_data_for_tier(n):
            got.append((n, a / 1000, b / 1000, value))
    got.sort(key=lambda x: x[1])
    assert_turns(got, real, 0.001)
    # Word level: every word, in its speaker's words tier, inside its turn.
    words = sorted(
        (a / 1000, value, n)
        for n in names
        for a, _b, value in eaf.get_annotation_data_for_tier(f"{n} words")
    )
    want = sorted((w.start, w.text.strip(), real.speaker_name(x.speaker)) for x in real.turns
                  for w in x.words)  # fmt: skip
    assert [(v, n) for _, v, n in words] == [(v, n) for _, v, n in want]
    assert all(abs(a - b) <= 0.001 for (a, _, _), (b, _, _) in zip(words, want, strict=True))
    assert (
        eaf.media_descriptors[0]["MEDIA_URL"] == "file:///data/" + Path(real.recording.source).name
    )


def test_eaf_without_speakers_has_one_transcript_tier():
    t = stm_transcript()
    for x in t.turns:
        x.speaker = None
    doc = etree.fromstring(export.render(t, "eaf").encode())
    assert etree.XMLSchema(etree.parse(str(XSD))).validate(doc)
    assert [x.get("TIER_ID") for x in doc.iter("TIER")] == ["Transcript", "Transcript words"]
    assert doc.find("TIER").get("PARTICIPANT") is None


# ----------------------------------------------------------------------------- EXMARaLDA
def read_exb(text: str) -> list[tuple[str, float, float, str]]:
    doc = etree.fromstring(text.encode())
    names = {s.get("id"): s.findtext("abbreviation") for s in doc.iter("speaker")}
    times = {x.get("id"): float(x.get("time")) for x in doc.iter("tli")}
    order = [x.get("id") for x in doc.iter("tli")]
    assert [times[i] for i in order] == sorted(times[i] for i in order)  # timeline in order
    got = []
    for tier in doc.iter("tier"):
        assert tier.get("category") == "v" and tier.get("type") == "t"
        for ev in tier.iter("event"):
            got.append((names[tier.get("speaker")], times[ev.get("start")],
                        times[ev.get("end")], ev.text))  # fmt: skip
    return sorted(got, key=lambda x: x[1])


def test_exb_reads_back_speakers_and_times(real):
    text = export.render(real, "exb")
    assert_turns(read_exb(text), real, 0.001)


def test_exb_is_valid_against_the_exmaralda_dtd(real):
    if not EXB_DTD.exists():
        pytest.skip(f"EXMARaLDA's DTD is not at {EXB_DTD} (not bundled: put it there to check)")
    dtd = etree.DTD(str(EXB_DTD))
    doc = etree.fromstring(export.render(real, "exb").encode())
    assert dtd.validate(doc), dtd.error_log.filter_from_errors()


# --------------------------------------------------------------------- timestamped text
MAXQDA_STAMP = r"#(\d\d):(\d\d):(\d\d)-(\d)#"
MAXQDA_LINE = re.compile(rf"^{MAXQDA_STAMP} (?:(?P<who>[^:\n]+): )?(?P<text>.*) {MAXQDA_STAMP}$")
ATLAS_LINE = re.compile(r"^\[(\d\d):(\d\d):(\d\d)\.(\d)\] (?:(?P<who>[^:\n]+): )?(?P<text>.*)$")
NVIVO_SPAN = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d)-(\d\d):(\d\d):(\d\d)\.(\d)$")


def secs(h: str, m: str, s: str, d: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(d) / 10


def read_maxqda(text: str) -> list[tuple[str, float, float, str]]:
    paras = text.rstrip("\n").split("\n\n")
    got = []
    for p in paras:
        m = MAXQDA_LINE.match(p)
        assert m, p
        g = m.groups()
        got.append((m["who"] or "", secs(*g[:4]), secs(*g[-4:]), m["text"]))
    return got


def read_atlasti(text: str) -> list[tuple[str, float, str]]:
    got = []
    for p in text.rstrip("\n").split("\n\n"):
        m = ATLAS_LINE.match(p)
        assert m, p
        got.append((m["who"] or "", secs(*m.groups()[:4]), m["text"]))
    return got


def read_nvivo(text: str) -> list[tuple[str, float, float, str]]:
    rows = list(csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE))
    assert rows[0] == ["Timespan", "Speaker", "Content"]
    got = []
    for row in rows[1:]:
        assert len(row) == 3, row  # NVivo: the same number of tabs on every line
        m = NVIVO_SPAN.match(row[0])
        assert m, row
        got.append((row[1], secs(*m.groups()[:4]), secs(*m.groups()[4:]), row[2]))
    return got


def test_maxqda_paragraphs_follow_the_f4_timestamp_grammar(real):
    assert_turns(read_maxqda(export.render(real, "maxqda")), real, 0.05)


def test_nvivo_rows_follow_its_tab_delimited_timespan_grammar(real):
    assert_turns(read_nvivo(export.render(real, "nvivo")), real, 0.05)


def test_atlasti_paragraphs_start_with_timestamp_and_speaker(real):
    got = read_atlasti(export.render(real, "atlasti"))
    want = expected(real)
    assert [(s, x) for s, _, x in got] == [(s, " ".join(x.split())) for s, _, _, x in want]
    assert all(abs(a - b) <= 0.05 for (_, a, _), (_, b, _, _) in zip(got, want, strict=True))


def test_docx_read_back_by_python_docx(real, tmp_path):
    path = tmp_path / "t.docx"
    path.write_bytes(export.render_bytes(real, "docx"))
    d = docx.Document(str(path))
    assert d.core_properties.title == real.recording.title
    paras = [p for p in d.paragraphs if p.text.startswith("[")]
    got = []
    for p in paras:
        m = ATLAS_LINE.match(p.text)
        assert m, p.text
        # The speaker is the bold run, and only it.
        assert [r.text for r in p.runs if r.bold] == [m["who"]]
        got.append((m["who"], secs(*m.groups()[:4]), m["text"]))
    want = expected(real)
    assert [(s, x) for s, _, x in got] == [(s, " ".join(x.split())) for s, _, _, x in want]
    assert all(abs(a - b) <= 0.05 for (_, a, _), (_, b, _, _) in zip(got, want, strict=True))


def test_stamps_round_to_tenths():
    assert qda.stamp_maxqda(754.26) == "#00:12:34-3#"
    assert qda.stamp_maxqda(3599.96) == "#01:00:00-0#"
    assert qda.stamp_tenths(3723.46) == "01:02:03.5"


# -------------------------------------------------------------------- hostile strings
HOSTILE = "Dr: Evil\t<b>&\x1b[31m\n\x07\ufffe"


def hostile_transcript() -> Transcript:
    t = stm_transcript()
    t.speakers = {"Diane": HOSTILE}
    t.turns[0].text = "Bonjour\tà\ntous <script>&amp; \x00\uffff fin"
    t.recording.title = "Title\x1b]0;pwned\x07 <x>"
    return t


@pytest.mark.parametrize("fmt", qda.QDA_FORMATS)
def test_hostile_names_and_text_keep_every_format_parseable(fmt, tmp_path):
    t = hostile_transcript()
    data = export.render_bytes(t, fmt)
    n = len(t.turns)
    if fmt == "eaf":
        doc = etree.fromstring(data)
        assert etree.XMLSchema(etree.parse(str(XSD))).validate(doc)
        names = [x.get("TIER_ID") for x in doc.iter("TIER")]
        assert len(names) == 4 and "Sheila" in names
        evil = next(x for x in names if x.startswith("Dr: Evil"))
        assert "\x1b" not in evil and "\n" not in evil and "<b>&" in evil  # XML escapes < &
    elif fmt == "exb":
        assert len(read_exb(data.decode())) == n
    elif fmt == "maxqda":
        got = read_maxqda(data.decode())
        assert len(got) == n and got[0][0].startswith("Dr\u2236 Evil <b>&")
        assert got[0][3].startswith("Bonjour à tous <script>&amp;")
    elif fmt == "atlasti":
        assert len(read_atlasti(data.decode())) == n
    elif fmt == "nvivo":
        got = read_nvivo(data.decode())
        assert len(got) == n and "\x1b" not in got[0][0]
    else:
        path = tmp_path / "h.docx"
        path.write_bytes(data)
        d = docx.Document(str(path))
        assert len([p for p in d.paragraphs if ATLAS_LINE.match(p.text)]) == n


# ----------------------------------------------------------------------------- the CLI
@pytest.fixture
def saved(tmp_path) -> tuple[Workspace, Transcript]:
    ws = Workspace(tmp_path / "ws")
    t = stm_transcript()
    save(ws, t)
    return ws, t


def test_cli_export_writes_each_format_to_a_folder(saved, tmp_path):
    ws, t = saved
    out = tmp_path / "qda"
    for fmt in qda.QDA_FORMATS:
        r = run("export", t.id, "--format", fmt, "-o", f"{out}/", ws=ws)
        assert r.exit_code == 0, r.output
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        f"pyannote-sample.{e}"
        for e in ("eaf", "exb", "maxqda.txt", "atlasti.txt", "nvivo.txt", "docx")
    )
    assert_turns(read_maxqda((out / "pyannote-sample.maxqda.txt").read_text()), t, 0.05)
    eaf = Elan.Eaf(str(out / "pyannote-sample.eaf"))
    assert {"Diane", "Sheila"} <= set(eaf.get_tier_names())


def test_cli_export_docx_to_stdout_and_all_recordings(saved, tmp_path):
    ws, t = saved
    r = run("export", t.id, "--format", "docx", ws=ws)
    assert r.exit_code == 0
    assert r.stdout_bytes[:2] == b"PK"  # a zip: the .docx container
    d = docx.Document(io.BytesIO(r.stdout_bytes))
    assert any(p.text.startswith("[00:00:06.7] Diane: Hello?") for p in d.paragraphs)
    r = run("export", "--all", "--format", "nvivo", "-o", str(tmp_path / "all"), ws=ws)
    assert r.exit_code == 0, r.output
    assert_turns(read_nvivo((tmp_path / "all" / f"{t.id}.nvivo.txt").read_text()), t, 0.05)


def test_fetch_formats_accepts_the_qda_formats():
    assert export.parse_formats("srt,eaf,docx") == ["srt", "eaf", "docx"]
    assert export.parse_formats("all") == list(export.WRITTEN_BESIDE)
    with pytest.raises(Exception, match="unknown export format 'pdf'"):
        export.parse_formats("pdf")


def test_write_exports_writes_qda_files_beside_the_transcript(saved):
    ws, t = saved
    paths = Store(ws).write_exports(t, formats=["eaf", "docx", "maxqda"])
    assert [Path(p).name for p in paths] == [
        "pyannote-sample.eaf",
        "pyannote-sample.docx",
        "pyannote-sample.maxqda.txt",
    ]
    assert all(Path(p).stat().st_size > 0 for p in paths)


def test_real_fetched_recording_exports_read_back(tmp_path, monkeypatch):
    """The pyannote sample through the whole pipeline (real diarization; the words and times
    the Whisper base model gives it, from a FakeDecoder script: exports are checked, not
    recognition), then `fetch --formats eaf,exb,maxqda,nvivo,docx`: every file reads back with
    the transcript's speakers and turn times."""
    monkeypatch.setenv(FAKE_ENV, str(Path(__file__).parent / "data" / "pyannote_sample.fake.json"))
    wav = shared_file("diar/pyannote_sample.wav")
    ws = Workspace(tmp_path / "ws")
    r = run("fetch", str(wav), "--formats", "eaf,exb,maxqda,nvivo,docx", "--json", ws=ws)
    assert r.exit_code == 0, r.output
    rid = json.loads(r.stdout)["recordings"][0]["recording_id"]
    from confindex.store.transcript import load

    t = load(ws, rid)
    assert len({x.speaker for x in t.turns}) == 2
    base = ws.transcripts / rid
    doc = etree.parse(str(base) + ".eaf")
    assert etree.XMLSchema(etree.parse(str(XSD))).validate(doc)
    eaf = Elan.Eaf(str(base) + ".eaf")
    got = sorted(
        (n, a / 1000, b / 1000, v)
        for n in eaf.get_tier_names()
        if not n.endswith(" words")
        and n not in ("confindex overlapped speech", "confindex chapters")
        for a, b, v in eaf.get_annotation_data_for_tier(n)
    )
    assert sorted((n, a, b, v) for n, a, b, v in got) == sorted(
        (t.speaker_name(x.speaker), round(x.start, 3), round(x.end, 3), x.text.strip())
        for x in t.turns
    )
    # Two people at once (issue 29): the diarization's overlapped stretches, in their own tier.
    from confindex.speech.turns import overlapped

    assert [
        (a / 1000, b / 1000, v)
        for a, b, v in eaf.get_annotation_data_for_tier("confindex overlapped speech")
    ] == [
        (round(a, 3), round(b, 3), " + ".join(t.speaker_name(w) for w in who))
        for a, b, who in overlapped(t.diarization)
    ]
    # The chapters (issue 32) as their own tier, at their seconds.
    chapters = sorted(eaf.get_annotation_data_for_tier("confindex chapters"))
    assert [(a / 1000, v.split(" (")[0]) for a, _b, v in chapters] == [
        (round(c.start, 3), c.title) for c in t.chapters
    ]
    # The media link points at the real file ELAN should open.
    assert eaf.media_descriptors[0]["MEDIA_URL"] == wav.resolve().as_uri()
    assert_turns(read_maxqda(Path(str(base) + ".maxqda.txt").read_text()), t, 0.05)
    assert_turns(read_nvivo(Path(str(base) + ".nvivo.txt").read_text()), t, 0.05)
    assert_turns(read_exb(Path(str(base) + ".exb").read_text()), t, 0.001)
    d = docx.Document(str(base) + ".docx")
    assert sum(1 for p in d.paragraphs if ATLAS_LINE.match(p.text)) == len(t.turns)


def test_media_link_follows_the_web_players_rule(tmp_path: Path, monkeypatch) -> None:
    """QDA exports link the media the web player would serve: the workspace copy when it is
    there, else the file fetched from (`~` expanded, file:// URLs read); a URL otherwise."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "talk.wav").write_bytes(b"RIFF")
    ws = tmp_path / "ws"
    (ws / "media").mkdir(parents=True)

    def url(**rec) -> str:
        r = Recording(id="r", title="t", **rec)
        return qda.media_url(
            Transcript(
                recording=r, language="en", duration=1.0, provenance=Provenance("0"), turns=[]
            ),
            ws,
        )

    home_talk = (tmp_path / "home" / "talk.wav").as_uri()
    # `~` was joined to the workspace (ws/~/talk.wav) before the rule was shared.
    assert url(source="~/talk.wav", kind="file") == home_talk
    assert url(source=home_talk, kind="url") == home_talk
    # The copy in the workspace wins when it exists; a missing one gives way to the source.
    assert url(source="~/talk.wav", kind="file", media_path="media/r.wav") == home_talk
    (ws / "media" / "r.wav").write_bytes(b"RIFF")
    assert url(source="~/talk.wav", kind="file", media_path="media/r.wav") == (
        (ws / "media" / "r.wav").as_uri()
    )
    assert url(source="https://example.org/a.mp3", webpage_url="https://example.org/a") == (
        "https://example.org/a"
    )
