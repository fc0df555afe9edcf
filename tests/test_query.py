"""The query language: parsing, precise errors, translation into Whoosh queries."""

from __future__ import annotations

import pytest
from whoosh import query as wq

from confindex.errors import QueryError
from confindex.search.compile import (
    MAll,
    MAny,
    MNot,
    SlotKind,
    _has_positive_unit,
    _ru_alpha2digit,
    compile,
    to_whoosh,
)
from confindex.search.grammar import And, Field, Not, Or, Phrase, Word, parse, parse_date_range


def test_words_phrases_fields_and_operators() -> None:
    p = parse('diplomatie "space diplomacy" speaker:"Marie Dupont" -budget')
    assert p.node == And(
        (
            Word("diplomatie"),
            Phrase("space diplomacy"),
            Field("speaker", "Marie Dupont", quoted=True),
            Not(Word("budget")),
        )
    )
    assert parse("mars OR lune budget").node == Or(
        (Word("mars"), And((Word("lune"), Word("budget"))))
    )
    assert parse("(mars OR lune) AND budget").node == And(
        (Or((Word("mars"), Word("lune"))), Word("budget"))
    )
    assert parse("diplomacie~ soyouz~2 diplo*").node == And(
        (Word("diplomacie", fuzzy=1), Word("soyouz", fuzzy=2), Word("diplo", prefix=True))
    )
    # Lowercase "or"/"not" are words; a time like 12:34 is not a field.
    assert parse("war or peace").node == And((Word("war"), Word("or"), Word("peace")))
    assert parse("at 12:34").node == And((Word("at"), Word("12:34")))


def test_whitespace_and_tabs_are_normalized() -> None:
    assert parse("  budget\t\nmars ").text == "budget mars"


@pytest.mark.parametrize(
    ("q", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ('"unbalanced', "unbalanced quote"),
        ('speaker:"Marie', "unbalanced quote"),
        ("NOT", "NOT must be followed"),
        ("budget NOT", "NOT must be followed"),
        ("-budget", "only excludes"),
        ("NOT budget", "only excludes"),
        ("x" * 10_000, "too long"),
        ("budget\x00", "control character U+0000"),
        ("budget\x1b[31m", "control character U+001B"),
        ("budget\u202e", "control character U+202E"),
        ("speaker:", "speaker: needs a value"),
        ("date:", "date: needs a value"),
        ("(budget", "unbalanced ("),
        ("budget)", "unbalanced )"),
        ("()", "empty parentheses"),
        ("foo:bar", "unknown field foo:"),
        ("date:2023-13", "cannot read date"),
        ("date:2023-12..2023-01", "ends before it starts"),
        ("at:soon", "cannot read 'soon' as a time"),
        ("at:20m..10m", "ends before it starts"),
        ("a*", "at least 2 letters"),
        ("*", "at least 2 letters"),
        ("ab*cd", "trailing *"),
        ("ab~", "at least 3 letters"),
        ("budget~3", "1 or 2"),
        ("OR budget", "OR needs a word"),
        ("budget OR", "OR needs a word"),
        ("budget AND", "AND needs a word"),
        ('""', "empty phrase"),
        ("lang:french!", "language code"),
        ("speaker:x OR at:10m", "cannot be used inside OR"),
        (" ".join(["w"] * 65), "too many words"),
    ],
)
def test_malformed_queries_raise_one_line_query_errors(q: str, fragment: str) -> None:
    with pytest.raises(QueryError) as ei:
        to_whoosh(parse(q))
    msg = ei.value.message
    assert fragment in msg and "\n" not in msg and msg.startswith("bad query: ")
    assert ei.value.exit_code == 2


def test_punctuation_only_query_has_nothing_to_search() -> None:
    with pytest.raises(QueryError, match="nothing to search for"):
        to_whoosh(parse("!!! ???"))


def test_dates() -> None:
    assert parse_date_range("2023") == ("2023", "2023-99")
    assert parse_date_range("2023-10..2023-12") == ("2023-10", "2023-12-99")
    assert parse_date_range("2023-10-05") == ("2023-10-05", "2023-10-05")
    assert parse_date_range("2024..") == ("2024", None)
    assert parse_date_range("..2022-06") == (None, "2022-06-99")


def test_time_ranges() -> None:
    assert parse("budget at:10m..20m").time_ranges == [(600.0, 1200.0)]
    assert parse("budget at:12:34").time_ranges == [(754.0, 754.0)]
    assert parse("budget after:1h before:1h30m").time_ranges == [(3600.0, None), (0.0, 5400.0)]


def test_translation_is_fast_shaped() -> None:
    # Filters are plain Terms (fast); a word ORs its exact form with its distinct stems.
    q = to_whoosh(parse("speaker:SPEAKER_01"))
    assert q == wq.Or([wq.Term("speaker", "speaker_01"), wq.Term("speaker_name", "speaker_01")])
    q = to_whoosh(parse("Diplomatique"), langs=("fr", "en"))
    required = q.a  # AndMaybe(required, title/speaker boosts)
    assert isinstance(q, wq.AndMaybe)
    assert required == wq.Or(
        [
            wq.Term("stem", "diplomat"),  # fr
            wq.Term("stem", "diplomatiqu"),  # en
            wq.Term("stem", "diplomatique"),  # folded: languages without a stemmer
        ]
    )
    assert to_whoosh(parse("station"), langs=("fr", "en")).a == wq.Term("stem", "station")
    # Phrases: candidates from the unpositioned stem field (checked in order on the tokens
    # later), plus the two words written as one; pairs of common words are indexed terms.
    space = wq.And([wq.Term("stem", "space"), wq.Term("stem", "diplomacy")])
    assert to_whoosh(parse('"Space Diplomacy"'), langs=()).a == wq.Or(
        [space, wq.Term("stem", "spacediplomacy")]
    )
    # Common words add no title/speaker boost: "of the" is the pair term alone.
    assert to_whoosh(parse('="of the"'), langs=()) == wq.Term("pairs", "of|the")
    # CommonGrams: a common word and its neighbour are one indexed stem pair.
    assert to_whoosh(parse('="De la Lune"'), langs=()).a == wq.And(
        [wq.Term("pairs", "de|la"), wq.Term("pairs", "la|lune")]
    )
    assert to_whoosh(parse('"la station"'), langs=()).a == wq.Term("pairs", "la|station")
    assert to_whoosh(parse("date:2023-10"), langs=()) == wq.Prefix("date", "2023-10")
    q = to_whoosh(parse("at:1m..3m30s"), langs=())
    assert q == wq.Or([wq.Term("minutes", f"m{m}") for m in (1, 2, 3)])


def test_match_tree_skips_negated_words() -> None:
    c = compile(parse('étoile -budget "l\'espace européen" diplo* soyouz~'), langs=("fr",))
    assert isinstance(c.tree, MAll) and c.verify  # a phrase: candidates are checked in order
    etoile, neg, phrase, prefix, fuzzy = c.tree.nodes
    assert etoile.alts[0][0].forms == {"etoile", "etoil"}
    assert isinstance(neg, MNot) and not _has_positive_unit(neg, negated=False)
    assert [s.word for s in phrase.alts[0]] == ["espace", "europeen"]
    assert prefix.alts[0][0].kind is SlotKind.PREFIX and prefix.alts[0][0].word == "diplo"
    assert fuzzy.alts[0][0].kind is SlotKind.FUZZY and fuzzy.alts[0][0].dist == 1


def test_numbers_and_spellings_are_alternatives() -> None:
    words = lambda u: [[s.word for s in alt] for alt in u.alts]  # noqa: E731
    c = compile(parse("7"), langs=("fr", "en", "ru"))
    assert words(c.tree) == [["7"], ["sept"], ["seven"], ["семь"]]
    c = compile(parse("vingt-trois"), langs=("fr",))
    assert ["23"] in words(c.tree) and ["vingttrois"] in words(c.tree)
    c = compile(parse('"trois minutes"'), langs=("fr",))
    assert ["3", "minutes"] in words(c.tree)
    assert compile(parse("un"), langs=("fr",)).tree.alts == compile(parse("un"), ()).tree.alts
    # Russian number words in a phrase: runs summed (text2num has no Russian).
    c = compile(parse('"сто двадцать три дня"'), langs=("ru",))
    assert ["123", "дня"] in words(c.tree)
    assert _ru_alpha2digit("три двадцать пять") == "3 25"  # two numbers, not 23 nor 28
    c = compile(parse("BFM TV"), langs=())  # two words also match written as one
    assert isinstance(c.tree, MAny) and words(c.tree.nodes[1]) == [["bfmtv"]]
