"""Speaker turns end to end on a real two-speaker telephone call (pyannote's sample)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from conftest import run, shared_file

from confindex.store import transcript as store
from confindex.store.workspace import Workspace

pytestmark = pytest.mark.slow


def read_stm(path) -> list[tuple[float, float, str]]:
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split(maxsplit=5)
        rows.append((float(parts[3]), float(parts[4]), parts[2]))
    return rows


def test_words_get_the_right_speaker_and_search_filters_by_speaker(tmp_path):
    wav = shared_file("diar/pyannote_sample.wav")
    stm = read_stm(wav.with_suffix(".stm"))
    ws = Workspace(tmp_path / "ws")
    r = run("fetch", str(wav), "--json", ws=ws)
    assert r.exit_code == 0, r.output
    t = store.load(ws, json.loads(r.stdout)["recordings"][0]["recording_id"])
    assert len({turn.speaker for turn in t.turns}) == 2

    pairs = []
    for turn in t.turns:
        for w in turn.words:
            mid = (w.start + w.end) / 2
            ref = min(
                stm,
                key=lambda u: 0 if u[0] <= mid <= u[1] else min(abs(mid - u[0]), abs(mid - u[1])),
            )
            pairs.append((w.speaker, ref[2]))
    # Map each hypothesis label to the reference speaker it most often coincides with.
    mapping = {
        h: Counter(ref for hh, ref in pairs if hh == h).most_common(1)[0][0] for h, _ in pairs
    }
    assert len(set(mapping.values())) == 2
    accuracy = sum(mapping[h] == ref for h, ref in pairs) / len(pairs)
    assert accuracy >= 0.9, accuracy

    # "What did Sheila say about Yankees?" — the hit names her label at the right second.
    sheila = next(h for h, ref in mapping.items() if ref == "Sheila")
    res = run("search", f"yankee speaker:{sheila}", "--json", ws=ws)
    assert res.exit_code == 0, res.output
    hits = json.loads(res.stdout)["hits"]
    assert hits and hits[0]["speaker"] == sheila
    assert 24.0 <= hits[0]["time"] <= 28.5
    diane = next(h for h, ref in mapping.items() if ref == "Diane")
    none = run("search", f"yankee speaker:{diane}", "--json", ws=ws)
    assert json.loads(none.stdout)["hits"] == []
