"""Citation timing on real speech: does each hit cite the second the words are spoken?

    python bench/mention_timing.py                         # before = main's code, after = this tree
    python bench/mention_timing.py --before-src /tmp/old/src --rounds 3

`../shared/data/fr/radiofrance_smartphone.mp3` (178 s of French radio, several voices) is
transcribed ONCE by this tree's `confindex fetch` (embedded base model) into
CACHE/confindex-bench-radio/; `.silver.words.json` (Whisper medium word timings) is the
reference. Every variant searches the SAME transcript, each with its own index, in its own
subprocess (PYTHONPATH = its `src/`), interleaved: before, after, before, after, …

The reference moments are found by an independent regex over accent-folded words (not by
confindex's analysis). Printed per variant: reference moments found within 2 s (recall), the
same restricted to moments the base model also recognised (what search can find at all),
mean / max time error of the closest hit, cited seconds more than 2 s away from every
reference moment of their query (stray), hits, and the search latency (wall and
CPU ms per query, p50 / p95, top 50 with highlights and links).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO.parent / "shared" / "data" / "fr" / "radiofrance_smartphone.mp3"
TOLERANCE = 2.0  # `confindex eval search --timing`'s default

# (query, the spoken words as regexes over folded words, in order): names, inflected forms,
# unaccented forms, two-word phrases and numbers — the queries of tests/test_mentions_real.py.
QUERIES: list[tuple[str, list[str]]] = [
    ("Nicolas", [r"nicolas"]),
    ("smartphone", [r"smartphones?"]),
    ("objet technique", [r"objets?", r"techniques?"]),
    ('"objet technique"', [r"objets?", r"techniques?"]),
    ('"objets techniques"', [r"objets?", r"techniques?"]),
    ("inedit", [r"inedite?s?"]),
    ("dependance", [r"dependances?"]),
    ('"rapport inedit"', [r"rapports?", r"inedite?s?"]),
    ("telephone", [r"telephones?"]),
    ("voiture", [r"voitures?"]),
    ("diabolique", [r"diaboliques?"]),
    ("merveilleux", [r"merveilleu(x|se|ses)"]),
    ('"écran tactile"', [r"ecrans?", r"tactiles?"]),
    ("mome", [r"momes?"]),
    ("rejet", [r"rejets?"]),
    ("icone", [r"icones?"]),
    ("économiste", [r"economistes?"]),
    ("sentier", [r"sentiers?"]),
    ("bagnole", [r"bagnoles?"]),
    ("interface", [r"interfaces?"]),
    ('"navigation web"', [r"navigations?", r"web"]),
    ("vingt ans", [r"(20|vingt)", r"ans"]),
    ('"20 ans"', [r"(20|vingt)", r"ans"]),
    ("applications", [r"applications?"]),
    ("humanité", [r"humanites?"]),
]


def fold(w: str) -> str:
    w = unicodedata.normalize("NFKD", w.lower())
    w = "".join(c for c in w if not unicodedata.combining(c))
    return re.sub(r"^[a-z]{1,2}'", "", re.sub(r"[^\w']", "", w.replace("’", "'")))


def find(words: list[tuple[str, float]], pattern: list[str]) -> list[float]:
    """Start times of each place where the folded words match the patterns in a row."""
    rx = [re.compile(p + r"\Z") for p in pattern]
    return [
        words[i][1]
        for i in range(len(words) - len(rx) + 1)
        if all(r.match(words[i + k][0]) for k, r in enumerate(rx))
    ]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


# --- worker: runs under one variant's PYTHONPATH ----------------------------------------------


def worker(ws_dir: str) -> None:
    """Search every query in ws_dir with whichever confindex is importable; JSON on stdout."""
    from confindex.search.hits import search
    from confindex.store.workspace import Workspace

    ws = Workspace(Path(ws_dir))
    search(ws, "Nicolas", limit=50)  # builds the index on the first run, opens the searcher
    out = {}
    for query, _ in QUERIES:
        c0, t0 = time.process_time(), time.perf_counter()
        res = search(ws, query, limit=50)
        wall, cpu = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
        times = []
        for hit in res.hits:
            mentions = getattr(hit, "mentions", None) or []  # before: one time per turn
            times += [m.time for m in mentions] or [hit.time]
        out[query] = {"times": sorted(times), "hits": len(res.hits), "wall": wall, "cpu": cpu}
    json.dump(out, sys.stdout)


# --- driver -----------------------------------------------------------------------------------


def transcribe(cache: Path) -> Path:
    """The radio clip's transcript, made once by this tree's CLI (the model is the same for all)."""
    ws = cache / "confindex-bench-radio"
    if not list((ws / "transcripts").glob("*.json")):
        print(f"transcribing {MEDIA.name} into {ws} (once) …", flush=True)
        env = dict(os.environ, HF_HUB_OFFLINE="1")
        subprocess.run(
            [sys.executable, "-m", "confindex", "-w", str(ws), "fetch", str(MEDIA)],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
    return ws


def score(result: dict, ref: list[tuple[str, float]], said: list[tuple[str, float]]) -> dict:
    moments = found = rec_moments = rec_found = stray = 0
    errors: list[float] = []
    for query, pattern in QUERIES:
        times = result[query]["times"]
        recognised = find(said, pattern)
        refs = find(ref, pattern)
        # A cited second more than 2 s from every moment the reference says the words.
        stray += sum(all(abs(t - r) > TOLERANCE for r in refs) for t in times)
        for r in refs:
            err = min((abs(t - r) for t in times), default=float("inf"))
            heard = any(abs(r - s) <= TOLERANCE for s in recognised)
            moments += 1
            rec_moments += heard
            if err <= TOLERANCE:
                found += 1
                rec_found += heard
                errors.append(err)
    wall = [v["wall"] for v in result.values()]
    cpu = [v["cpu"] for v in result.values()]
    return {
        "moments": moments,
        "recall": found / moments,
        "recognised_moments": rec_moments,
        "recall_recognised": rec_found / max(1, rec_moments),
        "mean_error_s": statistics.mean(errors) if errors else None,
        "max_error_s": max(errors) if errors else None,
        "hits": sum(v["hits"] for v in result.values()),
        "mention_times": sum(len(v["times"]) for v in result.values()),
        "stray_times": stray,
        "wall_p50_ms": statistics.median(wall),
        "wall_p95_ms": pct(wall, 95),
        "cpu_p50_ms": statistics.median(cpu),
        "cpu_p95_ms": pct(cpu, 95),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("cache", nargs="?", default="/tmp", help="where the transcript is kept")
    ap.add_argument("--before-src", help="src/ of the 'before' code (default: git main)")
    ap.add_argument("--after-src", default=str(REPO / "src"))
    ap.add_argument("--before-ref", default="main", help="git ref exported when no --before-src")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker)
        return
    if not MEDIA.is_file():
        sys.exit(f"{MEDIA} is missing (../shared/data beside the repository)")
    cache = Path(args.cache)
    src_ws = transcribe(cache)
    (t_path,) = (src_ws / "transcripts").glob("*.json")
    t = json.loads(t_path.read_text(encoding="utf-8"))
    said = [(fold(w["text"]), float(w["start"])) for tn in t["turns"] for w in tn["words"]]
    silver = json.loads(MEDIA.with_suffix(".silver.words.json").read_text(encoding="utf-8"))
    ref = [(fold(w["text"]), float(w["start"])) for w in silver]

    tmp = Path(tempfile.mkdtemp(prefix="mention-timing-"))
    before_src = args.before_src
    if before_src is None:  # the 'before' code: `git archive` of main's src/
        arch = subprocess.run(
            ["git", "-C", str(REPO), "archive", args.before_ref, "src"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=arch, check=True)
        before_src = str(tmp / "src")
    variants = {"before": before_src, "after": args.after_src}
    for name in variants:  # each its own workspace: same transcript, its own index schema
        shutil.copytree(src_ws / "transcripts", tmp / name / "transcripts")
    print(f"load average {os.getloadavg()[0]:.1f} (2 cores shared)", flush=True)
    runs: dict[str, list[dict]] = {n: [] for n in variants}
    for rnd in range(args.rounds):
        for name, src in variants.items():
            env = dict(os.environ, PYTHONPATH=src, HF_HUB_OFFLINE="1")
            env.pop("CONFINDEX_STRICT_TIMES", None)
            out = subprocess.run(
                [sys.executable, __file__, "--worker", str(tmp / name)],
                check=True,
                capture_output=True,
                text=True,
                env=env,
            ).stdout
            runs[name].append(score(json.loads(out), ref, said))
            s = runs[name][-1]
            print(
                f"round {rnd + 1} {name:6}  recall {s['recall']:.2f} "
                f"(recognised {s['recall_recognised']:.2f} of {s['recognised_moments']}) "
                f"of {s['moments']} moments; error mean {s['mean_error_s']:.2f} / "
                f"max {s['max_error_s']:.2f} s; {s['mention_times']} cited times in "
                f"{s['hits']} hits, {s['stray_times']} > 2 s from any reference; "
                f"wall p50/p95 {s['wall_p50_ms']:.1f}/{s['wall_p95_ms']:.1f} "
                f"ms, CPU {s['cpu_p50_ms']:.1f}/{s['cpu_p95_ms']:.1f} ms",
                flush=True,
            )
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(json.dumps(runs))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
