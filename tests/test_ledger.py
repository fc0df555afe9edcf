"""The job ledger alone: stages, atomic claims, dead owners, duplicates, retries (no model)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from confindex.store.ledger import Ledger, NewItem, owner_is_dead


def items(*keys: str, kind: str = "url") -> list[NewItem]:
    return [NewItem(k, k, kind, recording_id=f"rid-{k}") for k in keys]


@pytest.fixture
def led(tmp_path: Path) -> Ledger:
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        yield ledger


def test_add_keeps_order_and_existing_rows(led: Ledger) -> None:
    assert led.add(items("a", "b", "c")) == ["a", "b", "c"]
    row = led.claim_next()
    assert row is not None and row.key == "a"
    led.advance("a", "downloaded", media_path="media/a.ogg")
    # Adding the same inputs again (a rerun) leaves the progress alone.
    assert led.add(items("c", "a", "d")) == ["c", "a", "d"]
    assert [r.key for r in led.rows()] == ["a", "b", "c", "d"]
    assert led.get("a").stage == "downloaded"
    assert led.get("a").media_path == "media/a.ogg"


def test_rows_of_keys_in_work_order_whatever_the_keys(led: Ledger) -> None:
    """Looked up by key (not every row parsed): work order kept, unknown keys ignored, a NUL
    inside a hostile URL's key still found (json_each's values end at a NUL), more keys than
    SQLite's 999 parameters."""
    hostile = "ws://%00@127.0.0.1:1\x00/"
    many = [f"u{i}" for i in range(1200)]
    led.add(items("a", hostile, "c", *many))
    assert led.claim_next(["c"]).key == "c"
    assert led.advance("c", "downloaded")
    assert [r.key for r in led.rows(["c", "nope", hostile, "a"])] == ["a", hostile, "c"]
    assert [r.key for r in led.rows(["c", "a"], stage="downloaded")] == ["c"]
    assert [r.key for r in led.rows(reversed(many))] == many
    assert led.rows([]) == []


def test_wal_mode_and_schema(led: Ledger, tmp_path: Path) -> None:
    led.add(items("a"))
    con = sqlite3.connect(tmp_path / "ledger.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cols = {r[1] for r in con.execute("PRAGMA table_info(jobs)")}
    assert {"key", "stage", "error", "attempts", "owner", "heartbeat", "media_sha256"} <= cols


def test_stages_in_order_and_terminal(led: Ledger) -> None:
    led.add(items("a"))
    assert led.claim_next().key == "a"
    for stage in ("downloaded", "transcribed", "diarized", "indexed"):
        assert led.advance("a", stage)
    r = led.get("a")
    assert r.stage == "indexed" and r.terminal and r.owner is None and r.finished_at
    assert led.claim_next() is None  # finished work is never handed out again
    with pytest.raises(ValueError):
        led.advance("a", "bogus")


def test_only_the_owner_moves_a_row(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path) as one, Ledger(path) as two:
        one.add(items("a", "b"))
        assert one.claim_next().key == "a"
        assert two.claim_next().key == "b"  # "a" is taken
        assert not two.advance("a", "downloaded")
        assert one.get("a").stage == "queued"
        assert two.claim_next() is None
        assert two.pending_elsewhere(["a", "b"]) == 1


def test_stale_heartbeat_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path, owner="otherhost:1:x", stale_after=0.2) as gone, Ledger(path) as me:
        gone.add(items("a"))
        assert gone.claim_next().key == "a"
        me.stale_after = 0.2
        assert me.claim_next() is None
        time.sleep(0.3)
        row = me.claim_next()
        assert row is not None and row.key == "a" and row.attempts == 2


def test_dead_process_rows_are_reaped(tmp_path: Path) -> None:
    """A killed run's claims are released at once (same host), heartbeat or not."""
    path = tmp_path / "l.sqlite"
    code = (
        "import sys,time; from confindex.store.ledger import Ledger, NewItem;"
        f"l=Ledger({str(path)!r}); l.add([NewItem('a','a','url')]); l.claim_next();"
        "print(l.owner, flush=True); time.sleep(60)"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    owner = p.stdout.readline().strip()
    with Ledger(path) as me:
        assert me.get("a").owner == owner
        assert not owner_is_dead(owner)
        assert me.claim_next() is None  # alive: not ours to take
        p.kill()
        p.wait()
        assert owner_is_dead(owner)
        assert me.claim_next().key == "a"


def test_release_all_keeps_finished_stages(led: Ledger) -> None:
    led.add(items("a", "b"))
    led.claim_next()
    led.advance("a", "downloaded")
    led.claim_next()
    assert led.release_all() == 2
    assert [(r.stage, r.owner) for r in led.rows()] == [("downloaded", None), ("queued", None)]


def test_fail_records_reason_stage_and_attempts(led: Ledger) -> None:
    led.add(items("a"))
    led.claim_next()
    led.fail("a", "HTTP Error 404", "download")
    r = led.get("a")
    assert (r.stage, r.error, r.failed_stage, r.attempts) == (
        "failed",
        "HTTP Error 404",
        "download",
        1,
    )
    assert led.claim_next() is None
    assert led.retry_failed() == ["a"]
    assert led.get("a").stage == "queued" and led.get("a").error is None
    led.claim_next()
    assert led.get("a").attempts == 2  # counted over all tries


def test_input_errors_are_failed_from_the_start_and_not_retried(led: Ledger) -> None:
    led.add([NewItem("/x.mp4", "/x.mp4", "file", error="no such file: /x.mp4")])
    r = led.get("/x.mp4")
    assert r.stage == "failed" and r.failed_stage == "input"
    assert led.retry_failed() == []
    # The file appears; the same command again queues it.
    led.add([NewItem("/x.mp4", "/x.mp4", "file")])
    assert led.get("/x.mp4").stage == "queued" and led.get("/x.mp4").error is None


def test_same_content_is_a_duplicate(led: Ledger) -> None:
    led.add(items("a", "b"))
    led.claim_next()
    assert led.record_media("a", media_sha256="f00", recording_id="rid-a") is None
    led.claim_next()
    assert led.record_media("b", media_sha256="f00", recording_id="rid-b") == "rid-a"
    b = led.get("b")
    assert b.stage == "duplicate" and b.duplicate_of == "rid-a" and b.owner is None
    assert led.counts()["duplicate"] == 1


def test_same_recording_id_under_another_url_is_a_duplicate(led: Ledger) -> None:
    led.add([NewItem("https://youtu.be/X", "https://youtu.be/X", "url", recording_id="yt-X")])
    led.add([NewItem("https://y.com/?v=X", "https://y.com/?v=X", "url", recording_id="yt-X")])
    assert led.get("https://y.com/?v=X").stage == "duplicate"


def test_force_reset(led: Ledger) -> None:
    led.add(items("a"))
    led.claim_next()
    led.advance("a", "indexed")
    assert led.reset(["a"]) == 1
    assert led.get("a").stage == "queued"


def test_runs_store_options(led: Ledger) -> None:
    run = led.start_run({"model": None, "asr": {"language": "fr"}})
    led.finish_run(run, {"done": 3})
    last = led.last_run()
    assert last["options"]["asr"]["language"] == "fr" and last["summary"] == {"done": 3}


def _claim_all(path: str) -> list[str]:
    got = []
    with Ledger(Path(path)) as led:
        while (row := led.claim_next()) is not None:
            got.append(row.key)
            led.advance(row.key, "indexed")
    return got


def test_concurrent_processes_claim_each_row_once(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path) as led:
        led.add(items(*(f"k{i}" for i in range(60))))
    with ProcessPoolExecutor(3) as pool:
        results = list(pool.map(_claim_all, [str(path)] * 3))
    claimed = [k for r in results for k in r]
    assert sorted(claimed) == sorted(f"k{i}" for i in range(60))  # each exactly once
    with Ledger(path) as led:
        assert led.counts()["indexed"] == 60


def test_a_new_ledger_opened_by_several_at_once(tmp_path: Path) -> None:
    """Two fetches started together on a new workspace create its ledger at the same moment.
    SQLite calls no busy handler when a new database is turned to WAL: before
    ledger_rows._enter_wal, 12 of 200 such rounds failed at once with "database is locked"
    (a LedgerError saying it had waited 60 s); test_bulk's two fetches at once met it in CI."""
    failures: list[BaseException] = []
    for i in range(200):
        path = tmp_path / str(i) / "ledger.sqlite"
        start = threading.Barrier(4)

        def open_it(path: Path = path, start: threading.Barrier = start) -> None:
            start.wait()
            try:
                Ledger(path).close()
            except Exception as exc:
                failures.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not failures, failures[:3]


def test_owner_is_dead_for_our_pid_with_another_token() -> None:
    assert owner_is_dead(f"{os.uname().nodename}:{os.getpid()}:old", me="x:1:new")
    assert not owner_is_dead("elsewhere:1:x")
