"""Damage is named, never hidden, never a traceback (issue 16): a damaged index names
`index --rebuild`; junk in transcripts/ never blocks the rebuild, which lists it and exits 1;
a damaged ledger is set aside and rebuilt; a full or read-only disk is one line and leaves
nothing half-written; moments past the end of a recording are errors."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run, shared_file
from harness import QUIET, assert_intact, assert_one_line_error, good_archive

from confindex.search import index
from confindex.store.ledger import Ledger
from confindex.store.transcript import load_path, save
from confindex.store.workspace import Workspace


@pytest.fixture
def adv(tmp_path: Path) -> Workspace:
    return good_archive(tmp_path / "ws")


def _gen(ws: Workspace) -> Path:
    s = index.state(ws)
    assert s.generation is not None
    return s.generation


DAMAGE = {
    "truncated segment": lambda g: [os.truncate(p, 100) for p in g.glob("*.seg")],
    "garbled segment": lambda g: [
        p.write_bytes(os.urandom(p.stat().st_size)) for p in g.glob("*.seg")
    ],
    "garbled TOC": lambda g: [p.write_bytes(os.urandom(60)) for p in g.glob("*.toc")],
    "empty TOC": lambda g: [p.write_bytes(b"") for p in g.glob("*.toc")],
    "missing segment": lambda g: [p.unlink() for p in g.glob("*.seg")],
    "garbage recordings.json": lambda g: (g / "recordings.json").write_text("{garbage"),
    "recordings.json is a list": lambda g: (g / "recordings.json").write_text("[1, 2]"),
    "binary recordings.json": lambda g: (g / "recordings.json").write_bytes(b"\xff\xfe\x00"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_index_names_the_rebuild(adv: Workspace, damage: str) -> None:
    DAMAGE[damage](_gen(adv))
    index.close_all() if hasattr(index, "close_all") else None
    from confindex.search import hits as search_mod

    search_mod.close_all()
    r = run("search", "brown fox", ws=adv)
    line = assert_one_line_error(r)
    assert "index --rebuild" in line and "damaged" in line
    r = run("index", "--rebuild", ws=adv)  # the documented recovery works
    assert r.exit_code == 0, r.output
    search_mod.close_all()
    assert_intact(adv)


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_index_never_calls_a_damaged_index_up_to_date(adv: Workspace, damage: str) -> None:
    """`confindex index` on a damaged index names the rebuild (it once said "the index is up
    to date", exit 0, for a truncated or garbled segment or TOC)."""
    DAMAGE[damage](_gen(adv))
    from confindex.search import hits as search_mod

    search_mod.close_all()
    line = assert_one_line_error(run("index", ws=adv))
    assert "index --rebuild" in line and "damaged" in line
    assert run("index", "--rebuild", ws=adv).exit_code == 0
    search_mod.close_all()
    r = run("index", ws=adv)
    assert r.exit_code == 0 and r.stdout.strip() == "the index is up to date", r.output
    assert_intact(adv)


def test_a_missing_dependency_is_not_called_damage(adv: Workspace, monkeypatch) -> None:
    """A module confindex imports late (num2words, for numbers in queries) is gone: the
    message says to reinstall, not to rebuild an index that is fine."""
    monkeypatch.setitem(sys.modules, "num2words", None)  # `import num2words` now fails
    line = assert_one_line_error(run("search", "23 fox", ws=adv))
    assert "installed incompletely" in line and "num2words" in line and "damaged" not in line
    monkeypatch.undo()
    assert_intact(adv)


def test_a_damaged_pointer_to_the_index_is_a_warning_naming_the_rebuild(adv: Workspace) -> None:
    (adv.index_dir / "CURRENT.json").write_text("{not json")
    r = run("search", "brown fox", ws=adv)
    assert r.exit_code == 0 and "fox" not in r.stdout
    assert "confindex index --rebuild" in r.stderr
    # Named as damage, not as an index "built by another confindex (index schema 0)".
    assert "CURRENT.json is damaged" in r.stderr and "another confindex" not in r.stderr
    assert (adv.index_dir / "CURRENT.json").read_text() == "{not json"  # a read never writes
    assert run("index", "--rebuild", ws=adv).exit_code == 0
    r = run("search", "brown fox", ws=adv)
    assert r.exit_code == 0 and "fox" in r.stdout and not r.stderr


JUNK = {
    "array.json": b"[1, 2, 3]",
    "binary.json": os.urandom(300) + b"\xff",
    "truncated.json": b'{"schema_version": 1, "recording": {"id": "tr',
    "future.json": json.dumps({"schema_version": 99}).encode(),
    "empty.json": b"",
    "number.json": b"42",
    "nul.json": b"\x00" * 64,
}


@pytest.mark.parametrize("name", list(JUNK))
@pytest.mark.parametrize("how", [["index"], ["index", "--rebuild"]])
def test_junk_transcripts_are_listed_not_hidden(adv: Workspace, name: str, how: list[str]) -> None:
    (adv.transcripts / name).write_bytes(JUNK[name])
    r = run(*how, ws=adv)
    assert r.exit_code == 1
    # Progress lines ("indexing", semantic search's "embedding the passages of N recording(s)")
    # are not reports: every other line is.
    lines = [
        ln
        for ln in r.stderr.splitlines()
        if ln.strip() and ln.strip() != "indexing" and not ln.startswith("embedding the passages")
    ]
    assert lines[0].startswith(f"not indexed: {Path(name).stem}: ")
    assert lines[-1].startswith("Error: 1 transcript ") and "could not be read" in lines[-1]
    assert len(lines) == 2, lines
    (adv.transcripts / name).unlink()
    assert_intact(adv)  # the good recording stayed searchable throughout


@pytest.mark.parametrize(
    ("name", "kind"), [("array.json", "a JSON array"), ("number.json", "a number")]
)
def test_junk_that_is_not_an_object_is_named_plainly(adv: Workspace, name: str, kind: str) -> None:
    """Not "'list' object has no attribute 'get'" (a Python error) but what the file holds."""
    (adv.transcripts / name).write_bytes(JUNK[name])
    r = run("index", ws=adv)
    (first, *_) = [ln for ln in r.stderr.splitlines() if ln.startswith("not indexed: ")]
    assert first.endswith(f"is damaged ({kind}, not a transcript)"), first
    assert "attribute" not in r.stderr


def test_a_file_where_the_index_folder_belongs(adv: Workspace) -> None:
    shutil.rmtree(adv.index_dir)
    adv.index_dir.write_text("oops")
    for args in (["search", "fox"], ["index"], ["index", "--rebuild"]):
        line = assert_one_line_error(run(*args, ws=adv))
        assert "is a file" in line and "index" in line


def test_transcribe_with_a_local_file_gone_changes_nothing(adv: Workspace) -> None:
    """The recording came from a local file that is gone (no copy, no URL to fetch again): one
    line naming it; the transcript, its speaker name and the ledger stay as they were."""
    before = adv.transcript_path("good").read_bytes()
    line = assert_one_line_error(run("transcribe", "good", "--language", "fr", ws=adv))
    assert "/nowhere/good.wav" in line
    assert adv.transcript_path("good").read_bytes() == before
    assert load_path(adv.transcript_path("good")).speakers == {"SPEAKER_00": "Ada"}
    status = json.loads(run("status", "--json", ws=adv).stdout)
    assert status["counts"].get("failed", 0) == 0
    assert_intact(adv)


@pytest.mark.parametrize("ref", ["goood", "nope.wav", "file:///nowhere/x.wav"])
def test_transcribe_of_a_mistyped_id_records_nothing(adv: Workspace, ref: str) -> None:
    """Not "no such file: …/goood" with a failed row left in the ledger for a typo."""
    line = assert_one_line_error(run("transcribe", ref, ws=adv))
    assert f"no recording {ref!r}" in line and "nor a file or URL" in line
    status = json.loads(run("status", "--json", ws=adv).stdout)
    assert status["total"] == 0
    assert_intact(adv)


@pytest.mark.parametrize(
    "args", [["list"], ["search", "fox"], ["status"], ["stats"], ["index"], ["fetch", "x.wav"]]
)
def test_a_workspace_that_is_a_file(tmp_path: Path, args: list[str]) -> None:
    """`-w FILE` is an error for every command: reading ones said "No recordings in FILE"."""
    f = tmp_path / "notes.txt"
    f.write_text("not an archive")
    line = assert_one_line_error(run(*args, ws=Workspace(f)))
    assert f"{f} is not a folder" in line
    assert f.read_text() == "not an archive"


@pytest.mark.parametrize(
    "content", [b"garbage garbage garbage", os.urandom(20_000)], ids=["text", "random"]
)
def test_a_damaged_ledger_is_set_aside_and_rebuilt(adv: Workspace, content: bytes) -> None:
    adv.state.mkdir(exist_ok=True)
    (adv.state / "ledger.sqlite").write_bytes(content)
    r = run("status", "--json", ws=adv)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["counts"]["indexed"] == 1  # rebuilt from transcripts/
    assert "kept it as" in r.stderr and "rebuilt it from 1 transcript" in r.stderr
    kept = list(adv.state.glob("ledger.sqlite.damaged-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == content  # kept for inspection
    with Ledger.of(adv) as led:
        assert [row.recording_id for row in led.rows()] == ["good"]


@pytest.mark.parametrize(
    "args",
    [
        ["show", "good", "--at", "1:00:00"],
        ["show", "good", "--at", "99999"],
        ["cite", "good", "--at", "2:00"],
        ["cite", "good", "--at", "-5"],
        ["show", "nosuchrecording"],
        ["cite", "nosuchrecording", "--at", "1"],
        ["export", "nosuchrecording"],
        ["speakers", "good", "rename", "SPEAKER_99", "Bob"],
        ["show", "good", "--at", "soon"],
    ],
    ids=lambda a: " ".join(a)[:30],
)
def test_moments_and_names_that_do_not_exist(adv: Workspace, args: list[str]) -> None:
    assert_one_line_error(run(*args, ws=adv))
    assert_intact(adv)


# ------------------------------------------------------------------ full and read-only disks


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (root only; skipped where mounting is not allowed)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], check=False)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(mnt: Path, leave_kib: int) -> None:
    st = os.statvfs(mnt)
    free = st.f_bavail * st.f_frsize
    with contextlib.suppress(OSError), open(mnt / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - leave_kib * 1024))


@pytest.mark.parametrize("leave_kib", [0, 16, 64])
@pytest.mark.parametrize(
    "args",
    [["speakers", "good", "rename", "SPEAKER_00", "Grace"], ["index", "--rebuild"]],
    ids=["rename", "rebuild"],
)
def test_a_full_disk_is_one_line_and_nothing_half_written(
    small_fs: Path, leave_kib: int, args: list[str]
) -> None:
    ws = good_archive(small_fs / "ws")
    _fill(small_fs, leave_kib)
    r = run(*args, ws=ws)
    if r.exit_code != 0:  # 64 KiB may be enough for some
        lines = [ln for ln in r.stderr.splitlines() if ln.strip() and ln.strip() != "indexing"]
        assert len(lines) == 1 and lines[0].startswith("Error: ") and "disk full" in lines[0]
    (small_fs / "filler").unlink()
    assert_intact(ws)


def test_a_read_only_workspace_is_one_line(small_fs: Path) -> None:
    ws = good_archive(small_fs / "ws")
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    try:
        for args in (["speakers", "good", "rename", "SPEAKER_00", "Grace"], ["index", "--rebuild"]):
            r = run(*args, ws=ws)
            lines = [ln for ln in r.stderr.splitlines() if ln.strip() and ln.strip() != "indexing"]
            assert r.exit_code == 1 and len(lines) == 1, r.stderr
            assert "Read-only file system" in lines[0]
        assert run("search", "brown fox", ws=ws).exit_code == 0  # reading still works
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)


def test_status_reads_a_read_only_archive(small_fs: Path) -> None:
    """`status` once failed there with "cannot write the job ledger (unable to open database
    file)": SQLite cannot open a WAL database on read-only media without creating its -shm."""
    ws = good_archive(small_fs / "ws")
    with Ledger.of(ws) as led:
        assert led.restore_from(ws) == 1
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    try:
        r = run("status", "--json", ws=ws)
        assert r.exit_code == 0, r.output
        status = json.loads(r.stdout)
        assert status["total"] == 1 and status["counts"]["indexed"] == 1
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)
    assert_intact(ws)


def test_transcribe_on_a_read_only_workspace_fails_before_any_work(small_fs: Path) -> None:
    """`transcribe` once decoded and transcribed the whole recording (its media is real here)
    and only then failed, on the ledger; now the read-only folder is named before any work."""
    ws = good_archive(small_fs / "ws")
    t = load_path(ws.transcript_path("good"))
    t.recording.source = str(shared_file("en/jfk.flac"))
    save(ws, t)
    before = ws.transcript_path("good").read_bytes()
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    try:
        r = run("transcribe", "good", "--no-diarize", ws=ws)
        line = assert_one_line_error(r)
        assert "read-only file system" in line and str(ws.transcripts) in line, line
        assert "decode" not in r.stdout + r.stderr
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)
    assert ws.transcript_path("good").read_bytes() == before
    assert_intact(ws)


def test_a_download_that_fills_the_disk_is_marked_failed(small_fs: Path, tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    (www / "big.mp3").write_bytes(os.urandom(1_500_000))
    from conftest import LoopbackServer, _QuietHandler

    handler = lambda *a, **k: _QuietHandler(*a, directory=str(www), **k)  # noqa: E731
    srv = LoopbackServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        ws = good_archive(small_fs / "ws")
        _fill(small_fs, 400)
        url = f"http://127.0.0.1:{srv.server_address[1]}/big.mp3"
        r = run("fetch", url, *QUIET, "--retries", "0", ws=ws)
        assert "disk full" in assert_one_line_error(r)
        with Ledger.of(ws) as led:
            assert next(x for x in led.rows() if x.key == url).stage == "failed"
        assert not list(ws.state.rglob("*.part"))
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.slow
def test_a_fetch_whose_index_step_fills_the_disk_says_disk_full(tmp_path: Path) -> None:
    """Transcribed, then no room for the index (index/ is its own full 1 MiB tmpfs, so the
    moment is exact): one line saying "disk full" — it once printed only the bare "No space
    left on device" — the transcript whole, and `retry-failed` finishes it once there is room."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs")
    ws = Workspace(tmp_path / "ws").ensure()
    ws.index_dir.mkdir(exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(ws.index_dir)], check=False
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        _fill(ws.index_dir, 0)
        jfk = shared_file("en/jfk.flac")
        r = run("fetch", str(jfk), *QUIET, ws=ws)
        assert "disk full" in assert_one_line_error(r)
        (rid,) = ws.transcript_ids()
        assert "ask not what your country" in load_path(ws.transcript_path(rid)).text.lower()
        with Ledger.of(ws) as led:
            (row,) = led.rows()
        assert row.stage == "failed" and "disk full" in (row.error or "")
        (ws.index_dir / "filler").unlink()
        assert run("retry-failed", ws=ws).exit_code == 0
        hits = json.loads(run("search", "--json", "ask not", ws=ws).stdout)["hits"]
        assert [h["recording_id"] for h in hits] == [rid]
    finally:
        subprocess.run(["umount", "-l", str(ws.index_dir)], check=False)


def test_a_partial_generation_left_by_a_failed_rebuild_is_cleaned(adv: Workspace) -> None:
    stray = adv.index_dir / "g-20200101-000000-1-1"  # what a killed/disk-full rebuild leaves
    stray.mkdir()
    (stray / "_MAIN_1.toc").write_bytes(b"partial")
    r = run("speakers", "good", "rename", "SPEAKER_00", "Grace", ws=adv)  # any index write
    assert r.exit_code == 0, r.output
    assert not stray.exists()
    assert_intact(adv)


TRAVERSAL = ["../../outside/secret", "../good", "/etc/passwd", ".hidden", "good/../good", "a\\b"]


@pytest.mark.parametrize("ref", TRAVERSAL)
@pytest.mark.parametrize(
    "cmd", [["show"], ["export"], ["speakers"], ["cite", "--at", "1"]], ids=lambda c: c[0]
)
def test_recording_ids_never_reach_outside_transcripts(
    adv: Workspace, tmp_path: Path, ref: str, cmd: list[str]
) -> None:
    """A planted transcript outside transcripts/ is never read (nor written) through an id."""
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    shutil.copyfile(adv.transcript_path("good"), outside / "secret.json")
    r = run(cmd[0], ref, *cmd[1:], ws=adv)
    assert "no recording" in assert_one_line_error(r)
    r = run("speakers", ref, "rename", "SPEAKER_00", "Mallory", ws=adv)
    assert_one_line_error(r)
    assert "Mallory" not in (outside / "secret.json").read_text()


def test_a_missing_index_is_built_by_index_which_names_what_it_left_out(adv: Workspace) -> None:
    """`search` on a missing index creates nothing and names the command; `index` builds it and
    says which transcripts it could not read."""
    shutil.rmtree(adv.index_dir)
    (adv.transcripts / "broken.json").write_text('{"schema_version": 1, "recor')
    r = run("search", "brown fox", ws=adv)
    assert r.exit_code == 0 and "fox" not in r.stdout
    assert "confindex index --rebuild" in r.stderr
    assert not adv.index_dir.exists()
    r = run("index", ws=adv)
    assert "not indexed: broken: " in r.stderr
    r = run("search", "brown fox", ws=adv)
    assert r.exit_code == 0 and "fox" in r.stdout
    (adv.transcripts / "broken.json").unlink()
