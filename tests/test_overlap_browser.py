"""Overlapped speech on the recording page's timeline (issue 29), in a real browser (Debian's
Chromium through Playwright, the real server on 127.0.0.1): where two people talk at once, a bar
in each of their lanes, named for assistive technology, escaped; each turn says who talks over
it. Skips, saying why, when Chromium or Playwright is missing."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from servekit import (
    PANEL_ID,
    XSS_NAME,
    panel_transcript,
    start_server,
    stop_server,
    watched_page,
)

from confindex.speech.turns import mark_overlaps, speaker_segments_from_turns
from confindex.store.store import Store
from confindex.store.transcript import SpeakerSegment, save
from confindex.store.workspace import Workspace

OVERLAP_ID = "panel-overlap"


def overlapped_panel():
    """The panel with two stretches of two people at once (Maya over Marc 5.0-7.0 s, Marc over
    Maya 40.0-41.5 s) and a 0.12 s brush at a turn change (24.8-24.95 s) that is no overlap."""
    t = panel_transcript()
    t.recording = replace(t.recording, id=OVERLAP_ID, title="Panel, talking over each other")
    t.diarization = [
        *speaker_segments_from_turns(t.turns),
        SpeakerSegment(5.0, 7.0, "SPEAKER_01"),
        SpeakerSegment(40.0, 41.5, "SPEAKER_00"),
        SpeakerSegment(24.8, 24.95, "SPEAKER_01"),
    ]
    t.turns = mark_overlaps(t.turns, t.diarization)
    t.speakers = {"SPEAKER_00": "Marc Lefèvre", "SPEAKER_01": XSS_NAME}
    return t


@pytest.fixture(scope="module")
def served(tmp_path_factory, chromium):
    ws = Workspace(tmp_path_factory.mktemp("overlap-web") / "ws").ensure()
    t = overlapped_panel()
    assert [x.overlap for x in t.turns[:2]] == [["SPEAKER_01"], []]
    save(ws, t)
    save(ws, panel_transcript())  # no diarization: no overlap
    Store(ws).rebuild_index()
    server = start_server(ws)
    try:
        with watched_page(chromium) as page:
            yield server, page
    finally:
        stop_server(server)


def bars(page) -> list[dict]:
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('#timeline rect.ovl')).map(r => ({
            label: r.dataset.label, x: parseFloat(r.getAttribute('x')),
            w: parseFloat(r.getAttribute('width')), y: parseFloat(r.getAttribute('y')),
            title: r.querySelector('title').textContent, aria: r.getAttribute('aria-label')}))"""
    )


def test_each_overlap_is_a_bar_in_both_speakers_lanes_named_and_escaped(served) -> None:
    server, page = served
    page.goto(server.url + f"r/{OVERLAP_ID}")
    got = sorted(bars(page), key=lambda b: (b["x"], b["y"]))
    # Two stretches, one bar in each talker's lane (Marc lane 0 at y 1, Maya lane 1 at y 11);
    # the 0.12 s brush at 24.8 s is not drawn.
    assert [(b["label"], b["x"], b["w"], b["y"]) for b in got] == [
        ("SPEAKER_00", 5.0, 2.0, 1.0),
        ("SPEAKER_01", 5.0, 2.0, 11.0),
        ("SPEAKER_00", 40.0, 1.5, 1.0),
        ("SPEAKER_01", 40.0, 1.5, 11.0),
    ]
    # Named by display name, the hostile one as text (no element made of it, no script run).
    said = f"Marc Lefèvre and {XSS_NAME} at once, 00:00:05–00:00:07"
    assert got[0]["title"] == got[0]["aria"] == said
    assert page.get_by_role("img", name=said).count() == 2
    assert page.get_by_role("group", name=re.compile("2 stretches of overlapped speech")).count()
    assert page.evaluate("document.querySelectorAll('[onload], #timeline svg').length") == 0
    # The overlap bar in Maya's lane is visible over Marc's turn, where nothing of hers was
    # drawn before: the topmost element at its centre is that bar.
    box = page.locator('#timeline rect.ovl[data-label="SPEAKER_01"]').first.bounding_box()
    top = page.evaluate(
        "([x, y]) => { const e = document.elementFromPoint(x, y);"
        " return e.classList.contains('ovl') && e.dataset.label; }",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    assert top == "SPEAKER_01"
    # Each turn says who talks over it.
    over = page.locator('#transcript article[data-turn="0"] .over')
    assert over.inner_text() == f"over {XSS_NAME}"
    assert page.locator('#transcript article[data-turn="1"] .over').count() == 0
    assert not page.dialogs and not page.errors


def test_clicking_an_overlap_bar_seeks_there(served) -> None:
    server, page = served
    page.goto(server.url + f"r/{OVERLAP_ID}")
    page.wait_for_function("() => document.querySelector('#player').readyState >= 1", timeout=15000)
    bar = page.locator('#timeline rect.ovl[data-label="SPEAKER_00"]').nth(1)  # 40.0-41.5 s
    bar.click()
    page.wait_for_timeout(200)
    t = page.evaluate("document.querySelector('#player').currentTime")
    assert 39.5 <= t <= 42.0, t


def test_a_recording_without_overlap_has_no_overlap_bars(served) -> None:
    server, page = served
    page.goto(server.url + f"r/{PANEL_ID}")
    assert page.locator("#timeline rect.bar").count() == 9
    assert page.locator("#timeline rect.ovl").count() == 0
    assert page.locator("#timeline").get_attribute("aria-label") == "Who speaks when"
    assert page.locator("#transcript .over").count() == 0


def test_rename_renames_the_speaker_in_the_turns_it_talks_over(served) -> None:
    server, page = served
    page.goto(server.url + f"r/{OVERLAP_ID}")
    page.locator('#speakers button.rename[data-label="SPEAKER_01"]').click()
    field = page.locator("#speakers form input")
    field.fill("Maya Brooks")
    field.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('#transcript article[data-turn=\"0\"] .over')"
        ".textContent === 'over Maya Brooks'"
    )
    # The overlap bars' names follow at once (they kept the old name until a reload) ...
    said = "Marc Lefèvre and Maya Brooks at once, 00:00:40–00:00:41"
    assert page.get_by_role("img", name=said).count() == 2
    assert page.locator("#timeline rect.ovl title", has_text=said).count() == 2
    # ... as the page served after the rename says them.
    page.reload()
    assert page.get_by_role("img", name=said).count() == 2
