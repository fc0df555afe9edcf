"""Dask executors on real parts: a real LocalCluster (worker processes on loopback), a real
`dask scheduler` + `dask worker` cluster started by the test, the embedded Whisper model and the
diarization models on short real recordings from ../shared/data, yt-dlp over loopback HTTP,
and the CLI in subprocesses (so that processes can be killed as a user's would be).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SHARED_DATA, assert_no_traceback

from confindex.search import index as search_index
from confindex.store import transcript as store
from confindex.store.ledger import Ledger
from confindex.store.workspace import Workspace

pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-c", "from confindex.cli import main; main()"]
CLIPS = ["en/jfk.flac", "fr/picovoice_test_fr.wav", "ru/pisets_mono_sound_ru.wav"]
DIARIZED = "diar/pyannote_sample.wav"


def confindex(*args: str, env: dict | None = None, timeout: float = 600):
    r = subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )
    assert_no_traceback(r.stderr, f"confindex {' '.join(args)}")
    return r


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, request) -> list[str]:
    """Four short real recordings: two local files, two URLs on a loopback HTTP server."""
    import functools
    import threading

    from conftest import LoopbackServer, _QuietHandler

    for rel in [*CLIPS, DIARIZED]:
        if not (SHARED_DATA / rel).exists():
            pytest.skip(f"{SHARED_DATA / rel} is not available (../shared is absent)")
    root = tmp_path_factory.mktemp("www")
    for rel in CLIPS[1:]:
        shutil.copy(SHARED_DATA / rel, root / Path(rel).name)
    server = LoopbackServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    request.addfinalizer(server.shutdown)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    return [
        str(SHARED_DATA / CLIPS[0]),
        str(SHARED_DATA / DIARIZED),
        *(f"{base}/{Path(rel).name}" for rel in CLIPS[1:]),
    ]


def batch_file(folder: Path, items: list[str]) -> Path:
    p = folder / "list.txt"
    p.write_text("\n".join(items) + "\n", encoding="utf-8")
    return p


def content(ws: Workspace) -> dict[str, list[tuple]]:
    """Per recording: its turns as (start, end, speaker, text) and its words."""
    out = {}
    for t in store.iter_all(ws):
        words = [[(w.start, w.end, w.text, w.speaker) for w in x.words] for x in t.turns]
        out[t.id] = [
            (x.start, x.end, x.speaker, x.text, w) for x, w in zip(t.turns, words, strict=True)
        ]
    return out


def assert_indexed_once(ws: Workspace, n: int) -> None:
    """n recordings, each in the index once: one document per turn, no more."""
    ids = ws.transcript_ids()
    assert len(ids) == n
    assert search_index.indexed_ids(ws) == set(ids)
    turns = sum(len(store.load(ws, i).turns) for i in ids)
    assert search_index.doc_count(ws) == turns
    with Ledger.of(ws) as led:
        rows = led.rows()
    assert [r.stage for r in rows] == ["indexed"] * n
    assert all(r.owner is None for r in rows)


@pytest.fixture(scope="module")
def local_run(inputs, tmp_path_factory) -> Workspace:
    ws = Workspace(tmp_path_factory.mktemp("local"))
    r = confindex("-v", "fetch", *inputs, "--executor", "local", "-w", str(ws.root))
    assert r.returncode == 0, r.stderr
    # -v tells what happens: the run, the model, each recording's stages and outcome.
    info = [ln for ln in r.stderr.splitlines() if ln.startswith("info: ")]
    assert "info: run 1: 4 recording(s) on this machine" in info
    assert any(ln.startswith("info: model ") and " on cpu (" in ln for ln in info)
    assert sum(ln.endswith(": transcribe") for ln in info) == 4
    assert sum(": done (" in ln and ln.endswith(" turns)") for ln in info) == 4
    return ws


def test_two_workers_index_each_once_with_the_same_words_and_turns(inputs, local_run, tmp_path):
    ws = Workspace(tmp_path / "ws")
    r = confindex("-v", "fetch", *inputs, "--workers", "2", "--json", "-w", str(ws.root))
    assert r.returncode == 0, r.stderr
    assert "info: run 1: 4 recording(s) on the Dask cluster" in r.stderr
    assert r.stderr.count(": sent to the Dask cluster") == 4
    report = json.loads(r.stdout)
    assert report["summary"]["done"] == 4 and report["summary"]["failed"] == 0
    assert len({x["worker"] for x in report["recordings"]}) == 2  # both workers transcribed
    assert_indexed_once(ws, 4)
    assert content(ws) == content(local_run)
    # The downloads happened in the workers' temporary folders, not in the workspace.
    assert not list(ws.media.glob("*")) or all(p.is_dir() for p in ws.media.iterdir())
    hits = json.loads(confindex("search", "--json", "country", "-w", str(ws.root)).stdout)
    assert [h["recording_id"] for h in hits["hits"]][:1] == [
        i for i in ws.transcript_ids() if i.startswith("jfk")
    ]
    # Running it again does nothing twice.
    again = json.loads(
        confindex("fetch", *inputs, "--workers", "2", "--json", "-w", str(ws.root)).stdout
    )
    assert again["summary"]["done"] == 0 and again["summary"]["skipped"] == 4
    assert_indexed_once(ws, 4)


def _workers_of(pid: int) -> list:
    """The Dask worker processes under a `confindex fetch --workers N` process."""
    me = psutil.Process(pid)
    out = []
    for child in me.children(recursive=True):
        try:
            cmd = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "spawn_main" in cmd or "forkserver" in cmd:
            out.append(child)
    return out


def _wait_for_activity(
    ws: Workspace, proc, activity: str, timeout: float = 180, rows: int = 1
) -> None:
    """Until `rows` ledger rows show `activity` ("transcribing": a worker started the job)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if (ws.state / "ledger.sqlite").exists():
            with Ledger.of(ws) as led:
                if sum(r.activity == activity for r in led.rows()) >= rows:
                    return
    raise AssertionError(f"fewer than {rows} row(s) reached {activity!r} (exit {proc.poll()})")


def test_local_run_subtitles_follow_the_reading_rules(local_run, tmp_path):
    """Issue 15: the real recordings' exports (JFK, Picovoice French, the Russian clip, the
    pyannote sample) read back by srt, webvtt-py and ffmpeg within 2 lines x 42 characters and
    0.8 s per cue; no model run of its own (the local run's workspace)."""
    from test_subtitles import check_exports

    cues = check_exports(local_run, tmp_path)
    assert len(cues) == 4 and all(n >= 2 for n in cues.values()), cues


def test_sigkill_of_a_worker_mid_transcription_still_indexes_each_once(inputs, tmp_path):
    ws = Workspace(tmp_path / "ws")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CONFINDEX_TEST_STAGE_DELAY": "transcribing=4"}
    proc = subprocess.Popen(
        [*CLI, "fetch", *inputs, "--workers", "2", "--json", "-w", str(ws.root)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Both workers have started a job (each announces it; the hook then sleeps 4 s).
        _wait_for_activity(ws, proc, "transcribing", rows=2)
        workers = _workers_of(proc.pid)
        assert len(workers) == 2, [w.cmdline() for w in workers]
        workers[0].send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_no_traceback(err, "confindex fetch --workers 2 (worker killed)")
    assert proc.returncode == 0, err
    assert json.loads(out)["summary"]["done"] == 4
    assert_indexed_once(ws, 4)
    # The killed worker's job ran again elsewhere: one more attempt in the ledger, told once.
    with Ledger.of(ws) as led:
        assert sorted(r.attempts for r in led.rows()) == [1, 1, 1, 2]
    assert err.count("(attempt 2): the worker running it died") == 1, err


def test_sigkill_of_the_client_then_resume_finishes(inputs, tmp_path):
    ws = Workspace(tmp_path / "ws")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CONFINDEX_TEST_STAGE_DELAY": "transcribing=3"}
    proc = subprocess.Popen(
        [*CLI, "fetch", *inputs, "--workers", "2", "-w", str(ws.root)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for_activity(ws, proc, "transcribing")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        # The orphaned worker processes of the killed client's LocalCluster.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    with Ledger.of(ws) as led:
        assert led.counts()["indexed"] < 4
    r = confindex("resume", "--json", "-w", str(ws.root))
    assert r.returncode == 0, r.stderr
    assert_indexed_once(ws, 4)


def test_ctrl_c_cancels_queued_work_and_resume_finishes(inputs, tmp_path):
    ws = Workspace(tmp_path / "ws")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CONFINDEX_TEST_STAGE_DELAY": "transcribing=3"}
    proc = subprocess.Popen(
        [*CLI, "fetch", *inputs, "--workers", "2", "-w", str(ws.root)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C reaches it even when pytest runs in the background of a shell without job
        # control, which starts it (and so this child) with SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        _wait_for_activity(ws, proc, "transcribing")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_no_traceback(err, "confindex fetch --workers 2 (interrupted)")
    assert proc.returncode == 130 and "rerun the same command to resume" in err, err
    with Ledger.of(ws) as led:
        rows = led.rows()
    assert all(r.owner is None for r in rows)  # given back, nothing left claimed
    assert sum(r.stage == "indexed" for r in rows) < 4
    r = confindex("resume", "--workers", "2", "--json", "-w", str(ws.root))
    assert r.returncode == 0, r.stderr
    assert_indexed_once(ws, 4)
    with Ledger.of(ws) as led:
        assert led.last_run()["options"]["executor"] == "dask"  # resume kept --workers 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_scheduler_that_does_not_answer_is_one_line_and_writes_nothing(inputs, tmp_path):
    ws = Workspace(tmp_path / "ws")
    port = _free_port()  # nothing listens there
    r = confindex("fetch", inputs[0], "--scheduler", f"tcp://127.0.0.1:{port}", "-w", str(ws.root))
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"Error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}"
    )
    assert not ws.root.exists()


def test_separate_scheduler_and_two_worker_processes(inputs, local_run, tmp_path):
    dask_cli = Path(sys.executable).with_name("dask")
    if not dask_cli.exists():
        pytest.skip("the dask command is not installed beside this Python")
    sched_file = tmp_path / "scheduler.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    procs = [
        subprocess.Popen(
            [str(dask_cli), "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(sched_file)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [str(dask_cli), "worker", address, "--nthreads", "1", "--no-dashboard",
                     "--host", "127.0.0.1", "--local-directory", str(tmp_path / "dask")],
                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        from distributed import Client

        with Client(address, timeout="30s") as probe:
            probe.wait_for_workers(2, timeout=120)
            workers = set(probe.scheduler_info(n_workers=-1)["workers"])
        ws = Workspace(tmp_path / "ws")
        listing = batch_file(tmp_path, inputs)
        r = confindex(
            "fetch", "--scheduler", address, "-a", str(listing), "--json", "-w", str(ws.root)
        )
        assert r.returncode == 0, r.stderr
        report = json.loads(r.stdout)
        assert report["summary"]["done"] == 4
        # Both `dask worker` processes transcribed (each recording says which worker did it).
        assert {x["worker"] for x in report["recordings"]} == workers
        assert_indexed_once(ws, 4)
        # `dask worker`'s nanny starts workers with OpenBLAS limited to one thread, read when
        # numpy loads (before any job): timings may differ in the last digit from a local run,
        # the words of a clear recording do not.
        jfk = [i for i in ws.transcript_ids() if i.startswith("jfk")]
        assert [t.text for t in store.load(ws, jfk[0]).turns] == [
            t.text for t in store.load(local_run, jfk[0]).turns
        ]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
