"""Chapters on real speech (issue 32, acceptance 1): five unrelated shared recordings in three
languages joined into one file, fetched once with the real pipeline (Whisper base, diarization,
the multilingual embedder, YAKE); the computed chapters must find the four joins.

The order puts the pyannote phone call first: it opens with 6.4 s of silence, which anywhere
else would move its first word (where a chapter can start) more than 5 s past its join.
"""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest
from conftest import run, shared_file

from confindex.formats.chapters import boundary_score
from confindex.store.workspace import Workspace

pytestmark = pytest.mark.slow

PARTS = [  # (shared file, seconds kept or None, language heard)
    ("diar/pyannote_sample.wav", None, "en"),
    ("en/jfk.flac", None, "en"),
    ("fr/radiofrance_smartphone.mp3", 60, "fr"),
    ("ru/pisets_mono_sound_ru.wav", None, "ru"),
    ("diar/ami_trn05.wav", None, "en"),
]


def join(dest: Path) -> list[tuple[float, float]]:
    """Write the five parts one after another as 16-kHz WAV; their (start, end) seconds."""
    from confindex.speech.audio import decode

    pieces, spans, at = [], [], 0.0
    for rel, keep, _lang in PARTS:
        samples = decode(shared_file(rel))
        if keep:
            samples = samples[: keep * 16000]
        pieces.append(samples)
        spans.append((at, at + len(samples) / 16000))
        at += len(samples) / 16000
    pcm = (np.clip(np.concatenate(pieces), -1, 1) * 32767).astype("<i2")
    with wave.open(str(dest), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    return spans


@pytest.fixture(scope="module")
def joined(tmp_path_factory) -> tuple[dict, list[tuple[float, float]], Workspace]:
    root = tmp_path_factory.mktemp("chapters")
    spans = join(root / "five.wav")
    ws = Workspace(root / "ws")
    r = run("fetch", str(root / "five.wav"), ws=ws)
    assert r.exit_code == 0, r.output
    (rid,) = ws.transcript_ids()
    data = json.loads(ws.transcript_path(rid).read_text(encoding="utf-8"))
    return data, spans, ws


def test_chapters_find_the_four_joins(joined) -> None:
    data, spans, ws = joined
    starts = [c["start"] for c in data["chapters"]]
    joins = [a for a, _ in spans[1:]]
    score = boundary_score(starts, joins, tolerance=5.0)
    assert score.recall == 1.0, (starts, joins)
    assert len(score.found) - score.matched <= 2, (starts, joins)
    # The same through the CLI's evaluation, with the joins as a JSON reference.
    ref = ws.root / "joins.json"
    ref.write_text(json.dumps(joins))
    r = run("eval", "chapters", data["recording"]["id"], str(ref), "--json", ws=ws)
    assert r.exit_code == 0 and json.loads(r.stdout)["recall"] == 1.0


def test_each_chapter_is_described_by_its_own_part(joined) -> None:
    data, spans, _ws = joined
    check_described(data, spans)


def check_described(data: dict, spans: list[tuple[float, float]]) -> None:
    turns = data["turns"]

    def words_in(a: float, b: float) -> str:
        return " ".join(t["text"] for t in turns if a - 0.5 <= t["start"] < b).casefold()

    def seconds(c: dict, i: int) -> float:
        return min(c["end"], spans[i][1]) - max(c["start"], spans[i][0])

    main = {}  # part -> the chapter covering most of it
    for c in data["chapters"]:
        k = max(range(len(spans)), key=lambda i: seconds(c, i))  # the part it lies in
        for kw in c["keywords"]:  # every keyword is said in that part
            assert kw.casefold() in words_in(*spans[k]), (kw, PARTS[k][0])
        assert c["languages"][0] == PARTS[k][2], (c["languages"], PARTS[k][0])
        if k not in main or seconds(c, k) > seconds(main[k], k):
            main[k] = c
    assert sorted(main) == list(range(len(PARTS)))  # every part leads a chapter of its own
    for k, c in main.items():
        others = " ".join(words_in(*s) for i, s in enumerate(spans) if i != k)
        assert c["keywords"], (c["title"], PARTS[k][0])
        # Its first keyword is heard in its own part only.
        assert c["keywords"][0].casefold() not in others, (c["keywords"], PARTS[k][0])


def test_fetch_of_a_page_with_chapters_keeps_them_exactly(http_root, tmp_path) -> None:
    """The whole `confindex fetch URL` over loopback: a page describing JFK's speech with
    schema.org JSON-LD chapters (real yt-dlp, Whisper, diarization); the transcript, its WebVTT
    chapters and its search hits keep the source's chapters exactly."""
    import shutil

    import webvtt

    root, base = http_root
    shutil.copy(shared_file("en/jfk.flac"), root / "jfk.flac")
    given = [
        {"@type": "Clip", "name": "Fellow Americans", "startOffset": 0, "endOffset": 4.75},
        {"@type": "Clip", "name": "Ask not — «\u00a0country\u00a0»", "startOffset": 4.75,
         "endOffset": 11},
    ]  # fmt: skip
    ld = {
        "@context": "https://schema.org",
        "@type": "VideoObject",
        "name": "Inaugural address (excerpt)",
        "contentUrl": f"{base}/jfk.flac",
        "encodingFormat": "audio/flac",
        "hasPart": given,
    }
    page = f'<html><script type="application/ld+json">{json.dumps(ld)}</script></html>'
    (root / "jfk.html").write_text(page, encoding="utf-8")
    ws = Workspace(tmp_path / "ws")
    r = run("fetch", f"{base}/jfk.html", ws=ws)
    assert r.exit_code == 0, r.output
    (rid,) = ws.transcript_ids()
    data = json.loads(ws.transcript_path(rid).read_text(encoding="utf-8"))
    expected = [(c["startOffset"], c["endOffset"], c["name"]) for c in given]
    assert [(c["start"], c["end"], c["title"], c["kind"]) for c in data["chapters"]] == [
        (*e, "source") for e in expected
    ]
    assert "country" in " ".join(data["chapters"][1]["keywords"]).lower()
    out = tmp_path / "c.vtt"
    assert run("chapters", rid, "--format", "vtt", "-o", str(out), ws=ws).exit_code == 0
    assert [(c.start, c.text) for c in webvtt.read(str(out))] == [
        ("00:00:00.000", expected[0][2]),
        ("00:00:04.750", expected[1][2]),
    ]
    r = run("search", "country", "--json", ws=ws)
    assert {h["chapter"] for h in json.loads(r.stdout)["hits"]} <= {e[2] for e in expected}
    assert json.loads(r.stdout)["hits"]
