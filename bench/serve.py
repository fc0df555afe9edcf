"""`confindex serve` benchmark: /api/search over HTTP against in-process `search()`, and the
time until a 2-hour recording page is interactive in Chromium.

    python bench/serve.py                    # 200,000 turns (built once by bench/search.py's
                                             # generator into /tmp/confindex-bench-200000)
    python bench/serve.py --turns 20000      # a quick run
    python bench/serve.py --queries 50 --page-loads 5

Latency: one `confindex serve` subprocess on 127.0.0.1 (port 0) over the bench archive; for
each query, in turn (interleaved, so both see the same load): `Archive(ws).search(q, limit=10)`
in this process (the call the app makes), then GET /api/search?q=…&limit=10 on a kept-alive
connection (the JSON encoded and decoded: what a client pays). Query types as bench/search.py:
term, AND, phrase, exact, fuzzy, filtered. CPU per search, p95 beside mean: this process's
CPU time for an in-process search; for a request, the server's CPU (every thread's schedstat run
time, read before and after it) plus this client's. Wall times on a busy machine include
waiting for a core; CPU times do not.

Page: a synthetic 2-hour recording (1,000 turns, ~20,000 words) in a small workspace of its
own, opened N times in a fresh Chromium page (Debian's /usr/bin/chromium via Playwright);
"interactive" is the `confindex-ready` mark the page's script sets once every word can be
clicked (after DOMContentLoaded), and a word click → highlight round trip is checked after.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search as bench_search  # bench/search.py: the synthetic archive and its queries

from confindex.api import Archive
from confindex.search import index
from confindex.store.transcript import save
from confindex.store.workspace import Workspace

CHROMIUM = "/usr/bin/chromium"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of `pid`, to the nanosecond (schedstat's run time; /proc/PID/stat
    counts 10 ms ticks, too coarse for one request)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError, IndexError, ValueError):  # a thread that just ended
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
    return total / 1e9


def start(ws: Workspace) -> tuple[subprocess.Popen, str, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "confindex", "serve", "-w", str(ws.root), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    line = proc.stdout.readline() if proc.stdout else ""
    m = re.search(r"http://([\d.]+):(\d+)/", line)
    if not m:
        proc.kill()
        raise SystemExit(f"serve did not start: {line!r}")
    return proc, m.group(1), int(m.group(2))


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(2)
    proc.wait(timeout=30)


def build_archive(cache: Path, turns: int) -> tuple[Workspace, bench_search.Corpus]:
    root = cache / f"confindex-bench-{turns}"
    ws = Workspace(root).ensure()
    corpus = bench_search.Corpus(turns)
    meta_path = root / "bench-build.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if not index.exists(ws) or meta.get("turns") != turns:
        print(f"building {turns:,} turns into {root} (once) …", flush=True)
        t0 = time.perf_counter()
        n = index.build(ws, iter(corpus), total=corpus.recordings)
        meta_path.write_text(json.dumps({"turns": n, "build_s": time.perf_counter() - t0}))
    corpus.samples = []
    for i in range(0, corpus.recordings, max(1, corpus.recordings // 100)):
        corpus.recording(i)
    return ws, corpus


def latency(ws: Workspace, corpus: bench_search.Corpus, n: int) -> dict[str, object]:
    queries = bench_search.make_queries(corpus, n)
    archive = Archive(ws)
    proc, host, port = start(ws)
    conn = http.client.HTTPConnection(host, port, timeout=60)

    def http_search(q: str) -> dict:
        conn.request("GET", f"/api/search?q={quote(q)}&limit=10")
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, body[:200]
        return json.loads(body)

    out: dict[str, object] = {}
    try:
        for kind, qs in queries.items():
            for q, _ in qs[:3]:  # warm both sides
                archive.search(q, limit=10)
                http_search(q)
            local, local_cpu, remote, remote_cpu = [], [], [], []
            for q, _ in qs:
                c0, t0 = time.process_time(), time.perf_counter()
                r = archive.search(q, limit=10)
                local.append((time.perf_counter() - t0) * 1000)
                local_cpu.append((time.process_time() - c0) * 1000)
                # CPU of one request: the server's (all its threads) + this client's, so that
                # wall times under load (the server waiting for a core) can be told apart.
                srv0 = cpu_seconds(proc.pid)
                c1, t1 = time.process_time(), time.perf_counter()
                d = http_search(q)
                remote.append((time.perf_counter() - t1) * 1000)
                client = time.process_time() - c1
                remote_cpu.append((cpu_seconds(proc.pid) - srv0 + client) * 1000)
                assert d["total"] == r.total and len(d["hits"]) == len(r.hits), q
            out[kind] = {
                "inproc_p50_ms": round(statistics.median(local), 1),
                "inproc_p95_ms": round(pct(local, 95), 1),
                "http_p50_ms": round(statistics.median(remote), 1),
                "http_p95_ms": round(pct(remote, 95), 1),
                "p95_ratio": round(pct(remote, 95) / max(pct(local, 95), 1e-9), 2),
                "inproc_cpu_mean_ms": round(statistics.mean(local_cpu), 1),
                "http_cpu_mean_ms": round(statistics.mean(remote_cpu), 1),
                "inproc_cpu_p95_ms": round(pct(local_cpu, 95), 1),
                "http_cpu_p95_ms": round(pct(remote_cpu, 95), 1),
                "cpu_p95_ratio": round(pct(remote_cpu, 95) / max(pct(local_cpu, 95), 1e-9), 2),
            }
            print(kind, out[kind], flush=True)
    finally:
        conn.close()
        stop(proc)
    return out


def two_hour_workspace(root: Path) -> tuple[Workspace, str, int]:
    ws = Workspace(root).ensure()
    corpus = bench_search.Corpus(1000)
    t = corpus.recording(7, 1000)
    t.recording.kind = "file"
    t.recording.source = str(root / "no-such-media.ogg")  # the page shows its "no media" note
    t.recording.extractor = t.recording.extractor_id = None
    save(ws, t)
    index.rebuild(ws)
    words = sum(len(x.words) for x in t.turns)
    return ws, t.id, words


def page_load(root: Path, loads: int) -> dict[str, object]:
    from playwright.sync_api import sync_playwright

    ws, rid, words = two_hour_workspace(root)
    proc, host, port = start(ws)
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    ready, dcl, clicks, sizes = [], [], [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
            for i in range(loads + 1):  # the first load warms the server's transcript cache
                page = browser.new_page()
                t0 = time.perf_counter()
                page.goto(f"http://{host}:{port}/r/{rid}?t=3600")
                page.wait_for_function(
                    "() => performance.getEntriesByName('confindex-ready').length"
                )
                wall = (time.perf_counter() - t0) * 1000
                nav = page.evaluate(
                    """() => {const n = performance.getEntriesByType('navigation')[0];
                    return {ready: performance.getEntriesByName('confindex-ready')[0].startTime,
                            dcl: n.domContentLoadedEventEnd, size: n.transferSize};}"""
                )
                # A click on a word far down the page highlights it (one delegated listener):
                # the handler's time, measured in the page.
                click = page.evaluate(
                    """(i) => {
                    const w = document.querySelectorAll('#transcript p span')[i];
                    const t0 = performance.now();
                    w.click();
                    const ms = performance.now() - t0;
                    return w.classList.contains('now') ? ms : -1;
                }""",
                    words - 50,
                )
                assert click >= 0, "the clicked word was not highlighted"
                page.close()
                if i == 0:
                    continue
                ready.append(nav["ready"])
                dcl.append(nav["dcl"])
                clicks.append(click)
                sizes.append(nav["size"])
                print(f"load {i}: ready {nav['ready']:.0f} ms (wall {wall:.0f} ms)", flush=True)
            browser.close()
    finally:
        stop(proc)
    return {
        "words": words,
        "html_kb": round(statistics.median(sizes) / 1024),
        "interactive_ms_median": round(statistics.median(ready)),
        "interactive_ms_max": round(max(ready)),
        "dcl_ms_median": round(statistics.median(dcl)),
        "click_to_highlight_ms_median": round(statistics.median(clicks)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("cache", nargs="?", default="/tmp", help="where the bench archive is kept")
    ap.add_argument("--turns", type=int, default=200_000)
    ap.add_argument("--queries", type=int, default=100, help="queries per type")
    ap.add_argument("--page-loads", type=int, default=5)
    ap.add_argument("--no-page", action="store_true", help="skip the Chromium page load")
    ap.add_argument("--no-latency", action="store_true", help="only the page load")
    args = ap.parse_args()

    report: dict[str, object] = {"loadavg_start": os.getloadavg()[0]}
    if not args.no_latency:
        ws, corpus = build_archive(Path(args.cache), args.turns)
        report["turns"] = index.doc_count(ws)
        report["latency"] = latency(ws, corpus, args.queries)
    if not args.no_page and Path(CHROMIUM).exists():
        report["page"] = page_load(Path(args.cache) / "confindex-bench-2h-page", args.page_loads)
    report["loadavg_end"] = os.getloadavg()[0]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
