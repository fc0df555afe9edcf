"""Shared fixtures: real media over loopback HTTP, a temp workspace, the real CLI."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import socketserver
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from confindex.cli import cli
from confindex.search.hits import STRICT_ENV
from confindex.store.workspace import Workspace

# No hit time may fall back to a turn start anywhere in the suite: in strict mode a hit whose
# matched words cannot be timed raises (search.TimeNotLocated) — in-process and in CLI
# subprocesses, which inherit the environment.
os.environ[STRICT_ENV] = "1"

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
# ../shared beside the repo holds real recordings; tests that use them skip when it is absent.
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_file(rel: str) -> Path:
    p = SHARED_DATA / rel
    if not p.exists():
        pytest.skip(f"{p} is not available (../shared is absent)")
    return p


# ------------------------------------------------------------- no traceback from the CLI, ever
# Every CLI invocation in the suite, in-process (CliRunner, whoever calls it) or in a subprocess
# (through `assert_no_traceback`), is checked: bad input must give a one-line error, never a
# traceback (issue 16, acceptance 4). An uncaught exception is what would print one; so does a
# crashed thread or a failing `__del__`, which pyproject's filterwarnings turns into failures.
#
# A traceback is Python's header at a line start (or after a progress bar's \r) followed by a
# frame — plain, chained or an ExceptionGroup's (indented with "  + " / "  | ") — or rich's boxed
# header: an error message that merely quotes the words (a hostile file name, say) is not one.
TRACEBACK = "Traceback (most recent call last)"
_TRACEBACK_RE = re.compile(
    r"(?:^|[\r\n])[ +|]*(?:Exception Group )?Traceback \(most recent call last\):\r?\n"
    r"[ +|]*File |Traceback \(most recent call last\) ─"
)


def has_traceback(text: str) -> bool:
    return _TRACEBACK_RE.search(text) is not None


def assert_no_traceback(stderr: str | bytes | None, what: str = "confindex") -> None:
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr or ""
    if has_traceback(text):
        pytest.fail(f"{what} printed a traceback on stderr:\n{text[-3000:]}", pytrace=False)


# In-process, CliRunner captures `sys.stderr` for the whole process, so anything another thread
# prints meanwhile lands in the CLI's stderr. The test HTTP servers are such threads: socketserver
# prints a traceback whenever a handler fails, e.g. with BrokenPipe when yt-dlp or ffmpeg hangs up
# early (a probe, a failed write on a full disk) — CI failed on exactly that. So no test server
# ever prints: a client hanging up is normal and only counted; any other handler failure is kept
# and fails the test it happened in, named as the server's fault. Patched on socketserver itself,
# so every server a test starts (any class) is covered.
SERVER_ERRORS: list[str] = []


def _server_error(self: socketserver.BaseServer, request, client_address) -> None:
    exc = sys.exc_info()[1]
    if isinstance(exc, ConnectionError):  # BrokenPipe, ConnectionReset/Aborted: the client left
        self.hangups = getattr(self, "hangups", 0) + 1  # type: ignore[attr-defined]
        return
    SERVER_ERRORS.append(f"{type(self).__name__} {client_address}:\n{traceback.format_exc()}")


socketserver.BaseServer.handle_error = _server_error  # type: ignore[method-assign]


# Every Python subprocess a test starts (the CLI above all) loads tests/_site/sitecustomize.py,
# which writes any uncaught exception, crashed thread or failing __del__ into this folder: the
# check then holds for subprocesses too, whoever starts them and whatever they do with stderr.
TRACEBACK_DIR = Path(tempfile.mkdtemp(prefix="confindex-test-tracebacks-"))
os.environ["PYTEST_TRACEBACK_DIR"] = str(TRACEBACK_DIR)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(Path(__file__).parent / "_site"), *filter(None, [os.environ.get("PYTHONPATH")])]
)


def _stray_tracebacks() -> str:
    found = sorted(TRACEBACK_DIR.iterdir())
    text = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in found)
    for p in found:
        p.unlink()
    return text


def _check_stray_tracebacks() -> None:
    if tracebacks := _stray_tracebacks():
        pytest.fail(f"a Python subprocess printed a traceback:\n{tracebacks}", pytrace=False)
    if SERVER_ERRORS:
        errors, SERVER_ERRORS[:] = "\n".join(SERVER_ERRORS), []
        pytest.fail(f"a test HTTP server failed (not the CLI):\n{errors}", pytrace=False)


@pytest.fixture(autouse=True)
def _no_stray_traceback() -> Iterator[None]:
    """Fails the test during which a test server failed or a subprocess printed a traceback
    (checked before it too: a module fixture's subprocess runs before this fixture starts)."""
    _check_stray_tracebacks()
    yield
    _check_stray_tracebacks()


_click_invoke = CliRunner.invoke


def _checked_invoke(self: CliRunner, cli_obj, args=None, *a, **kw):
    try:
        result = _click_invoke(self, cli_obj, args, *a, **kw)
    except Exception as exc:  # catch_exceptions=False: the exception escaped the CLI
        tb = "".join(traceback.format_exception(exc))
        pytest.fail(f"`confindex {_argv(args)}` raised (a user sees a traceback):\n{tb}")
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        tb = "".join(traceback.format_exception(*result.exc_info))  # type: ignore[misc]
        pytest.fail(f"`confindex {_argv(args)}` raised (a user sees a traceback):\n{tb}")
    assert_no_traceback(result.stderr, f"`confindex {_argv(args)}`")
    return result


def _argv(args) -> str:
    return " ".join(str(a) for a in args) if isinstance(args, (list, tuple)) else str(args)


CliRunner.invoke = _checked_invoke  # type: ignore[method-assign]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """One Chromium (under one Playwright driver) for every browser test a worker runs: each
    module launching its own cost ~1 s and ~1.5 CPU s five times a run (tests/servekit.py
    launch_chromium says why it may skip). Tests open their own contexts or pages."""
    from servekit import launch_chromium

    with launch_chromium() as browser:
        yield browser


@pytest.fixture(scope="session")
def panel() -> dict:
    """The bundled sample's script: speakers, languages, texts and times."""
    return json.loads((SAMPLES / "panel.json").read_text(encoding="utf-8"))


class LoopbackServer(http.server.ThreadingHTTPServer):
    """The tests' HTTP server: bind it to ("127.0.0.1", 0). Its handler failures never print
    (see `_server_error`): a client hanging up is counted in `hangups`, anything else fails the
    test."""

    daemon_threads = True
    hangups = 0


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def handle(self) -> None:
        # yt-dlp may close a connection early (probing a file's type): the server thread's
        # traceback would land on the stderr a CLI invocation is checked on, failing it.
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            super().handle()


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(folder, base URL): a real HTTP server on 127.0.0.1 serving the folder."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = LoopbackServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run(*args: str, ws: Workspace | None = None):
    """Invoke the real CLI in-process; returns click's Result (exit_code, stdout, stderr)."""
    argv = list(args)
    if ws is not None:
        argv += ["--workspace", str(ws.root)]
    return CliRunner().invoke(cli, argv, catch_exceptions=False)


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """Print how many hostile inputs the adversarial suite ran (issue 16, acceptance 2)."""
    stats = terminalreporter.stats

    def count(kind: str) -> int:
        return sum(
            1 for r in stats.get(kind, []) if "tests/adversarial/" in getattr(r, "nodeid", "")
        )

    passed, failed = count("passed"), count("failed") + count("error")
    if passed or failed:
        terminalreporter.write_line(
            f"adversarial cases: {passed + failed} run, {passed} passed, {failed} failed "
            "(the hypothesis cases each try 40-150 generated queries)"
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A subprocess that printed a traceback after the last test still fails the run."""
    if tracebacks := _stray_tracebacks():
        sys.__stderr__.write(f"a Python subprocess printed a traceback:\n{tracebacks}\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    shutil.rmtree(TRACEBACK_DIR, ignore_errors=True)
