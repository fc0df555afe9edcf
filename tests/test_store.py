"""The Store is the one writer of a workspace, and reads never write.

Every file operation that changes a workspace (opening for writing, creating, replacing,
renaming, deleting, whole trees removed) is recorded, with the Python stack it came from, while
the real CLI runs in-process; each must come from inside the store package (a `Store` method or
the ledger on the stack). `search` and `serve` must leave the workspace byte for byte as they
found it — a missing or stale index is a warning naming `confindex index --rebuild`.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import assert_no_traceback, run
from servekit import PANEL_ID, XSS_ID, make_workspace, start_server

import confindex
from confindex.search import index
from confindex.store import transcript as tstore
from confindex.store.transcript import Voiceprint
from confindex.store.workspace import Workspace

SRC = Path(confindex.__file__).resolve().parent
# The store package's entry points: a write is the Store's when one of these is on its stack.
OWNERS = tuple(
    SRC / "store" / f for f in ("store.py", "index_writes.py", "voice_writes.py", "ledger.py")
)
# Where the bytes are finally written: the store package, the index's Whoosh writer and the
# semantic vectors' writer (search/index.py and search/vector_build.py write only when the
# Store calls them: the stack check below holds them to it).
DERIVED_WRITERS = ("search/index.py", "search/vector_build.py")
PRIMITIVES = (SRC / "store", *(SRC / w for w in DERIVED_WRITERS))
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class WriteAudit:
    """Records every write under `root` with the confindex frames of its stack."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root.resolve()
        # The layout itself (empty folders made by Workspace.ensure), media downloads, temp
        # downloads and lock files are not workspace data.
        self.layout = {self.root / d for d in ("transcripts", "index", "media", ".confindex")}
        self.layout |= {self.root, self.root / ".confindex" / "tmp"}
        self.writes: list[tuple[str, str, bool, list[str]]] = []
        real_open, real_os_open = builtins.open, os.open

        def audited(name: str, real, path_arg=0):
            def wrapper(*a, **k):
                self.check(name, a[path_arg] if len(a) > path_arg else None)
                return real(*a, **k)

            return wrapper

        def open_(file, mode="r", *a, **k):
            if isinstance(file, (str, bytes, os.PathLike)) and set(str(mode)) & set("wax+"):
                self.check("open", file)
            return real_open(file, mode, *a, **k)

        def os_open(path, flags, *a, **k):
            if flags & _WRITE_FLAGS and "dir_fd" not in k:
                self.check("os.open", path)
            return real_os_open(path, flags, *a, **k)

        def mkdir(path, *a, **k):
            if not os.path.isdir(path):  # exist_ok on an existing folder writes nothing
                self.check("mkdir", path)
            return real_mkdir(path, *a, **k)

        real_mkdir = os.mkdir
        monkeypatch.setattr(builtins, "open", open_)
        monkeypatch.setattr(io, "open", open_)
        monkeypatch.setattr(os, "open", os_open)
        monkeypatch.setattr(os, "mkdir", mkdir)
        for name in ("replace", "rename"):
            monkeypatch.setattr(os, name, audited(f"os.{name}", getattr(os, name), 1))
        for name in ("unlink", "remove", "rmdir"):
            if name == "rmdir":
                continue  # rmtree's own, by file descriptor: shutil.rmtree is audited itself
            monkeypatch.setattr(os, name, audited(f"os.{name}", getattr(os, name)))
        monkeypatch.setattr(shutil, "rmtree", audited("rmtree", shutil.rmtree))

    def check(self, op: str, path) -> None:
        if path is None or isinstance(path, int):
            return
        try:
            p = Path(os.path.abspath(os.fsdecode(path)))
        except (TypeError, ValueError):
            return
        if not p.is_relative_to(self.root) or p in self.layout or p.name.endswith(".lock"):
            return
        rel = p.relative_to(self.root)
        if rel.parts[0] == "media" or rel.parts[:2] == (".confindex", "tmp"):
            return
        files = []
        f = sys._getframe(1)
        while f is not None:
            fn = Path(f.f_code.co_filename)
            if fn.is_relative_to(SRC):
                files.append(fn)
            f = f.f_back
        ok = bool(files) and any(files[0].is_relative_to(d) for d in PRIMITIVES)
        ok = ok and any(fn in OWNERS for fn in files)
        where = [f"{fn.relative_to(SRC)}" for fn in files[:6]]
        self.writes.append((op, str(rel), ok, where))

    def strays(self) -> list[tuple[str, str, list[str]]]:
        return [(op, rel, where) for op, rel, ok, where in self.writes if not ok]

    def touched(self) -> set[str]:
        return {rel.split(os.sep)[0] if os.sep in rel else rel for _op, rel, _ok, _w in self.writes}


def _archive(root: Path) -> Workspace:
    """Three hand-made transcripts, indexed; the panel's first speaker has a voiceprint."""
    ws = make_workspace(root)
    t = tstore.load(ws, PANEL_ID)
    t.voiceprints = {"SPEAKER_00": Voiceprint([1.0] + [0.0] * 191, 12.0)}
    tstore.save(ws, t)
    index.rebuild(ws)
    return ws


def test_every_write_of_the_cli_comes_from_the_store(tmp_path: Path, monkeypatch) -> None:
    ws = _archive(tmp_path / "ws")
    audit = WriteAudit(ws.root, monkeypatch)
    for args in (
        ["speakers", PANEL_ID, "rename", "SPEAKER_00", "Marc Lefèvre"],
        ["speakers", PANEL_ID, "rename", "SPEAKER_01", "Maya Brooks", "--no-enroll"],
        ["transcribe", PANEL_ID, "--undo"],
        ["speakers", "identify"],
        ["index"],
        ["index", "--rebuild", "--optimize"],
        ["search", "soyouz"],
        ["rm", XSS_ID],
    ):
        r = run(*args, ws=ws)
        assert r.exit_code == 0, (args, r.output)
    monkeypatch.undo()
    assert audit.strays() == []
    written = {rel for _op, rel, _ok, _w in audit.writes}
    # The audit saw the writes it is about (else it would pass by seeing nothing).
    assert f"transcripts/{PANEL_ID}.json" in {w.replace(os.sep, "/") for w in written}
    assert {"transcripts", "index", "voices.json"} <= audit.touched()
    assert any(".history" in w for w in written)
    assert not ws.transcript_path(XSS_ID).exists()


def test_every_write_of_fetch_comes_from_the_store(tmp_path: Path, monkeypatch) -> None:
    """`fetch`, `transcribe` again and `resume` (the FakeDecoder stands in for Whisper: the
    writes, not the words, are the point): transcript, exports, history, index and ledger all
    through the Store."""
    jfk = _fake_jfk(tmp_path, monkeypatch)
    ws = Workspace(tmp_path / "ws")
    audit = WriteAudit(ws.root, monkeypatch)
    r = run("fetch", str(jfk), "--no-diarize", "--formats", "srt,eaf", ws=ws)
    assert r.exit_code == 0, r.output
    rid = ws.transcript_ids()[0]
    for args in (["transcribe", rid, "--no-diarize"], ["resume"], ["search", "country"]):
        r = run(*args, ws=ws)
        assert r.exit_code == 0, (args, r.output)
    monkeypatch.undo()
    assert audit.strays() == []
    written = {rel.replace(os.sep, "/") for _op, rel, _ok, _w in audit.writes}
    assert {f"transcripts/{rid}.json", f"transcripts/{rid}.srt", f"transcripts/{rid}.eaf"} <= (
        written
    )
    assert any(w.startswith(f"transcripts/.history/{rid}/") for w in written)
    assert "index" in audit.touched()
    assert "country" in run("search", "country", ws=ws).stdout


def _fake_jfk(tmp_path: Path, monkeypatch) -> Path:
    import json

    from conftest import shared_file
    from test_fake_pipeline import JFK

    from confindex.speech.decoder import FAKE_ENV

    script = tmp_path / "jfk.fake.json"
    script.write_text(json.dumps({"language": "en", "words": JFK}), encoding="utf-8")
    monkeypatch.setenv(FAKE_ENV, str(script))
    return shared_file("en/jfk.flac")


def test_a_transcript_saved_before_a_crash_is_settled_not_redone(tmp_path, monkeypatch) -> None:
    """A run killed between saving a transcript and indexing it (exports half written, the
    ledger at `queued`): the next `fetch` settles it through the Store — exports and index
    written, the ledger at `indexed` — without transcribing it again."""
    import json

    from confindex.store.store import Store

    jfk = _fake_jfk(tmp_path, monkeypatch)
    ws = Workspace(tmp_path / "ws")
    assert run("fetch", str(jfk), "--no-diarize", ws=ws).exit_code == 0
    rid = ws.transcript_ids()[0]
    (ws.transcripts / f"{rid}.srt").unlink()
    Store(ws).unindex([rid])
    with Store(ws).ledger() as led:
        (row,) = led.rows()
        assert led.reset([row.key]) == 1
    saved = ws.transcript_path(rid).stat().st_mtime_ns
    assert "country" not in run("search", "country", ws=ws).stdout

    r = run("fetch", str(jfk), "--no-diarize", "--json", ws=ws)
    assert r.exit_code == 0, r.output
    (rec,) = json.loads(r.stdout)["recordings"]
    assert (rec["status"], rec["reason"]) == ("skipped", "already transcribed")
    assert ws.transcript_path(rid).stat().st_mtime_ns == saved  # not transcribed again
    assert "ask not what your country" in (ws.transcripts / f"{rid}.srt").read_text()
    assert "country" in run("search", "country", ws=ws).stdout
    with Store(ws).ledger() as led:
        assert [x.stage for x in led.rows()] == ["indexed"]


def _snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file and folder under root: (size, mtime_ns, sha256)."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns, digest)
    return out


@pytest.mark.parametrize("damage", ["current", "old schema", "missing"])
def test_search_and_serve_leave_the_workspace_byte_identical(tmp_path: Path, damage: str) -> None:
    ws = _archive(tmp_path / "ws")
    from confindex.store.ledger import NewItem
    from confindex.store.store import Store

    with Store(ws).ledger() as led:  # a ledger, as after a fetch: `status` reads it
        led.add([NewItem("https://example.org/t.mp4", "https://example.org/t.mp4", "url")])
    if damage == "current":
        Store(ws).sync_vectors()  # semantic search's passage vectors, as `index` leaves them
    cur = ws.index_dir / index.CURRENT
    if damage == "old schema":
        cur.write_text(cur.read_text().replace(f'"schema": {index.SCHEMA_VERSION}', '"schema": 7'))
    elif damage == "missing":
        shutil.rmtree(ws.index_dir)
    before = _snapshot(ws.root)
    for args in (["search", "soyouz"], ["--json", "search", "space OR orbit"], ["search", "x:"]):
        r = run(*args, ws=ws)
        if damage != "current" and args[-1] != "x:":
            assert "confindex index --rebuild" in r.stderr, r.output
            assert len(r.stderr.strip().splitlines()) == 1
    # The other readers too.
    semantic = [["search", "--semantic", "space station"]] if damage == "current" else []
    for args in (
        *semantic,
        ["list"],
        ["show", PANEL_ID],
        ["cite", PANEL_ID, "--at", "0:05"],
        ["export", PANEL_ID, "--format", "srt"],
        ["speakers", PANEL_ID],
        ["speakers", "--all"],
        ["speakers", "review"],
        ["stats"],
        ["status"],
        ["review", PANEL_ID],
    ):
        r = run(*args, ws=ws)
        assert r.exit_code in ((0,) if args in semantic else (0, 1)), (args, r.output)
    server = start_server(ws)
    try:
        status, _h, body = server.request("/api/search?q=soyouz")
        assert status == 200
        if damage == "current":
            assert b"Soyouz" in body or b"soyouz" in body.lower()
    finally:
        _code, err = server.stop()
    assert_no_traceback(err, "confindex serve")
    if damage != "current":
        assert "confindex index --rebuild" in err
    after = _snapshot(ws.root)
    # `status` reads the ledger through SQLite, whose WAL files come and go beside it (the
    # folder's mtime moves): the ledger itself is compared byte for byte.
    for snap in (before, after):
        snap.pop(".confindex")
    assert after == before


# -- who may call the write primitives (a static check over src/) ---------------------------

# Writes outside the workspace, named with why: exports to a file or folder the user names.
ATOMIC_ELSEWHERE = {"api.py", "cli/search_cmd.py", "cli/chapters_cmd.py"}  # -o FILE / folder
INDEX_WRITES = {"add", "remove", "rebuild", "build", "sync", "optimize", "after_publish"}


def _calls(tree) -> list[tuple[str, str]]:
    """(base name, attribute) of every `base.attr(...)` call, and ("", name) of `name(...)`."""
    import ast

    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
                out.append((f.value.id, f.attr))
            elif isinstance(f, ast.Name):
                out.append(("", f.id))
    return out


def _aliases(tree, module: str) -> set[str]:
    """Names a module is imported under (`from confindex.search import index as ix`)."""
    import ast

    pkg, _, leaf = module.rpartition(".")
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == pkg:
            names |= {a.asname or a.name for a in node.names if a.name == leaf}
        elif isinstance(node, ast.Import):
            names |= {a.asname for a in node.names if a.name == module and a.asname}
    return names


def _imported(tree, module: str) -> set[str]:
    import ast

    return {
        a.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == module
        for a in node.names
    }


def test_only_the_store_package_calls_the_write_primitives() -> None:
    import ast

    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("store/"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = _calls(tree)
        for writer in DERIVED_WRITERS:
            mod = _aliases(tree, "confindex." + writer.removesuffix(".py").replace("/", "."))
            if rel != writer:
                offenders += [f"{rel}: {b}.{a}" for b, a in calls if b in mod and a in INDEX_WRITES]
        tr = _aliases(tree, "confindex.store.transcript")
        offenders += [f"{rel}: {b}.save" for b, a in calls if b in tr and a == "save"]
        if "save" in _imported(tree, "confindex.store.transcript"):
            offenders.append(f"{rel}: imports transcript.save")
        offenders += [f"{rel}: {b}.{a}" for b, a in calls if (b, a) in {("Ledger", "of")}]
        offenders += [f"{rel}: Ledger()" for b, a in calls if (b, a) == ("", "Ledger")]
        vo = _aliases(tree, "confindex.speech.voices")
        offenders += [f"{rel}: voices.save" for b, a in calls if b in vo and a == "save"]
        atomic = {"atomic_write_bytes", "atomic_write_text"}
        allowed = rel in ATOMIC_ELSEWHERE or rel in DERIVED_WRITERS
        if atomic & _imported(tree, "confindex.store.workspace") and not allowed:
            offenders.append(f"{rel}: imports an atomic writer")
    assert offenders == []
