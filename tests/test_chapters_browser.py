"""Chapters on the recording page, in a real browser (Debian's Chromium through Playwright, the
real server on 127.0.0.1): listed beside the transcript and on the timeline, each a link to its
second that seeks the player. Skips, saying why, when Chromium or Playwright is missing."""

from __future__ import annotations

import pytest
from servekit import PANEL_ID, panel_transcript, start_server, stop_server

from confindex.search import topics
from confindex.store.transcript import save
from confindex.store.workspace import Workspace


@pytest.fixture(scope="module")
def served(tmp_path_factory, chromium):
    ws = Workspace(tmp_path_factory.mktemp("chapters-web") / "ws").ensure()
    t = panel_transcript()
    topics.refresh(t)  # what publish does
    assert len(t.chapters) >= 2
    save(ws, t)
    server = start_server(ws)
    try:
        yield t, server, chromium
    finally:
        stop_server(server)


def test_chapters_are_listed_and_seek_the_player(served) -> None:
    t, server, browser = served
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(server.url + f"r/{PANEL_ID}")
    items = page.locator("#chapters li.chapter")
    assert items.count() == len(t.chapters)
    assert [x.inner_text() for x in page.locator("#chapters .title").all()] == [
        c.title for c in t.chapters
    ]
    assert t.chapters[1].keywords[0] in items.nth(1).inner_text()
    # Beside the transcript: side by side, not stacked.
    toc = page.locator("#chapters").bounding_box()
    box = page.locator("#transcript").bounding_box()
    assert toc["x"] > box["x"] + box["width"] - 5 or box["x"] > toc["x"] + toc["width"] - 5
    # On the timeline: one segment per chapter, as wide as the chapter.
    segs = page.locator("#chapter-strip rect")
    assert segs.count() == len(t.chapters)
    strip = page.locator("#chapter-strip").bounding_box()
    second = segs.nth(1).bounding_box()
    at = (second["x"] - strip["x"]) / strip["width"]
    assert abs(at - t.chapters[1].start / t.duration) < 0.01
    # Each is a citable link to its second; a click seeks the player there.
    link = items.nth(2).locator("a")
    start = t.chapters[2].start
    assert link.get_attribute("href") == f"/r/{PANEL_ID}?t={start:.2f}"
    page.wait_for_function("() => document.querySelector('#player').readyState >= 1")
    link.click()
    page.wait_for_function("() => !document.querySelector('#player').paused", timeout=10000)
    now = page.evaluate("document.querySelector('#player').currentTime")
    assert start - 0.05 <= now <= start + 1.5, (now, start)
    assert page.url.endswith(f"?t={start:.2f}")
    # The strip's segment seeks too.
    page.locator("#chapter-strip a").nth(1).click()
    page.wait_for_timeout(300)
    now = page.evaluate("document.querySelector('#player').currentTime")
    assert t.chapters[1].start - 0.05 <= now <= t.chapters[1].start + 1.5
    # Opening the link itself (a citation) lands on that second.
    page.goto(server.url + f"r/{PANEL_ID}?t={start:.2f}")
    page.wait_for_function("() => document.querySelector('#player').readyState >= 1")
    page.wait_for_function(
        f"() => Math.abs(document.querySelector('#player').currentTime - {start}) < 0.5"
    )
    assert not errors
    page.close()
