"""Every mention at its exact second, on real French radio speech (issue 11, acceptance 1).

`../shared/data/fr/radiofrance_smartphone.mp3` (178 s, several voices) is transcribed once by
the real embedded Whisper model through the real CLI; `.silver.words.json` (Whisper medium,
word timings) is the timing reference. The reference is matched here by an independent
regex over accent-stripped words, not by confindex's own analysis.
"""

from __future__ import annotations

import difflib
import json
import re
import unicodedata

import pytest
from conftest import run, shared_file

from confindex.search import hits as search_api
from confindex.store import transcript as store
from confindex.store.workspace import Workspace

pytestmark = pytest.mark.slow

TOLERANCE = 1.5  # seconds between a hit's time and the reference time of the spoken words

# (query, the words as regexes over folded words, in order): names, inflected forms,
# unaccented forms, two-word phrases and numbers.
QUERIES: list[tuple[str, list[str]]] = [
    ("Nicolas", [r"nicolas"]),
    ("smartphone", [r"smartphones?"]),
    ("objet technique", [r"objets?", r"techniques?"]),
    ('"objet technique"', [r"objets?", r"techniques?"]),
    ('"objets techniques"', [r"objets?", r"techniques?"]),
    ("inedit", [r"inedite?s?"]),
    ("dependance", [r"dependan(ce|t)e?s?"]),  # stems with "dépendants" (75 s)
    ('"rapport inedit"', [r"rapports?", r"inedite?s?"]),
    ("telephone", [r"telephones?"]),
    ("voiture", [r"voitures?"]),
    ("diabolique", [r"diaboliques?"]),
    ("merveilleux", [r"merveilleu(x|se|ses)"]),
    ('"écran tactile"', [r"ecrans?", r"tactiles?"]),
    ("mome", [r"momes?"]),
    ("rejet", [r"rejets?"]),
    ("icone", [r"icones?"]),
    ("économiste", [r"economistes?"]),
    ("sentier", [r"sentiers?"]),
    ("bagnole", [r"bagnoles?"]),
    ("interface", [r"interfaces?"]),
    ('"navigation web"', [r"navigations?", r"web"]),
    ("vingt ans", [r"(20|vingt)", r"ans"]),
    ('"20 ans"', [r"(20|vingt)", r"ans"]),
    ("applications", [r"applications?"]),
    ("humanité", [r"humanites?"]),
    # Typed as researchers type: plural for singular, elision as a space, no quotes.
    ("photos", [r"photos?"]),  # French Snowball keeps photo/photos apart
    ("l humanite", [r"humanites?"]),
    ('"histoire de l humanite"', [r"histoires?", r"de", r"humanites?"]),
    ("ecran tactile", [r"ecrans?", r"tactiles?"]),
    ('"objets inedits"', [r"objets?", r"inedite?s?"]),
    ('"Nicolas dit"', [r"nicolas", r"dit"]),
    ("vingt", [r"(20|vingt)"]),
    ("ordinateurs", [r"ordinateurs?"]),
    ("nouveaute", [r"nouveautes?"]),
    ('"mort immediate"', [r"morts?", r"immediate?s?"]),
    ("une heure", [r"une", r"heures?"]),
]


def fold(w: str) -> str:
    w = unicodedata.normalize("NFKD", w.lower())
    w = "".join(c for c in w if not unicodedata.combining(c))
    return re.sub(r"^[a-z]{1,2}'", "", re.sub(r"[^\w']", "", w.replace("’", "'")))


def find(words: list[tuple[str, float]], pattern: list[str]) -> list[float]:
    """Start times of each place where the folded words match the patterns in a row."""
    rx = [re.compile(p + r"\Z") for p in pattern]
    out = []
    for i in range(len(words) - len(rx) + 1):
        if all(r.match(words[i + k][0]) for k, r in enumerate(rx)):
            out.append(words[i][1])
    return out


def aligned_times(
    said: list[tuple[str, float]], ref: list[tuple[str, float]]
) -> dict[float, float]:
    """The model's word start → the reference start of the word said there, where the two
    align one to one (the same word, or a misheard one)."""
    out: dict[float, float] = {}
    sm = difflib.SequenceMatcher(None, [w for w, _ in said], [w for w, _ in ref], autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op in ("equal", "replace") and i2 - i1 == j2 - j1:
            for k in range(i2 - i1):
                out[said[i1 + k][1]] = ref[j1 + k][1]
    return out


def passages(t, pattern: list[str]) -> list[float]:
    """Start times of each word matching the first pattern that has every other pattern
    matched, in order, by later words of the same turn (an unquoted query's passage)."""
    rx = [re.compile(p + r"\Z") for p in pattern]
    out = []
    for turn in t.turns:
        words = [fold(w.text) for w in turn.words]
        for i, w in enumerate(words):
            if not rx[0].match(w):
                continue
            k = 1
            for later in words[i + 1 :]:
                if k < len(rx) and rx[k].match(later):
                    k += 1
            if k == len(rx):
                out.append(turn.words[i].start)
    return out


@pytest.fixture(scope="session")
def radio(tmp_path_factory):
    """(workspace, transcript, silver words): transcribed once per session."""
    media = shared_file("fr/radiofrance_smartphone.mp3")
    silver = json.loads(media.with_suffix(".silver.words.json").read_text(encoding="utf-8"))
    ws = Workspace(tmp_path_factory.mktemp("radio"))
    result = run("fetch", str(media), "--json", ws=ws)
    assert result.exit_code == 0, result.output
    (rid,) = ws.transcript_ids()
    t = store.load(ws, rid)
    ref = [(fold(w["text"]), float(w["start"])) for w in silver]
    return ws, t, ref


def test_every_mention_at_its_second(radio) -> None:
    ws, t, ref = radio
    said = [(fold(w.text), w.start) for tn in t.turns for w in tn.words]
    aligned = aligned_times(said, ref)
    checked = 0
    for query, pattern in QUERIES:
        res = search_api.search(ws, query, limit=100)
        mentions = [m for _h, m in res.mentions]
        assert all(m.located for m in mentions), query
        times = sorted(m.time for m in mentions)
        ref_times = find(ref, pattern)
        recognised = find(said, pattern)  # what the base model wrote, by the same regex
        assert ref_times, f"{query}: not in the reference"
        # Every mention is at words the model wrote for the query (no stray citation) and
        # cites the reference time of the spoken words. Unquoted words need not be adjacent
        # (AND within a turn, cited at the tightest passage): a passage whose words the model
        # wrote apart is a real hit, but its words were not recognised as said together, so
        # it has no reference time to meet; its time must still be exactly that passage's
        # first word, with every query word after it in the turn. (Since small-cluster
        # folding, base's "objet" at 50.2 s and "techniques" at 59.6 s, heard as "objectes
        # techniques", share one turn.)
        spread = [] if '"' in query else passages(t, pattern)
        for m in times:
            if len(pattern) > 1 and not any(abs(m - r) <= TOLERANCE for r in recognised):
                assert any(abs(m - p) <= 0.01 for p in spread), (
                    f"{query}: hit at {m:.1f} s where the transcript has none of {recognised}"
                    f" and no passage holding every word starts there ({spread})"
                )
                continue
            assert any(abs(m - r) <= TOLERANCE for r in recognised), (
                f"{query}: hit at {m:.1f} s where the transcript has none of {recognised}"
            )
            # The reference time of the words: the query's words in the reference or, where
            # the model misheard other words as the query's, the time of those words (base
            # wrote "mort inédite" for "mort immédiate" at 148 s on an Intel Xeon, not on an
            # AMD EPYC: the CPU's maths tips close calls). A misheard word is still cited at
            # the second it was said.
            misheard = [aligned[r] for r in recognised if abs(m - r) <= 0.01 and r in aligned]
            near = min(abs(m - r) for r in [*ref_times, *misheard])
            assert near <= TOLERANCE, f"{query}: hit at {m:.1f} s, reference {ref_times}"
            checked += 1
        # Every recognised mention that the reference also has is its own hit.
        for r in ref_times:
            if any(abs(r - s) <= TOLERANCE for s in recognised):
                assert any(abs(r - m) <= TOLERANCE for m in times), (
                    f"{query}: mention at {r:.1f} s missing from {times}"
                )
        # Separate mentions are separate hits: never two at one moment.
        assert len(set(round(x, 1) for x in times)) == len(times), query
    assert len(QUERIES) >= 20 and checked >= 60


def test_a_repeated_name_gives_one_hit_per_mention(radio) -> None:
    ws, t, _ref = radio
    said = [(fold(w.text), w.start) for tn in t.turns for w in tn.words]
    recognised = find(said, ["nicolas"])
    assert len(recognised) >= 3  # Nicolas is named four times in the reference
    res = search_api.search(ws, "Nicolas", limit=100)
    times = sorted(m.time for _h, m in res.mentions)
    assert len(times) == len(recognised)
    for r, m in zip(sorted(recognised), times, strict=True):
        assert abs(r - m) <= 0.01  # the word's own start, not its turn's
    # Several words: the tightest passage. Base hears "objet" at 42.3 and 50.2 s, then
    # "objectes techniques" at 59.6 s: the passage starts at the nearer "objet", not the first.
    res = search_api.search(ws, "objet technique", limit=100)
    objet = find(said, [r"objet"])
    assert objet[:2] == pytest.approx([42.26, 50.2], abs=0.5)
    assert all(abs(m.time - objet[0]) > 1 for _h, m in res.mentions)


def test_radio_subtitles_follow_the_reading_rules(radio, tmp_path) -> None:
    """Issue 15: 178 s of real French radio as transcribed by the pipeline: every cue within
    2 lines x 42 characters and 0.8 s, read back by srt, webvtt-py and ffmpeg."""
    from test_subtitles import check_exports

    ws, _t, _ref = radio
    cues = check_exports(ws, tmp_path)
    assert len(cues) == 1 and next(iter(cues.values())) >= 40, cues


def test_eval_search_timing_mode_against_the_silver_words(radio, tmp_path) -> None:
    ws, t, _ref = radio
    media = shared_file("fr/radiofrance_smartphone.mp3")
    q = tmp_path / "q.json"
    q.write_text(
        json.dumps([{"query": x, "recording": t.id} for x in ("Nicolas", "dependance", "voiture")])
    )
    words = media.with_suffix(".silver.words.json")
    r = run("eval", "search", str(q), "--words", str(words), "--lang", "fr", "--json", ws=ws)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["mode"] == "timing" and data["tolerance"] == 2.0
    assert data["queries"] >= 8  # every reference moment of the three words
    # Base hears "si j'en preu à Nicolas" for "si j'en crois à Nicolas" but still "Nicolas":
    # every moment the reference says them is found, within a second.
    assert data["recall"] == 1.0 and data["max_time_error"] <= 1.0
    text = run("eval", "search", str(q), "--words", str(words), "--lang", "fr", ws=ws).stdout
    assert "recall within 2 s 1.00" in text


@pytest.fixture(scope="session")
def russian(tmp_path_factory):
    """(workspace, transcript) of 11 s of real Russian read speech, transcribed once."""
    media = shared_file("ru/pisets_mono_sound_ru.wav")
    ws = Workspace(tmp_path_factory.mktemp("russian"))
    result = run("fetch", str(media), "--json", ws=ws)
    assert result.exit_code == 0, result.output
    (rid,) = ws.transcript_ids()
    return ws, store.load(ws, rid)


def test_russian_inflected_names_and_phrases_on_real_speech(russian) -> None:
    # No word-timed reference for this clip: each mention must be the start of the word the
    # model wrote, whatever case the query is typed in.
    ws, t = russian
    said = [(fold(w.text), w.start) for tn in t.turns for w in tn.words]
    (ivan,) = [s for w, s in said if w.startswith("иван")]  # base writes "Ивана"
    for q in ("Иван", "Ивана", "Ивану", "Иваном", "Иване"):
        found = [m.time for _h, m in search_api.search(ws, q).mentions]
        assert found == [pytest.approx(ivan, abs=0.01)], q  # word times kept to 10 ms
    (spring,) = [s for w, s in said if w.startswith("вешн")]  # "вешние воды"
    for q in ('"вешняя вода"', '"вешние воды"', "воды вешние", "вешней водой"):
        found = [m.time for _h, m in search_api.search(ws, q).mentions]
        assert found == [pytest.approx(spring, abs=0.01)], q
    assert search_api.search(ws, '"воды вешние"').mentions == []  # a phrase keeps its order
