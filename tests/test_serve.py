"""`confindex serve` over HTTP: the real server (a subprocess on 127.0.0.1, port 0) against the
real CLI on the same workspace — the API answers what the CLI prints; media with Range; Host,
Origin and token checks; escaping; Ctrl-C."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import SAMPLES, run
from servekit import (
    PANEL_ID,
    XSS_ID,
    XSS_NAME,
    YOUTUBE_ID,
    Server,
    make_workspace,
    start_server,
    stop_server,
)

from confindex.store.store import Store
from confindex.store.workspace import Workspace
from confindex.web import security
from confindex.web.server import exposure_warning

QUERIES = [
    ("soyouz", ""),
    ("diplomatie spatiale", ""),
    ('"cold war"', ""),
    ("speaker:SPEAKER_01 apollo", ""),
    ("space OR orbit", "&limit=2&offset=1"),
    ("soyouz", "&context=1"),
    ("lang:en", "&group=1"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> tuple[Workspace, Server]:
    ws = make_workspace(tmp_path_factory.mktemp("serve") / "ws")
    server = start_server(ws)
    yield ws, server
    stop_server(server)


def cli_json(ws: Workspace, *args: str) -> dict:
    r = run("--json", *args, ws=ws)
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize(("q", "extra"), QUERIES)
def test_api_search_equals_cli_json(served, q: str, extra: str) -> None:
    ws, server = served
    status, api = server.json(f"/api/search?q={quote(q)}{extra}")
    assert status == 200
    args = ["search", q]
    for k, v in re.findall(r"&(\w+)=(\w+)", extra):
        args += ["--group"] if k == "group" else [f"--{k}", v]
    assert api == cli_json(ws, *args)
    assert api["hits"], f"{q!r} should find something in the sample"


def test_api_search_finds_the_right_second_and_speaker(served) -> None:
    _ws, server = served
    _s, api = server.json("/api/search?q=" + quote('"cold war"'))
    (hit,) = api["hits"]
    assert hit["speaker"] == "SPEAKER_01" and hit["recording_id"] == PANEL_ID
    assert 53 <= hit["time"] <= 57  # "Cold War" ends the line spoken from 52.2 s to 57.3 s


def test_bad_query_is_the_cli_hint_and_400(served) -> None:
    ws, server = served
    status, api = server.json("/api/search?q=" + quote('"unclosed'))
    assert status == 400
    r = run("search", '"unclosed', ws=ws)
    assert r.exit_code == 2
    assert r.stderr.strip() == f"Error: {api['error']}"
    status, _h, body = server.request("/search?q=" + quote('"unclosed'))
    assert status == 400
    assert "unbalanced quote" in body.decode()
    for bad in ("limit=0", "limit=x", "offset=-1", "context=99"):
        status, api = server.json(f"/api/search?q=soyouz&{bad}")
        assert status == 400 and api["error"], bad


def test_api_recording_and_cite_equal_the_cli(served) -> None:
    ws, server = served
    status, t = server.json(f"/api/recordings/{PANEL_ID}")
    assert status == 200
    assert t == json.loads((ws.transcripts / f"{PANEL_ID}.json").read_text(encoding="utf-8"))
    for style in ("apa", "chicago", "bibtex"):
        status, c = server.json(f"/api/cite?recording={PANEL_ID}&at=54.5&style={style}")
        assert status == 200
        r = run("cite", PANEL_ID, "--at", "54.5", "--style", style, ws=ws)
        assert c["text"] == r.stdout.rstrip("\n")
    assert "Cold War" in c["citation"]["quote"]
    assert server.json("/api/recordings/nope")[0] == 404
    assert server.json(f"/api/cite?recording={PANEL_ID}&at=999")[0] == 400


def test_media_range_206_and_only_media_a_transcript_names(served) -> None:
    _ws, server = served
    data = (SAMPLES / "panel.ogg").read_bytes()
    status, h, body = server.request(f"/media/{PANEL_ID}", headers={"Range": "bytes=100-199"})
    assert status == 206
    assert h["content-range"] == f"bytes 100-199/{len(data)}"
    assert body == data[100:200]
    assert h["content-type"] == "audio/ogg"
    status, h, body = server.request(f"/media/{PANEL_ID}")
    assert status == 200 and body == data and h["accept-ranges"] == "bytes"
    for path in (
        "/media/..%2F..%2Fetc%2Fpasswd",
        "/media/../../etc/passwd",
        "/media/%2Fetc%2Fpasswd",
        f"/media/{XSS_ID}",  # a URL source with no local copy
        "/media/no-such-recording",
        "/media/.hidden",
    ):
        status, _h, body = server.request(path)
        assert status == 404, path
        assert b"root:" not in body


def test_host_header_is_checked(served) -> None:
    _ws, server = served
    port = server.port
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.nip.io:{port}", ""):
        status, _h, body = server.request("/api/search?q=soyouz", headers={"Host": host})
        assert status == 421, host
        assert b"hits" not in body
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        assert server.request("/api/search?q=soyouz", headers={"Host": host})[0] == 200


def test_pages_escape_titles_names_and_words(served) -> None:
    _ws, server = served
    status, h, body = server.request(f"/r/{XSS_ID}")
    assert status == 200
    html = body.decode()
    assert "<img src=x" not in html and "<svg onload" not in html
    assert "<script>alert" not in html and "<b>bold" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "default-src 'none'" in h["content-security-policy"]
    assert "script-src 'self'" in h["content-security-policy"]
    status, _h, body = server.request("/search?q=bold")
    html = body.decode()
    assert status == 200 and "<img src=x" not in html and "&lt;b&gt;<mark>bold</mark>" in html
    # Only our own script file: no inline script anywhere.
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/app.js" defer>']


def test_recording_page_shows_turns_speakers_and_timeline(served) -> None:
    _ws, server = served
    status, _h, body = server.request(f"/r/{PANEL_ID}?t=53")
    assert status == 200
    html = body.decode()
    assert 'data-t="53.00"' in html
    assert f'src="/media/{PANEL_ID}#t=53.00"' in html
    assert html.count('class="turn ') == 9  # the sample's 9 lines
    assert html.count('class="bar spk') == 9  # one timeline bar per turn
    assert 'viewBox="0 0 57.83 20"' in html  # two lanes, x in seconds
    assert server.request("/r/nope")[0] == 404
    assert server.request("/r/..%2F..%2Fetc%2Fpasswd")[0] == 404


def _token(server: Server) -> str:
    _s, _h, body = server.request(f"/r/{PANEL_ID}")
    return re.search(r'name="confindex-token" content="([^"]+)"', body.decode()).group(1)


def test_rename_needs_same_origin_and_token_then_updates_index(tmp_path: Path, served) -> None:
    src_ws, _ = served
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(src_ws.root, ws.root)
    server = start_server(ws)
    try:
        token = _token(server)
        path = f"/api/recordings/{PANEL_ID}/speakers/SPEAKER_01"
        body = json.dumps({"name": "Maya Brooks"}).encode()
        origin = f"http://{server.host}:{server.port}"
        base = {"Content-Type": "application/json"}
        refused = [
            {},  # no Origin, no token
            {"Origin": "http://evil.example", "X-Confindex-Token": token},
            {"Origin": origin},  # no token
            {"Origin": origin, "X-Confindex-Token": "guess"},
            {"Origin": "null", "X-Confindex-Token": token},
        ]
        for extra in refused:
            status, _h, _b = server.request(
                path, method="POST", headers={**base, **extra}, body=body
            )
            assert status == 403, extra
        assert server.request(path)[0] == 405  # GET never changes anything
        t = json.loads((ws.transcripts / f"{PANEL_ID}.json").read_text(encoding="utf-8"))
        assert t["speakers"] == {}
        status, _h, b = server.request(
            path,
            method="POST",
            headers={**base, "Origin": origin, "X-Confindex-Token": token},
            body=body,
        )
        assert status == 200, b
        done = json.loads(b)
        assert (done["recording"], done["label"], done["name"]) == (
            PANEL_ID,
            "SPEAKER_01",
            "Maya Brooks",
        )
        # the speakers as `confindex speakers ID --json` lists them now
        assert done["speakers"] == cli_json(ws, "speakers", PANEL_ID)["speakers"]
        assert [s["name"] for s in done["speakers"] if s["label"] == "SPEAKER_01"] == [
            "Maya Brooks"
        ]
        t = json.loads((ws.transcripts / f"{PANEL_ID}.json").read_text(encoding="utf-8"))
        assert t["speakers"] == {"SPEAKER_01": "Maya Brooks"}
        _s, api = server.json("/api/search?q=" + quote('speaker:"Maya Brooks" war'))
        assert [h["speaker_name"] for h in api["hits"]] == ["Maya Brooks"]
        assert api == cli_json(ws, "search", 'speaker:"Maya Brooks" war')
    finally:
        stop_server(server)


def test_ctrl_c_stops_cleanly_and_port_in_use_is_one_line(served) -> None:
    ws, server = served
    r = run("serve", "--port", str(server.port), ws=ws)
    assert r.exit_code == 1
    assert r.stderr.strip().startswith("Error: port") and "--port" in r.stderr
    other = start_server(ws)
    code, err = other.stop()  # SIGINT, as Ctrl-C
    assert code == 0
    assert "Traceback" not in err and "stopped" in err


def test_another_loopback_host_answers_to_its_own_name(served) -> None:
    ws, _server = served
    server = start_server(ws, "--host", "127.0.0.2")
    try:
        assert server.host == "127.0.0.2"
        assert server.request("/api/search?q=soyouz")[0] == 200
        status, _h, _b = server.request("/", headers={"Host": f"evil.example:{server.port}"})
        assert status == 421
    finally:
        stop_server(server)


def test_security_helpers() -> None:
    hosts = security.allowed_hosts("127.0.0.1")
    assert security.host_allowed("127.0.0.1:8765", hosts)
    assert security.host_allowed("[::1]:8765", hosts)
    assert security.host_allowed("LOCALHOST", hosts)
    for bad in ("evil.com", "127.0.0.1.evil.com", "a@127.0.0.1", "127.0.0.1:x", "", None):
        assert not security.host_allowed(bad, hosts), bad
    assert security.host_allowed("10.0.0.5:80", security.allowed_hosts("10.0.0.5"))
    assert security.allowed_hosts("0.0.0.0") == security.LOOPBACK_NAMES
    assert security.origin_allowed("http://127.0.0.1:80", "127.0.0.1:80")
    assert not security.origin_allowed("http://127.0.0.1:81", "127.0.0.1:80")
    assert not security.origin_allowed("https://127.0.0.1:80", "127.0.0.1:80")
    assert not security.origin_allowed(None, "127.0.0.1:80")
    assert security.token_ok("abc", "abc") and not security.token_ok("", "abc")
    assert not security.is_loopback("0.0.0.0") and security.is_loopback("127.0.0.2")
    assert exposure_warning("127.0.0.1") is None and exposure_warning("[::1]") is None
    assert "anyone who can reach this machine" in exposure_warning("0.0.0.0")


def test_facets_count_the_same_hits_as_the_cli(served) -> None:
    ws, server = served
    q = "space OR soyouz OR bold"
    status, f = server.json("/api/facets?q=" + quote(q))
    assert status == 200
    hits = cli_json(ws, "search", q, "--limit", "500")["hits"]
    assert f["total"] == f["counted"] == len(hits)
    speakers = {r["value"]: r["hits"] for r in f["facets"]["speaker"]}
    # speaker:SPEAKER_00 matches that label everywhere, named elsewhere or not: 2 + Eve's 1.
    names = {h["speaker_name"] for h in hits}
    want = {v: sum(v in (h["speaker_name"], h["speaker"]) for h in hits) for v in names}
    assert speakers == want and speakers["SPEAKER_00"] == 3 and speakers[XSS_NAME] == 1
    recs = {r["filter"]: r["hits"] for r in f["facets"]["recording"]}
    assert set(recs) == {f"recording:{PANEL_ID}", f"recording:{XSS_ID}"}
    # Each facet's query narrows to exactly its hits.
    for row in f["facets"]["lang"] + f["facets"]["speaker"]:
        _s, api = server.json("/api/search?limit=500&q=" + quote(row["query"]))
        assert api["total"] == row["hits"], row


def test_youtube_recording_without_media_gets_the_embed_at_the_second(served) -> None:
    _ws, server = served
    status, h, body = server.request(f"/r/{YOUTUBE_ID}?t=12.7")
    html = body.decode()
    assert status == 200
    assert 'src="https://www.youtube-nocookie.com/embed/abc123XYZ_-?start=12"' in html
    assert "<audio" not in html and 'id="offline-note"' in html
    assert "frame-src https://www.youtube-nocookie.com" in h["content-security-policy"]
    assert server.request(f"/media/{YOUTUBE_ID}")[0] == 404


def test_speakers_and_status_pages(served) -> None:
    _ws, server = served
    status, _h, body = server.request("/speakers")
    assert status == 200
    html = body.decode()
    assert "&lt;svg onload=alert(4)&gt;Eve" in html and "<svg onload" not in html
    assert f'href="/r/{XSS_ID}"' in html
    status, _h, body = server.request("/status")
    assert status == 200 and "0 recordings in the job ledger" in body.decode()


def test_search_page_pages_through_hits(tmp_path: Path) -> None:
    from servekit import script_words

    from confindex.store.transcript import Provenance, Recording, Transcript, Turn, save
    from confindex.web.app import PAGE_SIZE

    ws = Workspace(tmp_path / "ws").ensure()
    turns = []
    for i in range(PAGE_SIZE + 7):
        text = f"Orbit number {i} was stable."
        words = script_words(text, i * 5.0, i * 5.0 + 4.0, "SPEAKER_00")
        turns.append(Turn(i, i * 5.0, i * 5.0 + 4.0, "SPEAKER_00", text, "en", words))
    rec = Recording(id="orbits", title="Orbits", source="https://example.org/o.mp4")
    save(ws, Transcript(rec, Provenance("test"), "en", 200.0, turns=turns))
    Store(ws).rebuild_index()
    server = start_server(ws)
    try:
        total = cli_json(ws, "search", "orbit")["total"]
        assert total == PAGE_SIZE + 7
        _s, _h, body = server.request("/search?q=orbit")
        html = body.decode()
        assert html.count('class="hit"') == PAGE_SIZE and 'rel="next"' in html
        assert 'rel="prev"' not in html
        _s, _h, body = server.request(f"/search?q=orbit&offset={PAGE_SIZE}")
        html = body.decode()
        assert html.count('class="hit"') == 7 and 'rel="prev"' in html
        assert f'start="{PAGE_SIZE + 1}"' in html and 'rel="next"' not in html
    finally:
        stop_server(server)
