"""Same transcripts from two source trees: words, times, turns, speakers and flags.

A refactoring check, not a benchmark: `confindex fetch` (default options, or the ones after
`--`) of a few real clips with each source tree (same venv, each in its own subprocess and
workspace), then every transcript compared field by field with provenance left out (it names
versions, times and the engine, which may change with the schema). Prints one line per clip and
exits 1 when any differs.

    cp -r src /tmp/before_src                                    # before the change
    python bench/identical.py --record /tmp/ref --src /tmp/before_src    # reference workspace
    python bench/identical.py --reference /tmp/ref               # this tree against it
    python bench/identical.py --before /tmp/before_src           # both trees, now
    python bench/identical.py --reference /tmp/ref -- --no-diarize    # other fetch options

Keep the clip list short (the default is four clips, about 2 minutes of audio): each tree
transcribes and diarizes all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CLIPS = [
    "en/jfk.flac",
    "fr/picovoice_test_fr.wav",
    "diar/pyannote_sample.wav",
    "diar/ami_dev00.wav",
]
# Fields that say how and when a transcript was made, not what it says.
IGNORED = ("provenance", "schema_version")


def fetch(src: Path, workspace: Path, clips: list[Path], options: list[str]) -> float:
    """`confindex fetch` of `clips` into `workspace` with the package in `src`; wall seconds."""
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "confindex", "fetch", *map(str, clips)]
    cmd += ["--workspace", str(workspace), "--quiet", *options]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def transcripts(workspace: Path) -> dict[str, dict[str, Any]]:
    """Transcript dicts of a workspace keyed by the clip's file name, provenance left out."""
    out = {}
    for path in sorted((workspace / "transcripts").glob("*.json")):
        d = json.loads(path.read_text(encoding="utf-8"))
        name = Path(d["recording"]["source"]).name
        out[name] = {k: v for k, v in d.items() if k not in IGNORED}
    return out


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Paths at which two JSON values differ (first few only)."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                found.append(f"{where}.{key}: only in {'after' if key in b else 'before'}")
            else:
                found += differences(a[key], b[key], f"{where}.{key}")
        return found
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} vs {len(b)} items"]
        found = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found += differences(x, y, f"{where}[{i}]")
        return found
    return [] if a == b else [f"{where}: {a!r} vs {b!r}"]


def compare(before: Path, after: Path) -> bool:
    old, new = transcripts(before), transcripts(after)
    same_all = set(old) == set(new)
    if not same_all:
        print(f"clips differ: before {sorted(old)}, after {sorted(new)}")
    words_total = 0
    for name in sorted(set(old) & set(new)):
        diff = differences(old[name], new[name])
        words = sum(len(s["words"]) for s in new[name]["segments"])
        words_total += words
        print(
            f"{name}: {words} words, {len(new[name]['turns'])} turns, "
            f"{len(set(new[name]['speakers']) or {t['speaker'] for t in new[name]['turns']})} "
            f"speakers, {len(new[name]['flags'])} flags: "
            + ("identical" if not diff else f"DIFFERENT ({len(diff)}: {'; '.join(diff[:3])})")
        )
        same_all &= not diff
    print(
        f"{len(set(old) & set(new))} clips, {words_total} words: "
        + ("identical" if same_all else "NOT identical")
    )
    return same_all


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the tree under test")
    parser.add_argument("--before", type=Path, help="a source tree to fetch with and compare")
    parser.add_argument("--reference", type=Path, help="a workspace recorded with --record")
    parser.add_argument("--record", type=Path, help="only fetch with --src into this workspace")
    parser.add_argument("--clips", nargs="+", default=CLIPS, help="paths under ../shared/data")
    parser.add_argument("options", nargs="*", help="fetch options (after --)")
    args = parser.parse_args()
    clips = [SHARED / c for c in args.clips]
    missing = [str(c) for c in clips if not c.exists()]
    if missing:
        print(f"missing clips: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.record:
        wall = fetch(args.src, args.record, clips, args.options)
        print(f"recorded {len(clips)} clips into {args.record} in {wall:.1f} s")
        return 0
    if not (args.before or args.reference):
        parser.error("give --before SRC or --reference WORKSPACE (or --record WORKSPACE)")
    with tempfile.TemporaryDirectory(prefix="identical-") as tmp:
        before = args.reference
        if before is None:
            before = Path(tmp) / "before"
            print(f"before: {fetch(args.before, before, clips, args.options):.1f} s wall")
        after = Path(tmp) / "after"
        print(f"after: {fetch(args.src, after, clips, args.options):.1f} s wall")
        return 0 if compare(before, after) else 1


if __name__ == "__main__":
    sys.exit(main())
