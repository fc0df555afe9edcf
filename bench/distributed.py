"""Executors benchmark: the same batch with `--executor local`, Dask with 1 worker and Dask with
2 workers, interleaved, each a fresh `confindex fetch` process in a fresh workspace.

Builds N clips (default 6 × 40 s) from the real recordings in ../shared/data (as bench/bulk.py
does), then runs the variants in rounds (default 2; the order rotates each round) and prints,
per variant, the median wall seconds and CPU seconds (user + system of the CLI process and all
its children: the Dask scheduler thread, nannies and worker processes), and the Dask overhead
with one worker against local. It also times the client's share per recording — `publish`
(transcript, exports, index, ledger) — and from the measured per-recording job times gives a
paper estimate of throughput with N workers (one per GPU): the client publishes one recording
at a time, so N workers keep it busy until N ≈ job time / publish time.

    python bench/distributed.py [--clips 6] [--clip-seconds 40] [--rounds 2] [--diarize]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bulk import build_clips

CLI = [sys.executable, "-c", "from confindex.cli import main; main()"]
VARIANTS = {
    "local": ["--executor", "local"],
    "dask-1": ["--workers", "1"],
    "dask-2": ["--workers", "2"],
}


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_variant(name: str, clips: list[Path], ws: Path, diarize: bool) -> dict:
    args = [*CLI, "fetch", *map(str, clips), *VARIANTS[name], "--json", "-w", str(ws)]
    if not diarize:
        args.append("--no-diarize")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    c0, t0 = cpu_children(), time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=env)
    wall, cpu = time.perf_counter() - t0, cpu_children() - c0
    if proc.returncode != 0:
        sys.exit(f"{name} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    report = json.loads(proc.stdout)
    recs = report["recordings"]
    if report["summary"]["done"] != len(clips):
        sys.exit(f"{name} did not transcribe every clip: {report['summary']}")
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "audio_s": report["summary"]["audio_seconds"],
        # local: wall time of each recording in the loop; Dask: the job's time on its worker
        "per_recording_s": [r["wall_seconds"] for r in recs],
    }


def publish_seconds(src: Path, dest: Path) -> list[float]:
    """The client's cost per recording: publish each transcript of `src` into a fresh
    workspace (transcript JSON, exports, index add), as the Dask client does."""
    from confindex.store import transcript as store
    from confindex.store.publish import publish
    from confindex.store.workspace import Workspace

    out = []
    s, d = Workspace(src), Workspace(dest)
    for t in store.iter_all(s):
        t0 = time.perf_counter()
        publish(d, t)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--clip-seconds", type=float, default=40.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--diarize", action="store_true", help="Also diarize (default: off).")
    ap.add_argument(
        "--gpu-speedup",
        type=float,
        default=10.0,
        help="Assumed job-time ratio CPU worker / GPU worker for the paper estimate.",
    )
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="confindex-bench-dist-") as tmp:
        root = Path(tmp)
        (root / "clips").mkdir()
        clips = build_clips(root / "clips", args.clips, args.clip_seconds)
        audio = args.clips * args.clip_seconds
        print(
            f"{len(clips)} clips, {audio:.0f} s of audio; {os.cpu_count()} CPUs; "
            f"load {os.getloadavg()[0]:.1f}; diarize {args.diarize}",
            flush=True,
        )
        names = list(VARIANTS)
        runs: dict[str, list[dict]] = {n: [] for n in names}
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                res = run_variant(name, clips, root / f"ws-{name}-{r}", args.diarize)
                runs[name].append(res)
                print(
                    f"round {r + 1} {name:>6}: wall {res['wall_s']:7.1f} s  "
                    f"cpu {res['cpu_s']:7.1f} s  load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
        summary = {}
        for name in names:
            walls = [x["wall_s"] for x in runs[name]]
            cpus = [x["cpu_s"] for x in runs[name]]
            per = [s for x in runs[name] for s in x["per_recording_s"]]
            summary[name] = {
                "wall_s_median": round(statistics.median(walls), 2),
                "cpu_s_median": round(statistics.median(cpus), 2),
                "per_recording_s_median": round(statistics.median(per), 2),
                "realtime": round(audio / statistics.median(walls), 2),
            }
        pub = publish_seconds(root / f"ws-local-{args.rounds - 1}", root / "ws-publish")
        p = statistics.median(pub)
        loc, d1, d2 = summary["local"], summary["dask-1"], summary["dask-2"]
        overhead = (d1["wall_s_median"] - loc["wall_s_median"]) / loc["wall_s_median"]
        print()
        print(f"{'variant':>8} {'wall s':>8} {'cpu s':>8} {'× realtime':>11} {'s/recording':>12}")
        for name in names:
            s = summary[name]
            print(
                f"{name:>8} {s['wall_s_median']:8.1f} {s['cpu_s_median']:8.1f} "
                f"{s['realtime']:11.2f} {s['per_recording_s_median']:12.2f}"
            )
        print(f"Dask overhead, 1 worker vs local: {overhead * 100:+.1f}% wall")
        print(f"2 workers vs 1: {d1['wall_s_median'] / d2['wall_s_median']:.2f}× throughput")
        print(f"client publish per recording: median {p * 1000:.0f} ms (n={len(pub)})")
        job = d1["per_recording_s_median"]
        per_clip_audio = audio / len(clips)
        print(
            f"\nPaper estimate, {per_clip_audio:.0f}-s recordings, job {job:.1f} s on one CPU "
            f"worker here, job / {args.gpu_speedup:g} on a GPU worker (assumed), client "
            f"publish {p:.2f} s each:"
        )
        gpu_job = job / args.gpu_speedup
        limit = per_clip_audio / p
        for n in (1, 2, 4, 8, 16, 32, 64):
            rate = min(n * per_clip_audio / gpu_job, limit)
            hours = 1000 * 3600 / rate / 3600
            print(
                f"  {n:>3} GPU workers: {rate:8.0f}× realtime, 1,000 h of audio in {hours:6.1f} h"
                + ("  (client-bound)" if rate == limit else "")
            )
        print(f"  client saturates at N ≈ {gpu_job / p:.0f} workers (job / publish time)")
        print(
            json.dumps(
                {
                    "bench": "distributed",
                    "args": vars(args),
                    "summary": summary,
                    "runs": runs,
                    "dask1_overhead": round(overhead, 4),
                    "publish_s_median": round(p, 4),
                }
            )
        )


if __name__ == "__main__":
    main()
