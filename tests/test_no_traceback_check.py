"""The suite's no-traceback check itself (conftest, issue 16 acceptance 4): it must fail on every
way a CLI shows a user a traceback, and must not fail because a test HTTP server's client hung
up during an in-process CLI run (CI went red on that). Run as an inner pytest session with this
repository's conftest.py and pytest settings."""

from __future__ import annotations

import builtins
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

from conftest import REPO, has_traceback

INNER = r'''
import http.server
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.request

import click
import pytest
from click.testing import CliRunner
from conftest import LoopbackServer


class Big(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path == "/bug":
            raise RuntimeError("a bug in the test server")
        self.send_response(200)
        self.send_header("Content-Length", str(64 << 20))
        self.end_headers()
        for _ in range(64):  # far more than the socket buffers hold: the write must fail
            self.wfile.write(bytes(1 << 20))


def serve(cls):
    srv = cls(("127.0.0.1", 0), Big)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def hang_up_early(srv):
    """What yt-dlp does on a full disk: read a little, then drop the connection."""
    s = socket.create_connection(srv.server_address)
    s.sendall(b"GET /big HTTP/1.0\r\n\r\n")
    s.recv(1024)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()  # RST: the server's next write fails


def command(body):
    return click.command()(body)


@pytest.mark.parametrize("cls", [LoopbackServer, http.server.ThreadingHTTPServer])
def test_a_client_hanging_up_on_a_test_server_is_not_a_cli_traceback(cls):
    srv = serve(cls)

    def body():
        hang_up_early(srv)
        deadline = time.monotonic() + 20
        while getattr(srv, "hangups", 0) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # the server thread fails while the CLI's stderr is captured
        click.echo("done")

    r = CliRunner().invoke(command(body), [])
    assert r.exit_code == 0 and srv.hangups == 1
    srv.shutdown()


def test_a_test_server_bug_fails_the_test_named_as_the_server():
    srv = serve(LoopbackServer)
    with pytest.raises(Exception):
        urllib.request.urlopen(f"http://127.0.0.1:{srv.server_address[1]}/bug", timeout=20)
    srv.shutdown()


def test_cli_raising():
    def body():
        raise ValueError("boom")

    CliRunner().invoke(command(body), [])


def test_cli_printing_a_caught_traceback():
    def body():
        try:
            {}["x"]
        except KeyError:
            traceback.print_exc()

    CliRunner().invoke(command(body), [])


def test_cli_thread_crashing():
    def body():
        t = threading.Thread(target=lambda: 1 / 0)
        t.start()
        t.join()

    CliRunner().invoke(command(body), [])


SUB = [sys.executable, "-c"]


def test_a_subprocess_raising():  # its stderr is never looked at: the hook still sees it
    subprocess.run([*SUB, "raise SystemError('boom')"], capture_output=True)


def test_a_subprocess_thread_crashing():
    code = "import threading; t = threading.Thread(target=lambda: 1 / 0); t.start(); t.join()"
    subprocess.run([*SUB, code], stderr=subprocess.DEVNULL)


def test_a_subprocess_exiting_with_an_error_line_is_fine():
    r = subprocess.run([*SUB, "import sys; sys.exit('Error: no such file')"], capture_output=True)
    assert r.returncode == 1


def test_cli_quoting_the_words_in_an_error_is_fine():
    def body():
        raise click.ClickException("no such file: Traceback (most recent call last)")

    assert CliRunner().invoke(command(body), []).exit_code == 1
'''

EXPECTED = {
    "test_a_client_hanging_up_on_a_test_server_is_not_a_cli_traceback[LoopbackServer]": "passed",
    "test_a_client_hanging_up_on_a_test_server_is_not_a_cli_traceback[ThreadingHTTPServer]": (
        "passed"
    ),
    "test_a_test_server_bug_fails_the_test_named_as_the_server": (
        "error",
        "a test HTTP server failed (not the CLI)",
    ),
    "test_cli_raising": ("failure", "raised (a user sees a traceback)"),
    "test_cli_printing_a_caught_traceback": ("failure", "printed a traceback on stderr"),
    "test_cli_thread_crashing": ("failure", "ZeroDivisionError"),
    "test_a_subprocess_raising": ("error", "SystemError: boom"),
    "test_a_subprocess_thread_crashing": ("error", "ZeroDivisionError"),
    "test_a_subprocess_exiting_with_an_error_line_is_fine": "passed",
    "test_cli_quoting_the_words_in_an_error_is_fine": "passed",
}


def test_the_no_traceback_check_catches_the_cli_and_only_the_cli(tmp_path: Path) -> None:
    shutil.copy(REPO / "tests" / "conftest.py", tmp_path / "conftest.py")
    shutil.copytree(REPO / "tests" / "_site", tmp_path / "_site")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")  # same filterwarnings
    (tmp_path / "test_inner.py").write_text(INNER)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--junitxml=r.xml",
            "test_inner.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report: dict[str, list[tuple[str, str]]] = {}
    for case in ElementTree.parse(tmp_path / "r.xml").iter("testcase"):
        got = [(e.tag, (e.get("message") or "") + (e.text or "")) for e in case]
        report[case.get("name", "")] = [x for x in got if x[0] in ("failure", "error")] or [
            ("passed", "")
        ]
    for name, want in EXPECTED.items():
        outcome, says = (want, "") if isinstance(want, str) else want
        got = report.get(name, [])
        assert any(o == outcome and says in msg for o, msg in got), (name, got, r.stdout[-3000:])
    # the hang-ups printed nothing anywhere (socketserver would print to the real stderr too)
    assert "BrokenPipe" not in r.stdout + r.stderr and "ConnectionReset" not in r.stdout + r.stderr


def test_tracebacks_are_recognised_in_every_shape() -> None:
    def tb(exc: BaseException) -> str:
        import traceback

        try:
            raise exc
        except BaseException as e:
            return "".join(traceback.format_exception(e))

    plain = tb(ValueError("x"))
    group = plain
    if sys.version_info >= (3, 11):
        group = tb(builtins.ExceptionGroup("g", [ValueError(1)]))
    for text in (plain, group, "indexing\r" + plain, "Error: a\n" + plain):
        assert has_traceback(text), text
    for text in ("Error: no such file: Traceback (most recent call last)", "", "Error: x\n"):
        assert not has_traceback(text), text
