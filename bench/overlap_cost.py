"""What overlapped-speech detection (issue 29, speech/overlap.py) adds to a default `fetch`.

The real `confindex fetch` CLI on the 10-min real-speech file of bench/transcription.py, once
per variant per round, rounds interleaved (a burst of load from elsewhere hits every variant
alike). Each variant is a copy of this tree's `src` with DiarizeOptions defaults changed, so
the product is run exactly as users run it. CPU s (user + system, os.wait4) beside wall s.

    python bench/overlap_cost.py                        # off vs on (the shipped default)
    python bench/overlap_cost.py --variant "step1=overlap_step: float = 1.0" --rounds 2
    python bench/overlap_cost.py --stage      # only the overlap step, in-process, per step

Whole-fetch CPU moves by +-5% between runs of the same tree on shared cores, more than the
overlap step costs; --stage measures that step alone (CPU s of overlap.add_overlap on the
same file, after one warm-up), to set beside the fetch figures.

A variant is NAME=LINE: the `DiarizeOptions` line starting like LINE (up to its `=`) is
replaced by LINE in speech/diarize.py of that copy.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import transcription as tb

ROOT = Path(__file__).resolve().parents[1]


def tree(dest: Path, line: str | None) -> str:
    """A copy of src with one DiarizeOptions default line replaced; its path for PYTHONPATH."""
    shutil.copytree(ROOT / "src", dest, ignore=shutil.ignore_patterns("__pycache__"))
    if line:
        path = dest / "confindex" / "speech" / "diarize.py"
        key = line.split("=", 1)[0].strip()
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        hits = [i for i, x in enumerate(lines) if x.strip().startswith(key)]
        if len(hits) != 1:
            sys.exit(f"{key!r} is not one line of speech/diarize.py ({len(hits)} found)")
        indent = lines[hits[0]][: len(lines[hits[0]]) - len(lines[hits[0]].lstrip())]
        lines[hits[0]] = f"{indent}{line}\n"
        path.write_text("".join(lines), encoding="utf-8")
    return str(dest)


def stage(audio_path: Path, rounds: int) -> dict[str, Any]:
    """CPU s of the overlap step alone (segmentation again + reconcile) at each window step,
    on the primary segments of one default diarization of the file."""
    import time
    from dataclasses import replace

    from confindex.speech import audio, diarize, overlap

    samples = audio.decode(audio_path)
    opts = diarize.DiarizeOptions()
    c0 = time.process_time()
    primary = diarize.diarize_with_voices(samples, opts).primary or []
    out: dict[str, Any] = {"diarize_cpu_s": round(time.process_time() - c0, 2)}
    for step in (0.5, 1.0):
        o = replace(opts, overlap_step=step)
        overlap.add_overlap(primary, samples, o)  # warm-up: the ONNX session loads once
        cpu = []
        for _ in range(rounds):
            c0 = time.process_time()
            overlap.add_overlap(primary, samples, o)
            cpu.append(round(time.process_time() - c0, 2))
        out[f"overlap_step_{step}_cpu_s"] = cpu
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", action="store_true", help="only the overlap step, in-process")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=LINE")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    variants: dict[str, str | None] = {
        "overlap off": "overlap: bool = False",
        "overlap on (default)": None,
    }
    for v in args.variant:
        name, _, line = v.partition("=")
        variants[name] = line
    with tempfile.TemporaryDirectory(prefix="confindex-ovcost-") as tmp_s:
        tmp = Path(tmp_s)
        audio = tmp / "long.wav"
        secs = tb.build_audio(audio, args.minutes * 60)
        print(f"audio {secs:.0f} s; {tb.machine()}", file=sys.stderr)
        if args.stage:
            print(json.dumps({"audio_s": round(secs, 1)} | stage(audio, args.rounds)))
            return 0
        srcs = {
            name: tree(tmp / f"src{i}", line) for i, (name, line) in enumerate(variants.items())
        }
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
        for r in range(args.rounds):
            for i, name in enumerate(variants):
                res = tb.fetch(audio, tmp / f"ws{i}-{r}", srcs[name])
                brief = {k: v for k, v in res.items() if k not in ("words", "text", "languages")}
                print(f"  round {r + 1} {name}: {json.dumps(brief)}", file=sys.stderr)
                runs[name].append(res)
    base = statistics.median(x["cpu_s"] for x in runs["overlap off"])
    table = {}
    for name, rs in runs.items():
        cpu = statistics.median(x["cpu_s"] for x in rs)
        table[name] = {
            "cpu_s": [x["cpu_s"] for x in rs],
            "wall_s": [x["wall_s"] for x in rs],
            "diarize_s": [x["diarize_s"] for x in rs],
            "load": [x["load"] for x in rs],
            "median_cpu_over_off": round(cpu / base, 3),
            "same_words_as_off": rs[0]["words"] == runs["overlap off"][0]["words"],
        }
    if args.json:
        print(json.dumps({"audio_s": round(secs, 1), "variants": table}, indent=1))
        return 0
    print(f"\n{secs:.0f} s of audio; {tb.machine()}")
    print(f"{'variant':24} {'CPU s (rounds)':>22} {'wall s':>18} {'CPU / off':>9}  same words")
    for name, row in table.items():
        cpu = " ".join(f"{c:.1f}" for c in row["cpu_s"])
        wall = " ".join(f"{c:.0f}" for c in row["wall_s"])
        print(f"{name:24} {cpu:>22} {wall:>18} {row['median_cpu_over_off']:9.3f}  "
              f"{row['same_words_as_off']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
