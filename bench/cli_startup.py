"""How long a fresh `confindex search` takes, and what the rich output layer adds to it.

    python bench/cli_startup.py              # 15 rounds, a small workspace made in a temp dir
    python bench/cli_startup.py -w demo -q "cold war" --rounds 30

Each round runs every variant once, in the same order (interleaved, so a load change hits all
of them alike), each as a fresh process — what a user pays per command. Wall and CPU seconds
(user + system of the child, from `getrusage(RUSAGE_CHILDREN)`) are printed as medians:
- `python -c pass`: the interpreter alone;
- `import rich.console, rich.text`: what the text output's rich layer costs to import;
- `confindex --version`: click and the command group;
- `search --json`: query + index open, no rich (JSON goes straight to stdout);
- `search` (text): the same through rich (wrapping, highlights, colour policy).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _small_workspace(root: Path) -> Path:
    """Two short transcripts, indexed: enough for search to open the index and print hits."""
    from confindex.search import index
    from confindex.store.transcript import Provenance, Recording, Transcript, Turn, Word, save
    from confindex.store.workspace import Workspace

    ws = Workspace(root).ensure()
    lines = [
        "Space diplomacy matters for every station we build.",
        "Diplomacy in space is hard and budgets are running low.",
    ] * 20
    for rid in ("talk-a", "talk-b"):
        turns, t = [], 0.0
        for i, text in enumerate(lines):
            words = [
                Word(t + k * 0.4, t + k * 0.4 + 0.3, " " + w) for k, w in enumerate(text.split())
            ]
            turns.append(Turn(i, t, words[-1].end, f"SPEAKER_0{i % 2}", text, "en", words))
            t = words[-1].end + 1.0
        rec = Recording(id=rid, title=f"Space policy {rid}", source=f"https://example.org/{rid}")
        save(ws, Transcript(rec, Provenance("bench"), "en", t, turns=turns))
    index.sync(ws)
    return root


_BEFORE = (
    "import sys; sys.path.insert(0, {src!r}); sys.argv[0] = 'confindex'; "
    "from confindex.cli import main; main()"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-w", "--workspace", help="an existing workspace (default: a small one)")
    ap.add_argument("-q", "--query", default="diplomacy")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument(
        "--before",
        metavar="SRC",
        help="also run `search` from another source tree (e.g. `git archive REV src | tar -x`)",
    )
    args = ap.parse_args()

    exe = str(Path(sys.executable).parent / "confindex")
    with tempfile.TemporaryDirectory() as tmp:
        ws = args.workspace or str(_small_workspace(Path(tmp) / "ws"))
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "80"}
        variants = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "import rich.console, rich.text": [
                sys.executable,
                "-c",
                "import rich.console, rich.text",
            ],
            "confindex --version": [exe, "--version"],
            "confindex search --json": [exe, "-w", ws, "search", args.query, "--json"],
            "confindex search (text, rich)": [exe, "-w", ws, "search", args.query],
        }
        if args.before:
            # PYTHONPATH wins over the editable install: the same venv, the other tree's code.
            before = [sys.executable, "-c", _BEFORE.format(src=str(Path(args.before).resolve()))]
            variants["search --json (before)"] = [*before, "-w", ws, "search", args.query, "--json"]
            variants["search (text, before)"] = [*before, "-w", ws, "search", args.query]
        wall: dict[str, list[float]] = {k: [] for k in variants}
        cpu: dict[str, list[float]] = {k: [] for k in variants}
        for argv in variants.values():  # warm the page cache and .pyc files once
            subprocess.run(argv, env=env, capture_output=True, check=True)
        for _ in range(args.rounds):
            for name, argv in variants.items():
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                subprocess.run(argv, env=env, capture_output=True, check=True)
                wall[name].append(time.perf_counter() - t0)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[name].append(
                    after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
                )
    print(f"load average {os.getloadavg()[0]:.1f}, {args.rounds} rounds, medians")
    print("| variant | wall s | CPU s |\n|---|---|---|")
    for name in variants:
        print(
            f"| {name} | {statistics.median(wall[name]):.3f} | {statistics.median(cpu[name]):.3f} |"
        )
    text, js = "confindex search (text, rich)", "confindex search --json"
    dw = statistics.median(wall[text]) - statistics.median(wall[js])
    dc = statistics.median(cpu[text]) - statistics.median(cpu[js])
    print(f"text output over --json: +{dw * 1000:.0f} ms wall, +{dc * 1000:.0f} ms CPU")


if __name__ == "__main__":
    main()
