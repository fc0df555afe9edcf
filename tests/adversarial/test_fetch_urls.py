"""Hostile URLs, served for real on loopback (real yt-dlp): error statuses, redirect loops,
stalls, HTML where media should be, bad schemes and malformed URLs (issue 16)."""

from __future__ import annotations

import http.server
import os
import re
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import LoopbackServer, run, shared_file
from harness import QUIET, assert_intact, assert_one_line_error, cli, good_archive

from confindex.store.ledger import Ledger
from confindex.store.workspace import Workspace

HITS: Counter[str] = Counter()


class _Hostile(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", ctype: str = "text/plain", **hdr: str):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in hdr.items():
            self.send_header(k.replace("_", "-"), v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        HITS[path] += 1
        m = re.match(r"/status/(\d+)/", path)
        if m:
            return self._send(int(m.group(1)), b"nope")
        if path.startswith("/loop/"):
            return self._send(302, Location=path)
        if path.startswith("/chain/"):
            n = int(path.split("/")[2])
            return self._send(302, Location=f"/chain/{n + 1}/x.mp3")
        if path.startswith("/to404/"):
            return self._send(301, Location="/status/404/x.mp3")
        if path.startswith("/html"):
            return self._send(200, b"<html><body><p>no media</p></body></html>", "text/html")
        if path.startswith("/empty/"):
            return self._send(200, b"", "audio/mpeg")
        if path.startswith("/garbage/"):
            return self._send(200, os.urandom(40_000), "audio/mpeg")
        if path.startswith("/stall/"):
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", "200000")
            self.end_headers()
            self.wfile.write(b"\xff\xfb" + bytes(2000))
            self.wfile.flush()
            time.sleep(8)  # longer than the client's socket timeout
            return None
        if path.startswith("/cut/"):  # promises 200 kB, sends 2 kB, hangs up
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", "200000")
            self.end_headers()
            self.wfile.write(bytes(2000))
            self.wfile.flush()
            self.close_connection = True
            return None
        if path.startswith("/good/"):
            data = (self.server.root / path.split("/")[-1]).read_bytes()  # type: ignore[attr-defined]
            return self._send(200, data, "audio/flac")
        return self._send(404)


@pytest.fixture(scope="module")
def www(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("www")


@pytest.fixture(scope="module")
def server(www: Path) -> Iterator[str]:
    srv = LoopbackServer(("127.0.0.1", 0), _Hostile)
    srv.daemon_threads = True
    srv.root = www  # type: ignore[attr-defined]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def adv(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return good_archive(tmp_path_factory.mktemp("adv-urls") / "ws")


SERVED = [
    ("/status/404/talk.mp3", "404"),
    ("/status/410/talk.mp3", "410"),
    ("/status/403/talk.mp3", "403"),
    ("/status/401/talk.mp3", "401"),
    ("/status/500/talk.mp3", "500"),
    ("/status/502/talk.mp3", "502"),
    ("/status/503/talk.mp3", "503"),
    ("/status/429/talk.mp3", "429"),
    ("/loop/talk.mp3", "redirect"),
    ("/chain/0/talk.mp3", "redirect"),
    ("/to404/talk.mp3", "404"),
    ("/html/talk.mp3", "Unsupported URL|media file"),
    ("/html/page", "Unsupported URL"),
    ("/empty/talk.mp3", "empty|no media|media file|no audio|download"),
    ("/garbage/talk.mp3", "media file|no audio"),
    ("/unknown/talk.mp3", "404"),
]


@pytest.mark.parametrize(("path", "says"), SERVED, ids=[s[0] for s in SERVED])
def test_hostile_servers_give_one_line(adv: Workspace, server: str, path: str, says: str) -> None:
    r = run("fetch", server + path, *QUIET, "--retries", "0", ws=adv)
    assert re.search(says, assert_one_line_error(r)), r.stderr
    assert_intact(adv)
    with Ledger.of(adv) as led:  # marked failed, not left queued
        row = next(x for x in led.rows() if x.key == server + path)
        assert row.stage == "failed"


def test_retries_follow_the_status_and_are_announced_with_their_delay(
    adv: Workspace, server: str
) -> None:
    """503 is retried (announced: `retry 1 of 1 in N s`); 404 costs one request."""
    HITS.clear()
    r = cli(
        "fetch", f"{server}/status/503/again.mp3", *QUIET, "--retries", "1", "-w", str(adv.root),
        env={"CONFINDEX_RETRY_WAIT": "1"},  # 5 s by default
    )  # fmt: skip
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 1 and lines[-1].startswith("Error: ") and "503" in lines[-1]
    assert len(lines) == 2 and re.search(r"HTTP 503; retry 1 of 1 in 1 s$", lines[0]), lines
    assert HITS["/status/503/again.mp3"] == 2
    r = cli("fetch", f"{server}/status/404/once.mp3", *QUIET, "--retries", "3", "-w", str(adv.root))
    assert_one_line_error(r)
    assert HITS["/status/404/once.mp3"] == 1


@pytest.mark.parametrize("path", ["/stall/talk.mp3", "/cut/talk.mp3"])
def test_a_stalled_or_cut_download_is_retried_aloud_then_given_up(
    adv: Workspace, server: str, path: str
) -> None:
    """A server that stops sending (or hangs up early): each retry is one announced line
    (`…; retry 1 of 1 in 1 s`), then one `Error:` line, well within a minute."""
    t0 = time.monotonic()
    r = cli(
        "fetch",
        server + path,
        *QUIET,
        "--retries",
        "0",
        "-w",
        str(adv.root),
        env={"CONFINDEX_SOCKET_TIMEOUT": "1"},
        timeout=120,
    )
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 1 and lines[-1].startswith("Error: "), r.stderr
    assert all(re.search(r"retry \d+ of \d+ in \d+ s$", ln) for ln in lines[:-1]), lines
    assert time.monotonic() - t0 < 60
    assert_intact(adv)


def test_a_download_is_drawn_on_a_terminal_and_a_stall_shows(adv: Workspace, server: str) -> None:
    """On a terminal, a default `fetch URL` (downloads pipelined beside transcription) draws
    the download: it once showed nothing at all while downloading, so a stalled server was
    silence until the socket timed out. The CLI runs on a real pseudo-terminal."""
    import pty
    import select
    import subprocess

    from harness import CLI

    master, slave = pty.openpty()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TERM": "xterm-256color", "COLUMNS": "120"}
    env.update(CONFINDEX_SOCKET_TIMEOUT="1")  # the server stalls for 8 s
    env.pop("NO_COLOR", None)
    args = ["-w", str(adv.root), "fetch", server + "/stall/drawn.mp3", "--retries", "0"]
    p = subprocess.Popen(
        [*CLI, *args], stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    out = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            if p.poll() is not None and not ready:
                break
        assert p.wait(timeout=60) == 1
    finally:
        os.close(master)
        if p.poll() is None:
            p.kill()
    shown = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", out).decode(errors="replace")
    assert "Traceback" not in shown
    # Drawn while the server stalls: before the timeout is reported (no wall-clock bound,
    # so a loaded machine cannot fail it).
    bar, error = shown.find("download   drawn"), shown.find("Error: ")
    assert 0 <= bar < error, shown[-600:]
    assert_intact(adv)


MALFORMED = [
    ("gopher://127.0.0.1/x.mp3", "unsupported URL scheme"),
    ("sftp://127.0.0.1/x.mp3", "unsupported URL scheme"),
    ("ws://127.0.0.1/x", "unsupported URL scheme"),
    ("wss://127.0.0.1/x", "unsupported URL scheme"),
    ("ssh://127.0.0.1/x", "unsupported URL scheme"),
    ("http://[::1/x", "not a valid URL"),
    ("http://", "not a valid URL"),
    ("http://:80/x.mp3", "not a valid URL"),
    ("http://127.0.0.1:99999/x.mp3", "not a valid URL"),
    ("http://127.0.0.1:-1/x.mp3", "not a valid URL"),
    ("http://127.0.0.1/a b.mp3", "not a valid URL"),
    ("http://127.0.0.1/a\nb.mp3", "not a valid URL"),
    ("http://127.0.0.1/\x1b]0;pwn\x07.mp3", "not a valid URL"),
    ("http://127.0.0.1/" + "a" * 10_000 + ".mp3", "."),
    ("http://127.0.0.1:1/refused.mp3", "refused"),
    ("ftp://127.0.0.1:1/refused.mp3", "."),
    ("javascript:alert(1)", "no such file"),
    ("data:audio/mp3;base64,AAAA", "no such file"),
]


@pytest.mark.parametrize(("url", "says"), MALFORMED, ids=[repr(m[0])[:32] for m in MALFORMED])
def test_malformed_urls_give_one_line(adv: Workspace, url: str, says: str) -> None:
    r = run("fetch", url, *QUIET, "--retries", "0", ws=adv)
    line = assert_one_line_error(r)
    assert re.search(says, line), line
    assert "\x1b" not in line and "\x07" not in line
    assert_intact(adv)


@pytest.mark.slow
def test_a_good_fetch_still_works_after_all_that(adv: Workspace, server: str, www: Path) -> None:
    jfk = shared_file("en/jfk.flac")
    shutil.copyfile(jfk, www / "jfk.flac")
    r = run("fetch", f"{server}/good/jfk.flac", *QUIET, "--json", ws=adv)
    assert r.exit_code == 0, r.output
    hits = run("search", "ask not what your country", "--json", ws=adv)
    assert hits.exit_code == 0 and '"total": 1' in hits.stdout
    assert_intact(adv)
