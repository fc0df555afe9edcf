"""Mentions on a real Whoosh index built from hand-made transcripts (fast; issue 11).

Words start every 0.5 s (test_index_search.make), so word k of a turn is at start + k/2.
"""

from __future__ import annotations

import json

import pytest
from conftest import run
from test_index_search import _build, make

from confindex.search import hits as search_api
from confindex.search.hits import TimeNotLocated, search
from confindex.store.workspace import Workspace

FR = make(
    "radio",
    "Le smartphone",
    [
        # 0: a name said three times in one turn, inflected forms far apart, numbers.
        (
            "SPEAKER_00",
            "Nicolas dit que cet objet est inédit . Nicolas ajoute que les conseillers "
            "généraux parlent des objets techniques depuis vingt-trois ans et Nicolas rit",
            None,
        ),
        ("SPEAKER_01", "Il a passé 3 minutes sur BFMTV avec Jean-Loup à propos de Saliout-7", None),
        ("SPEAKER_01", "Le conseiller général a vu BFM TV et un apostle", None),
    ],
    lang="fr",
    speakers={"SPEAKER_00": "Marie Dupont"},
)
EN = make(
    "talk",
    "Numbers",
    [("SPEAKER_00", "We waited three minutes then twenty three more", None)],
    lang="en",
)


@pytest.fixture(scope="module")
def radio(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return _build(tmp_path_factory.mktemp("mentions") / "ws", (FR, EN))


def times(ws: Workspace, q: str) -> list[tuple[int, list[float]]]:
    """(turn, mention times relative to the turn start) per hit, in turn order."""
    hits = sorted(search(ws, q, limit=50).hits, key=lambda h: (h.recording_id, h.turn_id))
    return [(h.turn_id, [round(m.time - h.start, 2) for m in h.mentions]) for h in hits]


def test_a_name_said_three_times_is_three_mentions(radio: Workspace) -> None:
    (hit,) = search(radio, "Nicolas").hits
    assert [round(m.time - hit.start, 2) for m in hit.mentions] == [0.0, 4.0, 11.0]
    assert hit.time == hit.mentions[0].time and hit.located
    assert [m.link for m in hit.mentions] == [
        f"https://youtu.be/radio?t={int(hit.start + s)}" for s in (0.0, 4.0, 11.0)
    ]
    assert all("**Nicolas**" in m.fragment for m in hit.mentions)


def test_several_words_cite_the_tightest_passage(radio: Workspace) -> None:
    # "objet" is word 4 (2.0 s), "objets techniques" words 16–17: the pair, not the first.
    assert times(radio, "objet technique") == [(0, [8.0])]
    assert times(radio, '"objet technique"') == [(0, [8.0])]
    assert times(radio, "technique objet") == [(0, [8.0])]
    assert times(radio, '"technique objet"') == []


def test_inflected_forms_time_the_matched_word(radio: Workspace) -> None:
    # conseiller matches "conseillers" (stems): its own second, never the turn start.
    assert times(radio, "conseiller") == [(0, [6.0]), (2, [0.5])]
    assert times(radio, '"conseiller général"') == [(0, [6.0]), (2, [0.5])]
    assert times(radio, '="conseiller général"') == [(2, [0.5])]  # the exact form only


def test_numbers_as_words_or_digits(radio: Workspace) -> None:
    assert times(radio, "trois minutes") == [(1, [1.5])]  # "3 minutes"
    assert times(radio, '"3 minutes"') == [(1, [1.5]), (0, [1.0])]  # "three minutes" (en)
    assert times(radio, "23") == [(0, [9.5]), (0, [2.5])]  # vingt-trois; twenty three
    assert times(radio, "vingt-trois") == [(0, [9.5])]


def test_spacing_and_hyphen_variants(radio: Workspace) -> None:
    assert times(radio, "BFM TV") == [(1, [3.0]), (2, [2.5])]
    assert times(radio, "BFMTV") == [(1, [3.0]), (2, [2.5])]
    assert times(radio, '"BFM TV"') == [(1, [3.0]), (2, [2.5])]
    assert times(radio, "Jean Loup") == [(1, [4.0])]
    assert times(radio, "jeanloup") == [(1, [4.0])]
    assert times(radio, '"Saliout 7"') == [(1, [6.0])]


def test_fuzzy_counts_a_transposition_as_one_edit(radio: Workspace) -> None:
    assert times(radio, "apostel~") == [(2, [4.5])]
    assert times(radio, "nicolsa~") == [(0, [0.0, 4.0, 11.0])]
    assert times(radio, "apsotel~") == []  # the first letter stays (as the index's prefix)


def test_json_has_mentions_grouped_under_the_turn(radio: Workspace) -> None:
    r = run("search", "Nicolas", "--json", ws=radio)
    assert r.exit_code == 0, r.output
    (hit,) = json.loads(r.stdout)["hits"]
    assert len(hit["mentions"]) == 3 and hit["mentions"][1]["fragment"].count("**") == 2
    assert hit == search(radio, "Nicolas").hits[0].to_dict()  # one shape for CLI and API
    text = run("search", "Nicolas", ws=radio).stdout
    assert text.count("also at [") == 2


def test_a_hit_that_cannot_be_timed_raises_in_tests(radio: Workspace, monkeypatch) -> None:
    # Break the locator: the words Whoosh matched are no longer found in the turn.
    monkeypatch.setattr(search_api, "passages", lambda tree, tt: [])
    with pytest.raises(TimeNotLocated):
        search(radio, "Nicolas")
    monkeypatch.delenv(search_api.STRICT_ENV)
    (hit,) = search(radio, "Nicolas").hits  # outside tests: logged, flagged, turn start
    assert not hit.located and hit.time == hit.start
    # A query of fields alone has no words to time: the turn start is the right answer.
    monkeypatch.setenv(search_api.STRICT_ENV, "1")
    hits = search(radio, "speaker:Dupont").hits
    assert [h.time for h in hits] == [h.start for h in hits]


FR_NEXT = make(
    "plenary",
    "Les jeux",
    [
        # What a researcher typed next on French panels (each was missed before).
        ("SPEAKER_00", "Les vidéos des jeux coûtent 25 millions d'euros selon l'humanité", None),
        ("SPEAKER_00", "Une vidéo du jeu en 1986 puis 345 euros", None),
        ("SPEAKER_00", "Il a plu sur le bus et il peut peu", None),
        ("SPEAKER_00", "Il a parlé pendant une heure puis 21 heures", None),
    ],
    lang="fr",
)


@pytest.fixture(scope="module")
def plenary(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return _build(tmp_path_factory.mktemp("mentions-next") / "ws", (FR_NEXT,))


def test_french_plurals_snowball_keeps_apart(plenary: Workspace) -> None:
    # Snowball French keeps the s/x after o and u (vidéos ≠ vidéo, jeux ≠ jeu, euros ≠ euro).
    assert times(plenary, "vidéo") == [(0, [0.5]), (1, [0.5])]
    assert times(plenary, "videos") == [(0, [0.5]), (1, [0.5])]
    assert times(plenary, "jeu") == [(0, [1.5]), (1, [1.5])]
    assert times(plenary, "jeux") == [(0, [1.5]), (1, [1.5])]
    assert times(plenary, "euro") == [(0, [3.5]), (1, [4.0])]
    assert times(plenary, '"vidéo du jeu"') == [(1, [0.5])]
    assert times(plenary, '"vidéos des jeux"') == [(0, [0.5])]
    assert times(plenary, '="vidéos des jeux"') == [(0, [0.5])]
    # Not every word ending in s or x is a plural beside its singular.
    assert times(plenary, "plus") == []  # "il a plu"
    assert times(plenary, "bu") == []  # "bus"
    assert times(plenary, "peux") == []  # "peu"


def test_an_elided_article_typed_with_a_space(plenary: Workspace) -> None:
    assert times(plenary, "l'humanité") == [(0, [4.5])]
    assert times(plenary, "l humanite") == [(0, [4.5])]
    assert times(plenary, '"selon l humanité"') == [(0, [4.0])]
    assert times(plenary, "d euros") == [(0, [3.5]), (1, [4.0])]  # as d'euros


def test_number_words_typed_without_quotes_find_the_digits(plenary: Workspace) -> None:
    # Each word alone only finds its own digits (vingt → 20): the run is one number.
    assert times(plenary, "vingt cinq") == [(0, [2.5])]
    assert times(plenary, "twenty five") == [(0, [2.5])]
    assert times(plenary, "двадцать пять") == [(0, [2.5])]
    assert times(plenary, "mille neuf cent quatre-vingt-six") == [(1, [2.5])]
    assert times(plenary, "trois cent quarante cinq euros") == [(1, [3.5])]
    assert times(plenary, "vingt six") == []


RU = make(
    "lecture",
    "Нейросети",
    [
        (
            "SPEAKER_00",
            "Мы обучали нейронные сети двадцать три дня а потом эту нейронную сеть ещё 5 дней",
            None,
        )
    ],
    lang="ru",
)


@pytest.fixture(scope="module")
def lecture(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return _build(tmp_path_factory.mktemp("mentions-ru") / "ws", (RU,))


def test_russian_phrases_and_numbers(lecture: Workspace) -> None:
    # Words at 0.5 s steps: нейронные 1.0, двадцать 2.0, нейронную 5.0, ещё 6.0, 5 6.5.
    assert times(lecture, '"нейронные сети"') == [(0, [1.0, 5.0])]  # and "нейронную сеть"
    assert times(lecture, '="нейронные сети"') == [(0, [1.0])]
    assert times(lecture, "23") == [(0, [2.0])]  # двадцать три
    assert times(lecture, '"двадцать три дня"') == [(0, [2.0])]
    assert times(lecture, '"пять дней"') == [(0, [6.5])]  # "5 дней"
    assert times(lecture, "еще") == [(0, [6.0])]  # ё folded


COSMOS = make(
    "cosmos",
    "Королёв",
    [
        ("SPEAKER_00", "Королёв писал Лаврову а Ивана ждали", None),
        ("SPEAKER_01", "Памяти Королёва и Лавров с Иваном", None),
        ("SPEAKER_00", "Через две недели и 2 недели", None),
    ],
    lang="ru",
)


@pytest.fixture(scope="module")
def cosmos(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return _build(tmp_path_factory.mktemp("mentions-cosmos") / "ws", (COSMOS,))


def test_russian_names_in_every_case(cosmos: Workspace) -> None:
    # Snowball stems Королёв → корол but Королёва → королев, Иван → ива but Ивану → иван:
    # a name in one case found none of the others.
    both = [(0, [0.0]), (1, [0.5])]
    assert times(cosmos, "Королёв") == both
    assert times(cosmos, "Королёву") == both
    assert times(cosmos, "Лавров") == [(0, [1.0]), (1, [1.5])]
    assert times(cosmos, "Лаврова") == [(0, [1.0]), (1, [1.5])]
    assert times(cosmos, "Ивану") == [(0, [2.0]), (1, [2.5])]
    assert times(cosmos, '"Лаврову а Ивану"') == [(0, [1.0])]


def test_feminine_numbers(plenary: Workspace, cosmos: Workspace) -> None:
    # num2words writes "un" and "два": "une heure" and "две недели" were missed.
    assert times(plenary, '"pendant 1 heure"') == [(3, [1.5])]
    assert times(plenary, '"vingt et une heures"') == [(3, [3.5])]
    assert times(cosmos, '"2 недели"') == [(2, [0.5, 2.0])]
    assert times(cosmos, '"две недели"') == [(2, [0.5, 2.0])]
