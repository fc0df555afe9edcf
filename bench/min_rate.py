"""What the minimum-rate watch (issue 30, H6; `confindex.run.stall`) costs on a fast download.

A loopback HTTP server (its own process, `python -m http.server`) serves one file of MP3 frame
bytes; `confindex.run.fetch.download` (real yt-dlp) fetches it into a fresh workspace with each
variant, interleaved, ROUNDS times. CPU s = user + system of this process (all its threads: the
reader and the watchdog) around the download, beside wall s; the server's CPU is not counted.

- `off`: CONFINDEX_MIN_RATE=0, yt-dlp as it comes (blocks from 1 KiB resized up to 4 MiB);
- `watch`: the default minimum (1024 B/s over 60 s): each response read in 7.5 KiB pieces,
  a watchdog thread ticking every second;
- `watch 1 KiB`: a 8 s window, so the smallest piece (1 KiB), ticking every second;
- `fixed 7.5 KiB blocks`: the other way considered, no watch but yt-dlp held to 7.5 KiB blocks
  (`buffersize` + `noresizebuffer`), so that its progress hook fires every 7.5 KiB.

    python bench/min_rate.py              # 256 MiB, 3 rounds
    python bench/min_rate.py --mib 64 --rounds 5
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

VARIANTS: dict[str, tuple[dict[str, str], dict[str, Any]]] = {
    "off": ({"CONFINDEX_MIN_RATE": "0"}, {}),
    "watch": ({}, {}),
    "watch 1 KiB": ({"CONFINDEX_MIN_RATE_WINDOW": "8"}, {}),
    "fixed 7.5 KiB blocks": (
        {"CONFINDEX_MIN_RATE": "0"},
        {"buffersize": 7680, "noresizebuffer": True},
    ),
}


ENV_NAMES = ("CONFINDEX_MIN_RATE", "CONFINDEX_MIN_RATE_WINDOW")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from confindex.run.fetch import download
    from confindex.store.workspace import Workspace

    tmp = Path(tempfile.mkdtemp(prefix="min-rate-"))
    www = tmp / "www"
    www.mkdir()
    with (www / "talk.mp3").open("wb") as f:
        block = b"\xff\xfb\x90\x00" * (1 << 18)  # 1 MiB
        for _ in range(args.mib):
            f.write(block)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=www,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/talk.mp3"
    for _ in range(100):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
            break
        time.sleep(0.05)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}
    try:
        warm = Workspace(tmp / "ws-warm-up")  # yt-dlp's extractors imported, caches filled
        download(warm, url)
        shutil.rmtree(warm.root)
        for r in range(args.rounds):
            for name, (env, extra) in VARIANTS.items():
                saved = {
                    k: os.environ.get(k)
                    for k in ("CONFINDEX_MIN_RATE", "CONFINDEX_MIN_RATE_WINDOW")
                }
                os.environ.update(env)
                ws = Workspace(tmp / f"ws-{r}-{len(results[name])}-{name.replace(' ', '_')}")
                t0, c0 = time.perf_counter(), time.process_time()
                media = download(ws, url, ydl_extra=dict(extra))
                cpu, wall = time.process_time() - c0, time.perf_counter() - t0
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
                assert media.path.stat().st_size == args.mib << 20
                shutil.rmtree(ws.root)
                results[name].append((cpu, wall))
                print(f"round {r + 1} {name:22} CPU {cpu:6.2f} s  wall {wall:6.2f} s", flush=True)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"\n{args.mib} MiB over loopback, median of {args.rounds} (load {os.getloadavg()[0]:.2f})"
    )
    print("| variant | CPU s | wall s | MiB/s (wall) |\n|---|---|---|---|")
    for name, runs in results.items():
        cpu = statistics.median(c for c, _ in runs)
        wall = statistics.median(w for _, w in runs)
        print(f"| {name} | {cpu:.2f} | {wall:.2f} | {args.mib / wall:.0f} |")


if __name__ == "__main__":
    main()
