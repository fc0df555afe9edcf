"""The library page (`confindex serve`'s home) on a big archive: how long a page takes with
10,000 recordings, sorted, filtered and paged (issue 31).

    python bench/library.py                      # 10,000 recordings (built once, kept in /tmp)
    python bench/library.py --recordings 2000 --rounds 5

The archive: N synthetic transcripts (two short turns each; channel, date, duration, speakers,
languages and flags varying with the number), saved by the real `store.transcript.save` and
indexed by the real index (the library reads the index's per-recording metadata), built once
into /tmp/confindex-bench-library-N. Then one `confindex serve` subprocess on 127.0.0.1 and,
for each view in turn (interleaved, so all see the same load), GET on a kept-alive connection:
the first request after start (rows built from recordings.json) is reported apart; then wall
time per view, median and p95 over the rounds, beside the in-process `select()` CPU time for
the same view (the filter + sort + slice alone).
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from confindex.search import index
from confindex.store.transcript import (
    Flag,
    Provenance,
    Recording,
    Transcript,
    Turn,
    Word,
    save,
)
from confindex.store.workspace import Workspace
from confindex.web.library import Catalog, View, row_of, select

CHANNELS = ("ESA", "CNES", "NASA", "JAXA", "ISRO")
PEOPLE = ("Ada Lovelace", "Hedy Lamarr", "Katherine Johnson", "Valentina Terechkova")
VIEWS = [
    "/",
    "/?page=100",
    "/?sort=title",
    "/?sort=duration&order=asc&page=150",
    "/?sort=flags",
    "/?speaker=Hedy",
    "/?channel=CNES&flagged=1",
    "/?lang=fr&from=2022&to=2023-06",
    "/?title=talk+0042",
]


def transcript(i: int) -> Transcript:
    lang = "fr" if i % 3 == 0 else "en"
    text = f"Talk {i} about orbital mechanics and launch windows."
    toks = text.split()
    words = [
        Word(1.0 + k * 0.5, 1.4 + k * 0.5, " " + w, 0.9, "SPEAKER_00") for k, w in enumerate(toks)
    ]
    turns = [Turn(0, 1.0, 1.0 + len(toks) * 0.5, "SPEAKER_00", text, lang, words)]
    flags = [Flag("lowconf", 1.0, 2.0, 0.7, "low")] if i % 11 == 0 else []
    rec = Recording(
        id=f"talk-{i:05d}",
        title=f"Synthetic talk {i:05d}",
        source=f"https://example.org/{i}.mp4",
        channel=CHANNELS[i % len(CHANNELS)],
        upload_date=f"{2015 + i % 10}-{1 + i % 12:02d}-{1 + i % 28:02d}",
        duration=300.0 + (i * 37) % 7200,
    )
    return Transcript(
        recording=rec,
        provenance=Provenance(confindex_version="bench"),
        language=lang,
        duration=rec.duration or 0.0,
        turns=turns,
        speakers={"SPEAKER_00": PEOPLE[i % len(PEOPLE)]},
        flags=flags,
    )


def build(root: Path, n: int) -> Workspace:
    ws = Workspace(root).ensure()
    have = len(ws.transcript_ids())
    if have < n:
        t0 = time.perf_counter()
        for i in range(have, n):
            save(ws, transcript(i))
        print(f"saved {n - have} transcripts in {time.perf_counter() - t0:.1f} s")
    if not index.exists(ws) or len(index.load_recordings(ws)) != n:
        t0 = time.perf_counter()
        index.rebuild(ws)
        print(f"indexed {n} recordings in {time.perf_counter() - t0:.1f} s")
    return ws


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recordings", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    ws = build(Path(f"/tmp/confindex-bench-library-{args.recordings}"), args.recordings)
    rows = Catalog([row_of(m) for m in index.load_recordings(ws).values()])
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "confindex", "serve", "-w", str(ws.root), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        m = re.search(r"http://(127\.0\.0\.1):(\d+)/", line)
        if not m:
            print("serve did not start:", line, proc.stderr.read() if proc.stderr else "")
            return 1
        conn = http.client.HTTPConnection(m.group(1), int(m.group(2)), timeout=60)

        def get(path: str) -> tuple[float, int]:
            t0 = time.perf_counter()
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200, (path, resp.status, body[:200])
            return time.perf_counter() - t0, len(body)

        first, size = get("/")
        print(f"{args.recordings:,} recordings; first page after start (rows built): "
              f"{first * 1000:.0f} ms, {size:,} bytes")  # fmt: skip
        wall: dict[str, list[float]] = {v: [] for v in VIEWS}
        cpu: dict[str, list[float]] = {v: [] for v in VIEWS}
        for _ in range(args.rounds):
            for v in VIEWS:
                wall[v].append(get(v)[0])
                params = dict(x.split("=", 1) for x in v[2:].split("&") if "=" in x)
                params = {k: val.replace("+", " ") for k, val in params.items()}
                c0 = time.process_time()
                select(rows, View.of(params))
                cpu[v].append(time.process_time() - c0)
        print(f"{'view':40} {'wall p50':>9} {'p95':>7} {'select CPU p50':>15}")
        for v in VIEWS:
            w = sorted(wall[v])
            p95 = w[min(len(w) - 1, int(0.95 * len(w)))]
            print(f"{v:40} {statistics.median(w) * 1000:7.1f}ms {p95 * 1000:5.1f}ms "
                  f"{statistics.median(cpu[v]) * 1000:13.1f}ms")  # fmt: skip
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
