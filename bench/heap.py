"""What keeping freed memory (speech/heap.py) saves a `fetch`: CPU (user and system), wall,
minor page faults and peak RSS, with glibc's own heap behaviour beside it.

    python bench/heap.py                                  # the French radio clip, 2 rounds
    python bench/heap.py --clip diar/ami_dev00.wav --rounds 3 --no-diarize-only

Variants, interleaved in each round, each a fresh `confindex fetch` process:
  kept   this tree as it runs for users (one arena, no mmap, no trim);
  glibc  the same tree with MALLOC_ARENA_MAX set to glibc's own default (8 × cores), which
         confindex reads as the user's choice and leaves glibc's heap as it is.
Both write the same words and turns (checked). Wall s mean something only on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from unittest import mock

from stages import fetch, words_and_turns
from transcription import SHARED, machine


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clip", default="fr/radiofrance_smartphone.mp3", help="under shared/data")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-diarize-only", action="store_true", help="skip the default fetch")
    args = ap.parse_args(argv)
    clip = SHARED / args.clip
    if not clip.exists():
        sys.exit(f"{clip} is missing: the benches need the real recordings")
    src = str(Path(__file__).resolve().parents[1] / "src")
    variants = {"kept": {}, "glibc": {"MALLOC_ARENA_MAX": str(8 * (os.cpu_count() or 1))}}
    modes = [["--no-diarize"]] + ([] if args.no_diarize_only else [[]])
    print(f"{args.clip}; {machine()}", file=sys.stderr)
    words: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="confindex-heap-") as tmp:
        for rnd in range(args.rounds):
            for mode in modes:
                for name, env in variants.items():
                    ws = Path(tmp) / f"{name}-{rnd}-{len(mode)}"
                    with mock.patch.dict(os.environ, env):  # stages.fetch passes it on
                        r, ts = fetch([str(clip)], ws, src, mode)
                    key = " ".join(mode) or "default"
                    got = [words_and_turns(t) for t in ts]
                    same = words.setdefault(key, got) == got
                    print(
                        f"round {rnd + 1} {key:13s} {name:5s}: {r['cpu_s']:6.1f} CPU s "
                        f"(system {r['sys_s']:5.1f}), {r['wall_s']:6.1f} wall s, "
                        f"{r['minflt'] / 1e6:5.2f} M minor faults, peak {r['peak_rss_mb']} MB, "
                        f"load {r['load']}; same words and turns: {same}"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
