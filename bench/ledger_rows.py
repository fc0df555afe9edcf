"""What looking up a few ledger rows costs as the ledger grows (an archivist's workspace holds
thousands of rows; every `fetch` looks up its own few several times).

    python bench/ledger_rows.py                       # this tree, 1,000 and 20,000 rows
    python bench/ledger_rows.py --before OLD/src      # and another tree's src, interleaved

Each variant runs in its own fresh process (so that two trees' `confindex` never share one
interpreter), rounds interleaved; CPU ms per `Ledger.rows(two keys)` call, the median.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

CHILD = """
import statistics, sys, tempfile, time
from pathlib import Path
from confindex.store.ledger import Ledger
from confindex.store.ledger_rows import NewItem
from confindex.store.workspace import Workspace
n = int(sys.argv[1])
ws = Workspace(Path(tempfile.mkdtemp()) / "ws")
with Ledger.of(ws) as led:
    led.add(NewItem(f"https://example.org/{i}.mp3", f"https://example.org/{i}.mp3", "url")
            for i in range(n))
    keys = ["https://example.org/5.mp3", f"https://example.org/{n - 1}.mp3"]
    times = []
    for _ in range(15):
        t0 = time.process_time()
        assert len(led.rows(keys)) == 2
        times.append(time.process_time() - t0)
    print(f"{statistics.median(times) * 1000:.2f}")
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", help="another tree's src/ to compare with")
    ap.add_argument("--rows", default="1000,20000")
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    trees = {"this tree": str(Path(__file__).resolve().parents[1] / "src")}
    if a.before:
        trees["before"] = a.before
    for n in map(int, a.rows.split(",")):
        for r in range(a.rounds):
            for name, src in trees.items():
                env = {**os.environ, "PYTHONPATH": src}
                out = subprocess.run([sys.executable, "-c", CHILD, str(n)], env=env,
                                     capture_output=True, text=True, check=True).stdout  # fmt: skip
                print(f"{n:>7,} rows  round {r + 1}  {name:<10} {out.strip():>8} ms CPU a call")


if __name__ == "__main__":
    main()
