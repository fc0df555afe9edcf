"""Are two versions' search results identical? (#26: a restructure must not change any hit.)

Builds one workspace of transcripts (bench/search.py's synthetic corpus, plus any real
transcripts you add with --transcripts), then runs the same queries through each version's own
code (`git archive` of a ref, imported with its own src/ on PYTHONPATH) into its own index, and
compares every hit: recording, turn, score, time, mentions (each with its second), snippet.

    bench/search_identical.py BEFORE_REF [AFTER_REF] [--turns 20000] [--queries 60]
    bench/search_identical.py bb03c5d HEAD --transcripts demo/transcripts

Only the public API (`Archive(path).index(rebuild=True)`, `Archive(path).search(q)`) is used on
the versions' side, so that any two versions since the Archive API can be compared.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Runs inside each version (its own src/ on PYTHONPATH): rebuild the index, run the queries.
RUNNER = r"""
import dataclasses, json, sys
from confindex.api import Archive

ws, queries, out = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3]
arch = Archive(ws)
arch.index(rebuild=True)
results = {}
for q in queries:
    try:
        r = arch.search(q, limit=20)
    except Exception as exc:  # a query error is a result too: it must be the same error
        results[q] = {"error": f"{type(exc).__name__}: {exc}"}
        continue
    hits = []
    for h in r.hits:
        d = dataclasses.asdict(h)
        hits.append(d)
    results[q] = {"total": r.total, "hits": hits}
json.dump(results, open(out, "w"), ensure_ascii=False, sort_keys=True, default=str)
"""


def queries_for(ws: Path, n: int) -> list[str]:
    """Words, pairs, phrases, exact phrases, fuzzy, prefix and field queries drawn from the
    workspace's own transcripts (deterministic)."""
    import random

    rng = random.Random(26)
    turns = []
    for p in sorted((ws / "transcripts").glob("*.json")):
        d = json.loads(p.read_text())
        for t in d.get("turns", []):
            words = [w["text"].strip(" .,?!;:") for w in t.get("words", [])]
            words = [w for w in words if w.isalpha() and len(w) > 2]
            if len(words) >= 3:
                turns.append((d, t, words))
    qs: list[str] = []
    for _ in range(n):
        d, t, words = rng.choice(turns)
        k = rng.randrange(len(words) - 1)
        w, w2 = words[k], words[k + 1]
        qs += [w, f"{w} {rng.choice(words)}", f'"{w} {w2}"', f'="{w} {w2}"']
        if len(w) >= 5:
            qs += [w[:-1] + ("a" if w[-1] != "a" else "e") + "~", w[:4] + "*"]
        qs.append(f"{w} -{w2}")
        qs.append(f"{w} OR {w2}")
        if t.get("speaker"):
            qs.append(f"{w} speaker:{t['speaker']}")
        if d.get("recording", {}).get("upload_date"):
            qs.append(f"{w} date:{d['recording']['upload_date'][:4]}")
    qs += ["of the", "la station", "at:0m..5m", "flag:any", "lang:fr", "diplomatie spatiale"]
    return list(dict.fromkeys(qs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("before")
    ap.add_argument("after", nargs="?", default="HEAD")
    ap.add_argument("--turns", type=int, default=20_000, help="synthetic turns (0: none)")
    ap.add_argument("--queries", type=int, default=60, help="query groups drawn from turns")
    ap.add_argument("--transcripts", action="append", default=[], help="real transcripts dir")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="search-identical-"))
    base = tmp / "ws"
    (base / "transcripts").mkdir(parents=True)
    if args.turns:
        sys.path.insert(0, str(REPO / "src"))
        sys.path.insert(0, str(REPO / "bench"))
        from search import Corpus  # the synthetic corpus of bench/search.py

        from confindex.store.transcript import save
        from confindex.store.workspace import Workspace

        ws = Workspace(base)
        corpus = Corpus(args.turns)
        for t in corpus:
            save(ws, t)
    for d in args.transcripts:
        for p in Path(d).glob("*.json"):
            shutil.copy(p, base / "transcripts" / p.name)
    queries = queries_for(base, args.queries)
    qfile = tmp / "queries.json"
    qfile.write_text(json.dumps(queries, ensure_ascii=False))
    out = {}
    for ref in (args.before, args.after):
        sha = subprocess.check_output(["git", "-C", str(REPO), "rev-parse", "--short", ref]).strip()
        code = tmp / f"code-{sha.decode()}"
        code.mkdir()
        tar = subprocess.run(
            ["git", "-C", str(REPO), "archive", sha.decode(), "src"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(code)], input=tar, check=True)
        ws = tmp / f"ws-{sha.decode()}"
        shutil.copytree(base, ws)
        res = tmp / f"results-{sha.decode()}.json"
        env = {"PYTHONPATH": str(code / "src"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
        subprocess.run(
            [sys.executable, "-c", RUNNER, str(ws), str(qfile), str(res)], env=env, check=True
        )
        out[ref] = json.loads(res.read_text())
    a, b = out[args.before], out[args.after]
    differ = [q for q in queries if a.get(q) != b.get(q)]
    n_hits = sum(len(r.get("hits", [])) for r in a.values())
    n_mentions = sum(len(h.get("mentions", [])) for r in a.values() for h in r.get("hits", []))
    print(
        f"{len(queries)} queries, {n_hits} hits, {n_mentions} mentions compared "
        f"({args.before} vs {args.after}): {len(differ)} differ"
    )
    for q in differ[:10]:
        print(f"  differs: {q!r}")
    shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
