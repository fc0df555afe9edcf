"""The workbench as a library (issue 31) in a real browser: Debian's Chromium driven by
Playwright against the real `confindex serve` on 127.0.0.1. The library page, a hit opened in
context, zero-hit suggestions (web, CLI and JSON), and a 390-px phone viewport.

The archive: the bundled sample's three recordings (servekit) and 60 synthetic ones whose
facts (channel, date, duration, speakers, languages, flags) vary, enough for two pages."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest
from conftest import run
from servekit import PANEL_ID, make_workspace, script_words, start_server
from servekit import stop_server as stop

from confindex.api import Archive
from confindex.store.transcript import Flag, Provenance, Recording, Transcript, Turn, load, save
from confindex.store.workspace import Workspace
from confindex.timefmt import hms
from confindex.web.library import PAGE_SIZE

CHANNELS = ("ESA", "CNES", "NASA")
PEOPLE = ("Ada Lovelace", "Hedy Lamarr", "Katherine Johnson")


def synthetic(i: int) -> Transcript:
    """Recording i: its facts follow from i (so the test can compute what each view shows)."""
    lang = "fr" if i % 3 == 0 else "en"
    text = f"Talk number {i} about orbital mechanics and launch windows."
    words = script_words(text, 1.0, 6.0, "SPEAKER_00")
    turns = [Turn(0, 1.0, 6.0, "SPEAKER_00", text, lang, words)]
    if i % 2:
        w2 = script_words("A question from the floor.", 7.0, 9.0, "SPEAKER_01")
        turns.append(Turn(1, 7.0, 9.0, "SPEAKER_01", "A question from the floor.", "en", w2))
    flags = [Flag("loop", 1.0, 6.0, 0.9, "repeats")] * (i % 7 == 0) + [
        Flag("lowconf", 7.0, 9.0, 0.7, "low confidence")
    ] * (i % 14 == 0)
    if i == 21:  # speech the decoder heard but wrote nothing for, after the last turn
        flags.append(Flag("missed", 9.5, 12.0, 0.62, "2.5 s of speech to the decoder's VAD"))
    rec = Recording(
        id=f"talk-{i:03d}",
        title=f"Synthetic talk {i:03d}",
        source=f"https://example.org/talk-{i:03d}.mp4",
        channel=CHANNELS[i % 3],
        upload_date=f"{2019 + i % 6}-{1 + i % 12:02d}-{1 + i % 28:02d}",
        duration=600.0 + 37 * i,
    )
    return Transcript(
        recording=rec,
        provenance=Provenance(confindex_version="test"),
        language=lang,
        duration=600.0 + 37 * i,
        turns=turns,
        speakers={"SPEAKER_00": PEOPLE[i % 3]},
        flags=flags,
    )


SYNTHETIC = [synthetic(i) for i in range(60)]
TOTAL = len(SYNTHETIC) + 3


@pytest.fixture(scope="module")
def browser(chromium):
    return chromium  # conftest's, shared by the worker's browser tests


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("library") / "ws")
    for t in SYNTHETIC:
        save(ws, t)
    server = start_server(ws)
    yield ws, server
    stop(server)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    pg.errors = []  # type: ignore[attr-defined]
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))  # type: ignore[attr-defined]
    pg.on("console", lambda m: m.type == "error" and pg.errors.append(m.text))  # type: ignore[attr-defined]
    yield pg
    context.close()


def row_ids(page) -> list[str]:
    return page.locator("#library tr.recording").evaluate_all(
        "rows => rows.map(r => r.dataset.recording)"
    )


def test_library_lists_recordings_with_their_facts(page, served) -> None:
    _ws, server = served
    page.goto(server.url)
    assert page.locator("#count").inner_text() == f"{TOTAL} recordings (showing 1–{PAGE_SIZE})"
    ids = row_ids(page)
    assert len(ids) == PAGE_SIZE
    # Newest first: the dates shown never increase down the page.
    dates = page.locator("#library td.date").all_inner_texts()
    dated = [d for d in dates if d != "no date"]
    assert dated == sorted(dated, reverse=True) and dated
    # The sample panel's facts, as `confindex list` gives them.
    panel = page.locator(f'tr[data-recording="{PANEL_ID}"]')
    assert panel.locator("td.title a").inner_text() == "Space diplomacy panel excerpt (synthetic)"
    assert panel.locator("td.date").inner_text() == "2024-05-01"
    assert panel.locator("td.duration").inner_text() == "00:00:57"
    assert panel.locator("td.speakers").inner_text() == "SPEAKER_00, SPEAKER_01"
    assert panel.locator("td.langs").inner_text() == "en, fr"
    assert panel.locator("td.flags").inner_text() == "0"
    assert panel.locator("td.verified").inner_text() == "0%"
    t14 = page.locator('tr[data-recording="talk-014"]')
    if t14.count():  # 2021-03-15: on page 1 when dated late enough
        assert t14.locator("td.flags").inner_text() == "⚑ 2"
    # Page 2 holds the rest, and nothing twice.
    page.locator("#pager a[rel=next]").click()
    page.wait_for_url("**page=2")
    rest = row_ids(page)
    assert len(rest) == TOTAL - PAGE_SIZE and not set(rest) & set(ids)
    assert page.locator("#count").inner_text() == f"{TOTAL} recordings (showing 51–{TOTAL})"
    assert not page.errors


def test_library_sorts_and_filters(page, served) -> None:
    _ws, server = served
    page.goto(server.url)
    page.locator('th.duration a[data-sort="duration"]').click()
    page.wait_for_url("**sort=duration")
    longest = max(SYNTHETIC, key=lambda t: t.duration)
    assert row_ids(page)[0] == longest.id
    page.locator('th.duration a[data-sort="duration"]').click()  # again: shortest first
    page.wait_for_url("**order=asc**")
    assert row_ids(page)[0] == "hostile-title"  # 8 s
    # Channel CNES and "has flags": exactly the synthetic talks that are both.
    page.locator('#filters select[name="channel"]').select_option("CNES")
    page.locator('#filters input[name="flagged"]').check()
    page.locator("#filters button[type=submit]").click()
    page.wait_for_url("**flagged=1**")
    want = [t for t in SYNTHETIC if t.recording.channel == "CNES" and t.flags]
    got = row_ids(page)
    assert sorted(got) == sorted(t.id for t in want) and got
    assert got == [t.id for t in sorted(want, key=lambda t: t.duration)]  # the sort is kept
    assert page.locator("#count").inner_text().startswith(f"{len(want)} recording")
    assert all(
        int(x) > 0
        for x in page.locator("td.flags").evaluate_all("tds => tds.map(td => td.dataset.flags)")
    )
    # Language and a date range.
    page.goto(server.url + "?lang=fr&from=2022&to=2023-06")
    want = [
        t.id
        for t in SYNTHETIC
        if t.language == "fr" and "2022" <= t.recording.upload_date[:7] <= "2023-06"
    ]
    assert sorted(row_ids(page)) == sorted(want) and want
    page.locator("#clear").click()
    page.wait_for_url(server.url)
    assert page.locator("#count").inner_text().startswith(f"{TOTAL} recordings")


def test_speakers_page_links_each_person_to_their_recordings(page, served) -> None:
    _ws, server = served
    page.goto(server.url + "speakers")
    person = page.locator('tr.person[data-name="Hedy Lamarr"]')
    theirs = sorted(t.id for t in SYNTHETIC if t.speakers["SPEAKER_00"] == "Hedy Lamarr")
    listed = person.locator("a.recording").evaluate_all("as => as.map(a => a.dataset.recording)")
    assert sorted(listed) == theirs
    assert person.locator("a.recording").first.inner_text().startswith("Synthetic talk")
    person.locator("a.library-link").click()
    page.wait_for_url("**speaker=Hedy+Lamarr")
    assert sorted(row_ids(page)) == theirs


def test_hit_opens_in_context_exact_second_matches_next_previous_back(page, served) -> None:
    ws, server = served
    result = Archive(ws).search("spatiale", limit=20)
    times = sorted(m.time for _h, m in result.mentions)
    assert len(times) >= 3  # "diplomatie spatiale" twice, "Station spatiale" once
    page.goto(server.url + "search?q=spatiale")
    first = page.locator("li.hit").first
    hit_t = float(first.get_attribute("data-t"))
    first.locator("a.open").click()
    page.wait_for_url(re.compile(rf"/r/{PANEL_ID}\?t={hit_t:.2f}&q=spatiale$"))
    marks = page.locator("#transcript span.match")
    assert marks.count() == len(times)
    assert {m.lower().strip(".,") for m in marks.all_inner_texts()} == {"spatiale"}
    current = page.locator("#transcript span.match.current")
    assert float(current.get_attribute("data-t")) == pytest.approx(hit_t, abs=0.01)
    k = times.index(min(times, key=lambda x: abs(x - hit_t)))
    assert page.locator("#match-pos").inner_text() == f"match {k + 1} of {len(times)}"
    page.keyboard.press("n")
    want = times[(k + 1) % len(times)]
    assert float(current.get_attribute("data-t")) == pytest.approx(want, abs=0.01)
    assert f"t={want:.2f}" in page.url
    page.locator("#next-match").click()
    page.locator("#prev-match").click()
    assert float(current.get_attribute("data-t")) == pytest.approx(want, abs=0.01)
    page.keyboard.press("p")
    assert float(current.get_attribute("data-t")) == pytest.approx(times[k], abs=0.01)
    page.locator("#back").click()
    page.wait_for_url("**/search?q=spatiale")
    assert page.locator("li.hit").count() == result.total
    # The results page is kept too.
    page.goto(server.url + f"r/{PANEL_ID}?t={hit_t:.2f}&q=spatiale&offset=20")
    assert page.locator("#back").get_attribute("href") == "/search?q=spatiale&offset=20"
    assert not page.errors


def test_also_at_mentions_play_with_a_visible_playing_state(page, served) -> None:
    _ws, server = served
    page.goto(server.url + "search?q=spatiale")
    card = page.locator("li.hit", has=page.locator("button.play-at")).first
    also = card.locator("button.play-at").first
    t = float(also.get_attribute("data-t"))
    assert t > float(card.get_attribute("data-t"))  # a later mention of the same turn
    also.click()
    page.wait_for_function("() => !document.querySelector('#player').paused", timeout=10000)
    page.wait_for_timeout(300)
    now = page.evaluate("document.querySelector('#player').currentTime")
    assert t - 0.1 <= now <= t + 1.5, (now, t)
    page.wait_for_function(
        "() => document.querySelector('#now-playing').textContent.startsWith('▶ Playing')"
    )
    assert "playing" in card.get_attribute("class")
    assert also.get_attribute("aria-pressed") == "true" and also.inner_text().startswith("❚❚")
    assert page.locator("#now-playing").is_visible()
    also.click()  # pressed again: paused, and the page says so (on the pause event)
    page.wait_for_function("() => document.querySelector('#player').paused")
    page.wait_for_function(
        "() => document.querySelector('#now-playing').textContent.startsWith('❚❚ Paused')"
    )
    assert "playing" not in (card.get_attribute("class") or "")


def test_zero_hits_message_and_suggestion_that_finds_hits(page, served) -> None:
    _ws, server = served
    page.goto(server.url + "search?q=soiouz")
    assert page.locator("#none").inner_text() == "No hits for soiouz."
    first = page.locator("#suggestions a.suggestion").first
    assert first.inner_text() == "soyouz"
    first.click()
    page.wait_for_url("**/search?q=soyouz")
    assert page.locator("li.hit").count() == 2
    assert {m.lower() for m in page.locator("li.hit mark").all_inner_texts()} == {"soyouz"}
    # A filter that empties the results: the same words without it.
    page.goto(server.url + "search?q=" + quote("apollo lang:de"))
    sugg = page.locator("#suggestions li", has_text="without lang:de")
    assert sugg.locator("a").inner_text() == "apollo"
    sugg.locator("a").click()
    assert page.locator("li.hit").count() == 2
    assert not page.errors


def test_zero_hits_suggestions_in_cli_and_json(served) -> None:
    ws, _server = served
    r = run("search", "soiouz", ws=ws)
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[:2] == ["No hits.", "Try:"]
    assert lines[2].startswith("  confindex search soyouz    (soyouz is said in 2 turns: 2 hits)")
    r = run("--json", "search", "soiouz", ws=ws)
    data = json.loads(r.stdout)
    assert data["total"] == 0
    best = data["suggestions"][0]
    assert best == {"query": "soyouz", "kind": "near", "reason": best["reason"], "hits": 2}
    assert any(s["query"] == "soiouz~2" for s in data["suggestions"])
    assert json.loads(run("--json", "search", best["query"], ws=ws).stdout)["total"] == 2
    r = run("search", "soiouz", "--group", "--format", "md", ws=ws)  # README's example
    assert "- soyouz — soyouz is said in 2 turns, 2 hits" in r.stdout
    # A query with hits carries an empty list (one JSON shape for scripts).
    assert json.loads(run("--json", "search", "soyouz", ws=ws).stdout)["suggestions"] == []


@pytest.mark.parametrize(
    "path", ["", "?sort=title", "search?q=spatiale", f"r/{PANEL_ID}?t=54.00&q=war", "speakers"]
)
def test_pages_fit_a_390px_phone_without_horizontal_scrolling(browser, served, path) -> None:
    _ws, server = served
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        pg = context.new_page()
        pg.goto(server.url + path)
        width = pg.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path or '/'} is {width} px wide"
    finally:
        context.close()


def test_flags_are_shown_where_you_read(page, served) -> None:
    _ws, server = served
    t = next(x for x in SYNTHETIC if x.id == "talk-014")
    page.goto(server.url + "r/talk-014")
    items = page.locator("#flags li.flagitem")
    assert items.evaluate_all("lis => lis.map(li => li.dataset.kind)") == ["loop", "lowconf"]
    assert "“repeats”" not in items.first.inner_text() and "repeats" in items.first.inner_text()
    # The flagged words are marked in the transcript, each saying why.
    flagged = page.locator("#transcript span.flagged")
    words = [w for turn in t.turns for w in turn.words]
    assert flagged.count() == len(words)  # loop over turn 0's words, lowconf over turn 1's
    assert flagged.first.get_attribute("title") == "⚑ loop: repeats"
    # … and on the timeline.
    zones = page.locator("svg.timeline rect.flagzone")
    assert zones.evaluate_all("rs => rs.map(r => r.dataset.kind)") == ["loop", "lowconf"]
    assert float(zones.nth(1).get_attribute("x")) == 7.0
    # A missed stretch has no words: a note where it falls.
    page.goto(server.url + "r/talk-021")
    note = page.locator("#transcript p.flagnote")
    assert note.inner_text().startswith("⚑ missed [0:09–0:12]")
    form = page.locator("#flags li.flagitem[data-kind=missed] .redecode-form")
    assert (form.get_attribute("data-start"), form.get_attribute("data-end")) == ("9.00", "12.50")
    assert not page.errors


def test_decode_again_refuses_requests_not_from_the_page(served) -> None:
    _ws, server = served
    body = b'{"start": 1, "end": 5}'
    status, _h, data = server.request("/api/recordings/talk-014/redecode", method="POST", body=body)
    assert status == 403 and b"not from this server's own page" in data


@pytest.mark.slow
def test_decode_again_changes_the_flagged_passage(browser, tmp_path) -> None:
    """The real span re-decode (Whisper base on the sample's audio) from the page's form."""
    ws = make_workspace(tmp_path / "ws")
    t = load(ws, PANEL_ID)
    t.flags = [Flag("lowconf", 18.0, 24.9, 0.8, "5 words with mean probability 0.20")]
    save(ws, t)
    before = next(x.text for x in t.turns if x.start == 17.99)
    server = start_server(ws)
    try:
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        pg = context.new_page()
        pg.goto(server.url + f"r/{PANEL_ID}")
        item = pg.locator("#flags li.flagitem")
        assert item.locator(".kind").inner_text() == "⚑ lowconf"
        item.locator("summary").click()
        item.locator("input[name=hotwords]").fill("Jean-Loup Chrétien, Soyouz")
        item.locator("input[name=language]").fill("fr")
        item.locator("button[type=submit]").click()
        out = item.locator("output.redecoded.done")
        out.wait_for(timeout=240_000)
        now = out.locator("q").inner_text()
        assert now and now != before
        _status, data = server.json(f"/api/recordings/{PANEL_ID}")
        said = " ".join(
            w["text"].strip()
            for turn in data["turns"]
            for w in turn["words"]
            if 17.5 <= (w["start"] + w["end"]) / 2 <= 25.4
        )
        assert said == now
        (span,) = data["provenance"]["options"]["spans"]
        assert span["options"]["hotwords"] == "Jean-Loup Chrétien, Soyouz"
        assert span["start"] == 17.5 and span["end"] == 25.4
        pg.locator("output.redecoded a").click()
        pg.wait_for_url("**?t=17.50")
        assert now.split()[-1] in pg.locator("#transcript").inner_text()
        context.close()
    finally:
        stop(server)


@pytest.mark.slow
def test_library_lists_real_recordings_with_their_facts(browser, tmp_path) -> None:
    """Two shared real recordings fetched by the real CLI (Whisper base, diarization): the
    library shows each one's duration, speakers, language and flag count as transcribed."""
    from conftest import shared_file

    ws = Workspace(tmp_path / "ws")
    for rel in ("en/jfk.flac", "diar/pyannote_sample.wav"):
        r = run("fetch", str(shared_file(rel)), ws=ws)
        assert r.exit_code == 0, r.stderr
    server = start_server(ws)
    try:
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        pg = context.new_page()
        pg.goto(server.url)
        assert pg.locator("#count").inner_text() == "2 recordings (showing 1–2)"
        for rid in ws.transcript_ids():
            t = load(ws, rid)
            row = pg.locator(f'tr[data-recording="{rid}"]')
            assert row.locator("td.duration").inner_text() == hms(t.duration)
            names = sorted({t.speaker_name(x.speaker) for x in t.turns if x.speaker})
            assert row.locator("td.speakers").inner_text() == ", ".join(names)
            assert row.locator("td.langs").inner_text() == "en"
            assert int(row.locator("td.flags").get_attribute("data-flags")) == len(t.flags)
        jfk = next(r for r in ws.transcript_ids() if r.startswith("jfk"))
        pg.locator('th.duration a[data-sort="duration"]').click()  # longest first
        assert pg.locator("#library tr.recording").last.get_attribute("data-recording") == jfk
        context.close()
    finally:
        stop(server)
