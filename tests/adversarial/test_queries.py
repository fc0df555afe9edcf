"""Hostile queries through the real `search` command: a hit list (exit 0) or one line (exit 2),
never a traceback (issue 16). Named cases, then property-based ones (hypothesis)."""

from __future__ import annotations

import pytest
from conftest import run
from harness import assert_intact, assert_one_line_error, good_archive
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confindex.store.workspace import Workspace


@pytest.fixture(scope="module")
def adv(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return good_archive(tmp_path_factory.mktemp("adv-queries") / "ws")


def search(ws: Workspace, q: str, *opts: str):
    """`confindex search [opts] -w WS -- Q`: the query is never read as an option."""
    return run("search", *opts, "-w", str(ws.root), "--", q)


BAD = [
    '"unbalanced',
    'fox "',
    "(fox",
    "fox)",
    "((fox)",
    "()",
    "(" * 400 + "fox" + ")" * 400,
    "(" * 33 + "fox" + ")" * 33,
    "fox " * 2500,  # 10k characters
    "x" * 10_000,
    "fox\x00",
    "fox\x1b[31m",
    "\x1b]0;pwned\x07fox",
    "fox\x07",
    "\u202efox",
    "speaker:",
    'speaker:"unterminated',
    "date:abc",
    "date:2023-13-45",
    "date:2024..2023",
    "at:xx",
    "at:10m..5m",
    "before:-3",
    "lang:",
    "nosuchfield:fox",
    "fox~9",
    "fo~",
    "*",
    "f*",
    "fo*x",
    "-fox",
    "NOT fox",
    "OR",
    "fox OR",
    "AND fox",
    "fox AND AND dog",
    '""',
    "   ",
    "NOT NOT fox",
]


@pytest.mark.parametrize("q", BAD, ids=[repr(q)[:28] for q in BAD])
def test_bad_queries_are_one_line_usage_errors(adv: Workspace, q: str) -> None:
    r = search(adv, q)
    line = assert_one_line_error(r, (2,))
    assert line.startswith("Error: bad query: ")
    assert "\x1b" not in line and "\x00" not in line


def test_deep_but_allowed_nesting_still_searches(adv: Workspace) -> None:
    r = search(adv, "(" * 32 + "fox" + ")" * 32)
    assert r.exit_code == 0 and "fox" in r.stdout


SYNTAX = st.sampled_from([*'"()-*~:. ', "OR", "AND", "NOT", "speaker:", "date:", "at:"])
WORDS = st.sampled_from(["fox", "dog", "river", "brown", "Ada", "2023", "10m", "..", "x"])
# No time limits: on a loaded CI machine (2 shared cores) generating 12k-character queries or
# running the CLI may be slow, and a timing health check would fail a run that found no bug.
UNTIMED = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
QUERIES = st.lists(st.one_of(SYNTAX, WORDS, st.text(max_size=6)), min_size=1, max_size=12).map(
    "".join
)


@settings(max_examples=150, deadline=None, suppress_health_check=UNTIMED)
@given(q=QUERIES)
def test_any_query_gives_hits_or_one_line(adv: Workspace, q: str) -> None:
    """Unbalanced quotes, field garbage, control characters, any Unicode: exit 0 or 2."""
    r = search(adv, q, "--format", "json")
    if r.exit_code != 0:
        assert_one_line_error(r, (2,))


@settings(max_examples=40, deadline=None, suppress_health_check=UNTIMED)
@given(q=st.text(alphabet=st.characters(max_codepoint=0x3000), min_size=900, max_size=12_000))
def test_long_random_queries(adv: Workspace, q: str) -> None:
    r = search(adv, q)
    if r.exit_code != 0:
        assert_one_line_error(r, (2,))


def test_the_archive_is_intact_after_the_queries(adv: Workspace) -> None:
    assert_intact(adv)
