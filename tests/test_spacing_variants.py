"""Spacing and hyphen variants inside any query (issue 31): `BFM TV` finds "BFMTV" also with
fields, filters and exclusions around it, on a real Whoosh index (test_mentions' transcripts)."""

from __future__ import annotations

import pytest
from test_index_search import _build
from test_mentions import EN, FR, times

from confindex.store.workspace import Workspace


@pytest.fixture(scope="module")
def radio(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return _build(tmp_path_factory.mktemp("spacing") / "ws", (FR, EN))


def test_spacing_variant_with_fields_filters_and_exclusions(radio: Workspace) -> None:
    both = [(1, [3.0]), (2, [2.5])]  # turn 1 says "BFMTV", turn 2 "BFM TV"
    assert times(radio, "BFM TV") == both
    assert times(radio, "BFM TV recording:radio lang:fr -poker") == both
    assert times(radio, "BFM TV speaker:SPEAKER_01") == both
    assert times(radio, "BFM TV speaker:SPEAKER_00") == []
    assert times(radio, "BFM TV lang:en") == []  # the filter still filters the variant
    # The exclusion applies to the joined form too: turn 1 names Saliout, turn 2 does not.
    assert times(radio, "BFM TV -Saliout") == [(2, [2.5])]
    assert times(radio, "BFM TV -conseiller") == [(1, [3.0])]
    # Other words beside the pair: each turn must still say them.
    assert times(radio, "passé BFM TV") == [(1, [1.0])]
    assert times(radio, "Jean Loup Saliout lang:fr") == [(1, [4.0])]
    # Inside an OR group, and a hyphenated pair.
    assert times(radio, "(BFM TV lang:fr) OR apostle") == [(1, [3.0]), (2, [2.5, 4.5])]
    assert times(radio, "Jean-Loup lang:fr -poker") == [(1, [4.0])]
