"""Query compile cost alone (parse + compile, no index), for comparing versions of query.py.

    python bench/query_compile.py LABEL        # run from a checkout's root (or a git archive)

300 term, 300 AND and 300 phrase queries from bench/search.py's topical FR/EN/RU words,
compiled for an archive of those three languages: the first pass (cold caches, as in a fresh
`confindex search`) and three warm passes (as in `confindex serve`), CPU ms per query.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search as bench_search  # bench/search.py: its word lists

from confindex.search.compile import compile
from confindex.search.grammar import parse

LANGS = ("en", "fr", "ru")


def main() -> None:
    label = sys.argv[1] if len(sys.argv) > 1 else "this"
    rng = random.Random(1)
    lists = (bench_search.EN_REAL, bench_search.FR_REAL, bench_search.RU_REAL)
    words = [w.lower() for lst in lists for w in lst]
    queries = []
    for _ in range(300):
        a, b = rng.choice(words), rng.choice(words)
        queries += [a, f"{a} {b}", f'"{a} {b}"']
    t0 = time.process_time()
    for q in queries:
        compile(parse(q), LANGS)
    cold = 1000 * (time.process_time() - t0) / len(queries)
    t0 = time.process_time()
    for _ in range(3):
        for q in queries:
            compile(parse(q), LANGS)
    warm = 1000 * (time.process_time() - t0) / (3 * len(queries))
    print(f"{label}: {cold:.3f} ms CPU per query cold, {warm:.3f} ms warm")


if __name__ == "__main__":
    main()
