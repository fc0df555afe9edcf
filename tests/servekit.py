"""Helpers for the `confindex serve` tests: a workspace from the bundled sample's script (no
model needed: its words and times are the script's), and the real server as a subprocess."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import SAMPLES, assert_no_traceback

from confindex.store.store import Store
from confindex.store.transcript import Engine, Provenance, Recording, Transcript, Turn, Word, save
from confindex.store.workspace import Workspace

PANEL_ID = "panel-script"
XSS_ID = "hostile-title"
YOUTUBE_ID = "youtube-abc123XYZ_-"
XSS_TITLE = "<img src=x onerror=alert(1)>"
XSS_NAME = "<svg onload=alert(4)>Eve"
XSS_TEXT = '</script><script>alert(3)</script> <b>bold</b> & "quoted" words'
LABELS = {"Marc Lefèvre": "SPEAKER_00", "Maya Brooks": "SPEAKER_01"}


def script_words(text: str, start: float, end: float, speaker: str) -> list[Word]:
    """The line's words, each given a share of [start, end] by its length (as a reader would)."""
    tokens = text.split()
    total = sum(len(t) + 1 for t in tokens)
    out, pos = [], start
    for tok in tokens:
        dur = (end - start) * (len(tok) + 1) / total
        out.append(Word(round(pos, 3), round(pos + dur * 0.9, 3), " " + tok, 0.99, speaker))
        pos += dur
    return out


def panel_transcript() -> Transcript:
    script = json.loads((SAMPLES / "panel.json").read_text(encoding="utf-8"))
    turns = []
    for i, line in enumerate(script["lines"]):
        label = LABELS[line["speaker"]]
        words = script_words(line["text"], line["start"], line["end"], label)
        turns.append(
            Turn(i, line["start"], line["end"], label, line["text"], line["language"], words)
        )
    rec = Recording(
        id=PANEL_ID,
        title=script["title"],
        source=str((SAMPLES / "panel.ogg").resolve()),
        kind="file",
        channel="confindex samples",
        upload_date="2024-05-01",
        duration=script["duration"],
    )
    return Transcript(
        recording=rec,
        provenance=Provenance(
            confindex_version="test", engine=Engine("script", model="the sample's script")
        ),
        language="fr",
        duration=script["duration"],
        turns=turns,
    )


def hostile_transcript() -> Transcript:
    words = script_words(XSS_TEXT, 1.0, 6.0, "SPEAKER_00")
    turn = Turn(0, 1.0, 6.0, "SPEAKER_00", " ".join(w.text.strip() for w in words), "en", words)
    rec = Recording(
        id=XSS_ID,
        title=XSS_TITLE,
        source="https://example.org/talk.mp4",
        kind="url",
        channel="<script>alert(2)</script>",
    )
    return Transcript(
        recording=rec,
        provenance=Provenance(confindex_version="test"),
        language="en",
        duration=8.0,
        turns=[turn],
        speakers={"SPEAKER_00": XSS_NAME},
    )


def youtube_transcript() -> Transcript:
    words = script_words("A keynote about telescopes.", 10.0, 14.0, "SPEAKER_00")
    turn = Turn(0, 10.0, 14.0, "SPEAKER_00", "A keynote about telescopes.", "en", words)
    rec = Recording(
        id=YOUTUBE_ID,
        title="Keynote",
        source="https://www.youtube.com/watch?v=abc123XYZ_-",
        kind="youtube",
        extractor="youtube",
        extractor_id="abc123XYZ_-",
    )
    return Transcript(
        recording=rec,
        provenance=Provenance(confindex_version="test"),
        language="en",
        duration=20.0,
        turns=[turn],
    )


def make_workspace(root: Path) -> Workspace:
    ws = Workspace(root).ensure()
    save(ws, panel_transcript())
    save(ws, hostile_transcript())
    save(ws, youtube_transcript())
    Store(ws).rebuild_index()  # as `fetch` leaves it: serving never builds the index
    return ws


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    host: str
    port: int

    def request(
        self,
        path: str,
        *,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """A raw HTTP request (we choose every header, Host included)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            hdrs = {"Host": f"{self.host}:{self.port}", **(headers or {})}
            if body is not None:
                hdrs["Content-Length"] = str(len(body))
            for k, v in hdrs.items():
                conn.putheader(k, v)
            conn.endheaders(body)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def json(self, path: str) -> tuple[int, dict]:
        status, _h, body = self.request(path)
        return status, json.loads(body)

    def stop(self) -> tuple[int, str]:
        """Ctrl-C, as a user would; returns (exit code, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _out, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _out, err = self.proc.communicate()
        return self.proc.returncode, err


def start_server(ws: Workspace, *args: str, timeout: float = 60.0) -> Server:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "confindex", "serve", "-w", str(ws.root), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + timeout
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline() if proc.stdout else ""
        if line or proc.poll() is not None:
            break
    m = re.search(r"http://(127\.\d+\.\d+\.\d+):(\d+)/", line)
    if not m:
        proc.kill()
        _o, err = proc.communicate()
        raise AssertionError(f"serve did not start: {line!r} {err[-2000:]}")
    return Server(proc, m.group(0), m.group(1), int(m.group(2)))


def stop_server(server: Server) -> None:
    code, err = server.stop()
    assert_no_traceback(err, "confindex serve")
    assert code == 0, f"serve exited {code}: {err[-2000:]}"


CHROMIUM = os.environ.get("CONFINDEX_CHROMIUM") or "/usr/bin/chromium"


@contextlib.contextmanager
def launch_chromium() -> Iterator[Any]:
    """Debian's Chromium under Playwright (it cannot download its own here); skips, saying
    why, when either is missing."""
    import shutil

    import pytest

    path = os.environ.get("CONFINDEX_CHROMIUM") or shutil.which("chromium") or CHROMIUM
    if not Path(path).exists():
        pytest.skip(f"no Chromium at {path}: apt-get install chromium (.ci/run does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[dev]'")
    args = ["--autoplay-policy=no-user-gesture-required", "--mute-audio"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=args)
        try:
            yield b
        finally:
            b.close()


@contextlib.contextmanager
def watched_page(browser: Any) -> Iterator[Any]:
    """A page in its own 1200x900 context that keeps what went wrong: `page.dialogs` (each
    dismissed) and `page.errors` (page errors and console errors: a CSP violation by our own
    page shows there)."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("console", lambda m: m.type == "error" and pg.errors.append(m.text))
    try:
        yield pg
    finally:
        context.close()
