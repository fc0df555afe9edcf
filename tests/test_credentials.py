"""Credentials in a URL never reach the archive (issue 30, D2): `http://alice:s3cret@host/x`
is downloaded with HTTP basic auth by real yt-dlp over loopback, and the password is in no
file of the workspace, no output of fetch, list, search, cite or export. `--username` /
`--password` and `--netrc` log in the same way; nothing is stored."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import LoopbackServer, run, shared_file

from confindex.run.credentials import redact_url, strip_credentials
from confindex.store.workspace import Workspace

SECRET = "s3cretPW"


def test_strip_credentials_and_redact() -> None:
    assert strip_credentials(f"http://alice:{SECRET}@example.org:8080/a/t.wav?x=1") == (
        "http://example.org:8080/a/t.wav?x=1"
    )
    assert strip_credentials("https://example.org/talk.wav") == "https://example.org/talk.wav"
    assert strip_credentials("/local/file@2x.wav") == "/local/file@2x.wav"
    assert redact_url(f"cannot download http://alice:{SECRET}@h/x: 401") == (
        "cannot download http://***@h/x: 401"
    )


class _AuthHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization")
        want = "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()
        if auth != want:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="archive"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            super().do_GET()

    do_HEAD = do_GET


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(shared_file("en/jfk.flac"), root / "talk.flac")

    def make(*a, **kw):  # type: ignore[no-untyped-def]
        return _AuthHandler(*a, directory=str(root), **kw)

    server = LoopbackServer(("127.0.0.1", 0), make)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _everything(ws: Workspace) -> bytes:
    return b"".join(p.read_bytes() for p in ws.root.rglob("*") if p.is_file())


QUICK = ["--no-diarize", "--beam-size", "1", "--json"]


@pytest.mark.slow
def test_a_password_in_the_url_downloads_and_is_stored_nowhere(
    auth_server: str, tmp_path: Path
) -> None:
    ws = Workspace(tmp_path / "ws")
    url = f"http://alice:{SECRET}@{auth_server}/talk.flac"
    r = run("fetch", url, *QUICK, ws=ws)
    assert r.exit_code == 0, r.output
    assert SECRET not in r.output and SECRET not in r.stderr
    rid = json.loads(r.stdout)["recordings"][0]["recording_id"]
    outputs = [
        run("list", "--json", ws=ws),
        run("search", "fellow americans", "--json", ws=ws),
        run("search", "fellow americans", ws=ws),
        *(run("cite", rid, "--at", "5", "--style", s, ws=ws) for s in ("apa", "chicago", "bibtex")),
        run("show", rid, ws=ws),
    ]
    for out in outputs:
        assert out.exit_code == 0, out.output
        assert SECRET not in out.output and "alice" not in out.output, out.output
    assert "fellow" in outputs[2].output.lower()
    # Transcript, exports, ledger, index, history: the password is in no file.
    data = _everything(ws)
    assert SECRET.encode() not in data and b"alice:" not in data
    assert f"http://{auth_server}/talk.flac".encode() in data  # the URL is kept, without it


@pytest.mark.slow
def test_username_and_password_options_log_in_and_without_them_it_is_a_401(
    auth_server: str, tmp_path: Path
) -> None:
    ws = Workspace(tmp_path / "ws")
    url = f"http://{auth_server}/talk.flac"
    r = run("fetch", url, *QUICK, ws=ws)
    assert r.exit_code != 0 and "401" in r.output, r.output
    ws = Workspace(tmp_path / "ws2")
    r = run("fetch", url, "--username", "alice", "--password", SECRET, *QUICK, ws=ws)
    assert r.exit_code == 0, r.output
    assert SECRET.encode() not in _everything(ws)


@pytest.mark.slow
def test_netrc_logs_in(auth_server: str, tmp_path: Path, monkeypatch) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text(f"machine 127.0.0.1 login alice password {SECRET}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    ws = Workspace(tmp_path / "ws")
    r = run("fetch", f"http://{auth_server}/talk.flac", "--netrc", *QUICK, ws=ws)
    assert r.exit_code == 0, r.output
    assert SECRET.encode() not in _everything(ws)
