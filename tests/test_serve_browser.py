"""`confindex serve` in a real browser: Debian's Chromium driven by Playwright against the real
server on 127.0.0.1 (Playwright cannot download its own browser here; `.ci/run` installs the
`chromium` package). Skips, saying why, when Chromium or Playwright is missing."""

from __future__ import annotations

import os
import re
import shutil
from urllib.parse import quote

import pytest
from conftest import REPO, run
from servekit import (
    PANEL_ID,
    XSS_ID,
    XSS_NAME,
    XSS_TITLE,
    make_workspace,
    start_server,
    stop_server,
    watched_page,
)

from confindex.store.workspace import Workspace

SCREENSHOT = REPO / "docs" / "serve-recording.png"


@pytest.fixture(scope="module")
def browser(chromium):
    return chromium  # conftest's, shared by the worker's browser tests


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("browser") / "ws")
    server = start_server(ws)
    yield ws, server
    stop_server(server)


@pytest.fixture
def page(browser):
    with watched_page(browser) as pg:
        yield pg


def ready(page) -> None:
    page.wait_for_function("() => document.querySelector('#player').readyState >= 1", timeout=15000)


def current_time(page) -> float:
    return page.evaluate("document.querySelector('#player').currentTime")


def test_search_open_hit_press_play_plays_at_the_hit(page, served) -> None:
    _ws, server = served
    media_status: list[int] = []
    page.on("response", lambda r: "/media/" in r.url and media_status.append(r.status))
    page.goto(server.url + "search?q=" + quote('"cold war"'))
    hits = page.locator("li.hit")
    assert hits.count() == 1
    hit_time = float(hits.first.get_attribute("data-t"))
    assert 53 <= hit_time <= 57
    assert "Cold War" in hits.first.locator("mark").inner_text()
    hits.first.locator("a.open").click()
    # The exact second of the first matched word (55.12, not 55), and the query to come back to.
    page.wait_for_url(re.compile(rf"/r/{PANEL_ID}\?t={hit_time:.2f}&q="))
    ready(page)
    page.keyboard.press("Space")  # press play
    page.wait_for_function("() => !document.querySelector('#player').paused", timeout=10000)
    page.wait_for_timeout(400)
    t = current_time(page)
    assert abs(t - hit_time) <= 1.0, (t, hit_time)
    # The word spoken at the hit is the highlighted one, and it is in view.
    now = page.locator("#transcript span.now")
    assert now.count() == 1
    assert now.inner_text().strip(".,").lower() in {"war", "cold", "the", "during"}
    assert 206 in media_status  # Chromium seeks with Range requests, answered 206
    assert not page.errors


def test_click_a_word_seeks_and_the_highlight_follows_playback(page, served) -> None:
    _ws, server = served
    page.goto(server.url + f"r/{PANEL_ID}")
    ready(page)
    word = page.locator("#transcript span", has_text="Apollo").nth(1)  # Maya's "Apollo capsule"
    word_t = float(word.get_attribute("data-t"))
    word.click()
    page.wait_for_function("() => !document.querySelector('#player').paused", timeout=10000)
    t = current_time(page)
    assert word_t - 0.05 <= t <= word_t + 1.0, (t, word_t)
    first_now = page.locator("#transcript span.now").get_attribute("data-t")
    page.wait_for_timeout(1500)
    # The highlighted word is the one being said now: the last word starting before currentTime.
    state = page.evaluate(
        """() => {
        const p = document.querySelector('#player');
        const t = p.currentTime;
        const spans = Array.from(document.querySelectorAll('#transcript p span[data-t]'));
        const said = spans.filter(s => parseFloat(s.dataset.t) <= t + 0.3);
        const now = document.querySelector('#transcript span.now');
        return {t, now: parseFloat(now.dataset.t), last: parseFloat(said[said.length-1].dataset.t),
                prev: said.length > 1 ? parseFloat(said[said.length-2].dataset.t) : 0};
    }"""
    )
    assert state["t"] > word_t + 1.0  # it played on
    assert state["now"] in (state["last"], state["prev"]), state  # at most one word behind
    assert float(first_now) != state["now"]  # and the highlight moved with it
    # The timeline's playhead follows too.
    x = float(page.locator("#playhead").get_attribute("x1"))
    assert abs(x - state["t"]) < 1.5


def test_timeline_click_seeks_to_that_second(page, served) -> None:
    _ws, server = served
    page.goto(server.url + f"r/{PANEL_ID}")
    ready(page)
    svg = page.locator("#timeline")
    box = svg.bounding_box()
    duration = float(page.locator("#rec").get_attribute("data-duration"))
    svg.click(position={"x": box["width"] * 0.5, "y": 5})
    page.wait_for_timeout(200)
    assert abs(current_time(page) - duration * 0.5) < 1.5
    # One lane per speaker, one bar per turn, each in its speaker's colour.
    assert page.locator("#timeline rect.bar.spk0").count() == 5
    assert page.locator("#timeline rect.bar.spk1").count() == 4


def test_rename_changes_the_page_and_a_later_search(page, served, tmp_path) -> None:
    src, _ = served
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(src.root, ws.root)
    server = start_server(ws)
    try:
        page.goto(server.url + f"r/{PANEL_ID}")
        page.locator('#speakers button.rename[data-label="SPEAKER_01"]').click()
        field = page.locator("#speakers form input")
        field.fill("Maya Brooks")
        field.press("Enter")
        page.wait_for_function(
            "() => document.querySelector('#speakers .name[data-label=SPEAKER_01]').textContent"
            " === 'Maya Brooks'"
        )
        names = page.locator('#transcript .who[data-label="SPEAKER_01"]').all_inner_texts()
        assert names == ["Maya Brooks"] * 4
        assert "Maya Brooks" in page.locator("#message").inner_text()
        page.goto(server.url + "search?q=" + quote('speaker:"Maya Brooks" apollo'))
        assert page.locator("li.hit .speaker").all_inner_texts() == ["Maya Brooks"]
        r = run("speakers", PANEL_ID, ws=ws)  # the CLI sees it too (the transcript changed)
        assert "Maya Brooks" in r.stdout
    finally:
        stop_server(server)


@pytest.mark.parametrize("style", ["apa", "chicago", "bibtex", "ris", "csl"])
def test_cite_button_equals_confindex_cite(page, served, style: str) -> None:
    ws, server = served
    page.goto(server.url + f"r/{PANEL_ID}")
    # Select "handshake in space" (Maya, 25.9 s) as a user would drag over it.
    page.evaluate(
        """() => {
        const spans = Array.from(document.querySelectorAll('#transcript p span'));
        const i = spans.findIndex(s => s.textContent === 'handshake');
        const r = document.createRange();
        r.setStartBefore(spans[i]); r.setEndAfter(spans[i + 2]);
        const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(r);
    }"""
    )
    page.select_option("#cite-style", style)
    page.click("#cite")
    out = page.locator("#citation")
    out.wait_for(state="visible")
    at = out.get_attribute("data-at")
    assert 25.9 <= float(at) <= 28
    # Issue 27: selected words are cited exactly, as `confindex cite --span` cites them.
    span = out.get_attribute("data-span")
    r = run("cite", PANEL_ID, "--span", span, "--style", style, ws=ws)
    assert r.exit_code == 0
    # The exact text, to the character (click.echo adds one newline).
    assert out.text_content() == r.stdout.removesuffix("\n")
    assert "handshake in space" in out.text_content()
    assert "That famous handshake" not in out.text_content()


def test_hostile_title_and_words_render_as_text_and_run_no_script(page, served) -> None:
    _ws, server = served
    page.goto(server.url + f"r/{XSS_ID}")
    assert page.locator("#title").inner_text() == XSS_TITLE
    assert page.title().startswith(XSS_TITLE)
    assert page.locator('#speakers .name[data-label="SPEAKER_00"]').inner_text() == XSS_NAME
    assert "</script><script>alert(3)</script>" in page.locator("#transcript").inner_text()
    page.goto(server.url + "search?q=bold")
    assert page.locator("li.hit .title").inner_text() == XSS_TITLE
    assert page.locator("li.hit mark").inner_text() == "bold"
    page.wait_for_timeout(300)
    for where in ("r/" + XSS_ID, "search?q=bold"):
        page.goto(server.url + where)
        assert (
            page.evaluate(
                "document.querySelectorAll('img, svg[onload], b, script:not([src])').length"
            )
            == 0
        )
    assert page.dialogs == []  # no alert() ran
    assert not page.errors


def test_media_traversal_is_404_in_the_browser(page, served) -> None:
    _ws, server = served
    resp = page.goto(server.url + "media/..%2F..%2Fetc%2Fpasswd")
    assert resp.status == 404
    assert "root:" not in page.content()
    resp = page.goto(server.url + "r/..%2F..%2Fetc%2Fpasswd")
    assert resp.status == 404


def test_search_keyboard_j_k_enter(page, served) -> None:
    _ws, server = served
    page.goto(server.url + "search?q=soyouz")
    assert page.locator("li.hit").count() == 2
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    focused = page.evaluate("document.activeElement.dataset.t")
    assert focused == page.locator("li.hit").first.get_attribute("data-t")
    page.keyboard.press("j")
    second = page.locator("li.hit").nth(1)
    href = second.locator("a.open").get_attribute("href")
    page.keyboard.press("Enter")
    page.wait_for_url("**" + href)


def test_facets_narrow_the_search(page, served) -> None:
    _ws, server = served
    page.goto(server.url + "search?q=" + quote("space OR soyouz OR bold"))
    speaker = page.locator('#facets section[data-field="speaker"] li', has_text="SPEAKER_01")
    count = int(speaker.locator(".n").inner_text())
    # The hostile title is a facet value too, shown as text.
    assert XSS_TITLE in page.locator('#facets section[data-field="recording"]').inner_text()
    speaker.locator("a").click()
    page.wait_for_url("**speaker%3ASPEAKER_01**")
    assert page.locator("li.hit").count() == count
    assert set(page.locator("li.hit .speaker").all_inner_texts()) == {"SPEAKER_01"}
    assert page.dialogs == []


def test_space_plays_a_hit_in_place_from_its_first_matched_word(page, served) -> None:
    _ws, server = served
    page.goto(server.url + "search?q=" + quote("handshake"))
    hit = page.locator("li.hit").first
    t = float(hit.get_attribute("data-t"))
    page.keyboard.press("j")  # focus the first hit
    page.keyboard.press("Space")
    page.wait_for_function("() => !document.querySelector('#player').paused", timeout=10000)
    page.wait_for_timeout(300)
    assert abs(current_time(page) - t) <= 1.0
    assert "playing" in hit.get_attribute("class")
    assert page.url.endswith("q=handshake")  # it played here, without leaving the page
    page.keyboard.press("Space")
    page.wait_for_function("() => document.querySelector('#player').paused")


def test_malformed_query_shows_the_cli_hint(page, served) -> None:
    ws, server = served
    page.goto(server.url + "search?q=" + quote("(soyouz"))
    r = run("search", "(soyouz", ws=ws)
    assert r.exit_code == 2
    assert "Error: " + page.locator("#error").inner_text() == r.stderr.strip()


def rename_in_page(page, label: str, name: str) -> None:
    page.locator(f'#speakers button.rename[data-label="{label}"]').click()
    field = page.locator("#speakers form input")
    field.fill(name)
    field.press("Enter")
    page.locator(f'#speakers .name[data-label="{label}"]', has_text=name).wait_for()


def test_screenshot_of_the_recording_page(page, served, tmp_path) -> None:
    """The README's screenshot: made here, by this browser, on the bundled sample, after naming
    both speakers in the page. CONFINDEX_UPDATE_SCREENSHOT=1 writes it to docs/."""
    src, _ = served
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(src.root, ws.root)
    server = start_server(ws)
    try:
        page.goto(server.url + f"r/{PANEL_ID}?t=26")
        ready(page)
        rename_in_page(page, "SPEAKER_00", "Marc Lefèvre")
        rename_in_page(page, "SPEAKER_01", "Maya Brooks")
        page.locator("#transcript span[data-t]", has_text="handshake").click()
        page.wait_for_function(
            "() => !document.querySelector('#player').paused"
            " && document.querySelector('#transcript span.now')",
            timeout=10000,
        )
        page.keyboard.press("Space")  # pause: a still frame, the spoken word highlighted
        assert page.locator("#transcript span.now").count() == 1
        page.click("#cite")
        page.locator("#citation").wait_for(state="visible")
        assert "Brooks, M." in page.locator("#citation").inner_text()
        out = tmp_path / "serve-recording.png"
        page.screenshot(path=str(out), full_page=False)
    finally:
        stop_server(server)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    if os.environ.get("CONFINDEX_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        SCREENSHOT.write_bytes(data)
