"""The vector store: one embedding per passage (passages.py), beside the Whoosh index.

Derived from transcripts/ and rebuildable like the index. Layout under `<workspace>/vectors/`:

    CURRENT.json      {"format": N, "generation": "g-…"}: which generation readers open
    g-…/meta.json     model id, dimension, row count, recordings (stamp, first row, rows)
    g-…/rows.npy      one record per passage: recording, turn, start, end, speaker, language,
                      word range, text offsets (numpy structured array, memory-mapped)
    g-…/vecs.npy      int8 (n, 384): each vector scaled so its largest value is ±127
    g-…/scale.npy     float32 (n,): that scale (cosine = vecs·q × scale)
    g-…/bits.npy      uint64 (6, n): the sign bits, column-major, for the first search pass
    g-…/texts.bin     the passages' text, UTF-8, back to back

A recording's rows are contiguous. Every change writes a new generation (copying the rows it
keeps, embedding only passages whose text it does not already hold) and swaps CURRENT.json
atomically: a kill -9 leaves the previous generation live and a stray folder the next write
deletes, and `confindex index` then embeds what is missing.

Search (measured in bench/semantic.py): Hamming distance on the sign bits over every row
(bitwise_count on 6 uint64 columns), then the exact int8 cosine on the closest few thousand.
Brute-force float32 took 300 ms at 1M rows on this 2-core machine, float16 and int8 matmuls
more (numpy has no BLAS for them); the two passes took a quarter to a half of float32's time,
in the same runs (bench/README.md: 99 vs 435 ms p50, p95 134 ms, at 1M rows under load 11).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confindex.errors import ConfindexError, IndexDamagedError
from confindex.search.passages import MIN_WORDS, Passage
from confindex.store.workspace import Workspace

log = logging.getLogger("confindex.search.vectors")

FORMAT = 1
DIRNAME = "vectors"
CURRENT = "CURRENT.json"
REBUILD = "confindex index --rebuild"
WORDS = 6  # uint64 words of sign bits per 384-d vector
# Rows re-scored exactly after the bit pass: at least RERANK_MIN, or 1 in RERANK_SHARE.
# bench/semantic.py, same run, load 11-13: 12,800 of 100k rows p95 75 ms, recall@10 vs exact
# 0.82 (6,400: 71 ms, 0.70); 62,500 of 1M rows p95 134 ms, 0.74 (15,600: 151 ms, 0.55).
RERANK_MIN = 12_800
RERANK_SHARE = 16
RESCORE_BLOCK = 4096

ROW = [
    ("rec", "<i4"),
    ("turn", "<i4"),
    ("start", "<f4"),
    ("end", "<f4"),
    ("speaker", "<i4"),  # index into meta["speakers"]; -1: none
    ("lang", "<i2"),  # index into meta["langs"]; -1: none
    ("w0", "<i4"),
    ("w1", "<i4"),
    ("t0", "<i8"),  # text bytes in texts.bin
    ("t1", "<i8"),
]

LogFn = Callable[[str], None]


class VectorsDamagedError(IndexDamagedError):
    """A vector file cannot be read: `confindex index --rebuild` rebuilds the store."""


class VectorsStaleError(ConfindexError):
    """The store was built by another embedding model (or format): a rebuild is needed."""


def _np() -> Any:
    import numpy as np

    return np


def root(ws: Workspace) -> Path:
    return ws.root / DIRNAME


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass
class Store:
    """A live generation, memory-mapped. Rows of recording `rid` are `rows_of(rid)`."""

    gen: Path
    meta: dict[str, Any]
    rows: Any
    vecs: Any
    scale: Any
    bits: Any
    texts: Any  # numpy uint8 memmap of texts.bin
    rids: list[str] = field(default_factory=list)
    _rec: dict[str, int] = field(default_factory=dict)
    _searchable: Any = None

    @property
    def model(self) -> str:
        return str(self.meta.get("model"))

    def __len__(self) -> int:
        return int(self.meta["count"])

    def rows_of(self, rid: str) -> slice:
        r = self.meta["recordings"].get(rid)
        if r is None:
            return slice(0, 0)
        return slice(int(r["first"]), int(r["first"]) + int(r["count"]))

    def rec_index(self, rid: str) -> int:
        return self._rec.get(rid, -1)

    def text(self, i: int) -> str:
        row = self.rows[i]
        return bytes(self.texts[int(row["t0"]) : int(row["t1"])]).decode("utf-8", "replace")

    def passage(self, i: int) -> Passage:
        """Row `i` as a Passage (`pos`: its place in its recording)."""
        row = self.rows[i]
        rid = self.rids[int(row["rec"])]
        sp, lg = int(row["speaker"]), int(row["lang"])
        return Passage(
            pos=i - self.rows_of(rid).start,
            turn=int(row["turn"]),
            start=round(float(row["start"]), 3),
            end=round(float(row["end"]), 3),
            speaker=self.meta["speakers"][sp] if sp >= 0 else None,
            language=self.meta["langs"][lg] if lg >= 0 else None,
            text=self.text(i),
            w0=int(row["w0"]),
            w1=int(row["w1"]),
        )

    def recording_id(self, i: int) -> str:
        return self.rids[int(self.rows[i]["rec"])]

    def vectors(self, rows: Any) -> Any:
        """Float32 unit vectors of these rows (a slice or an index array), shape (k, 384)."""
        np = _np()
        v = np.asarray(self.vecs[rows], dtype=np.float32) * np.asarray(self.scale[rows])[:, None]
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        return v / np.maximum(norms, 1e-12)

    @property
    def searchable(self) -> Any:
        """Rows worth returning: passages of at least MIN_WORDS words. A one- or two-word
        passage (a turn of its own: "et le", "quand") sat at cosine 0.82-0.83 to every query
        of the shared recordings' set, above right answers (0.78-0.85): it means nothing alone.
        Rows without word timings (w0 = -1) count as searchable."""
        if self._searchable is None:
            np = _np()
            w0, w1 = np.asarray(self.rows["w0"]), np.asarray(self.rows["w1"])
            self._searchable = (w0 < 0) | (w1 - w0 >= MIN_WORDS)
        return self._searchable

    def search(self, q: Any, k: int, mask: Any = None) -> tuple[Any, Any]:
        """The `k` searchable rows closest to unit vector `q` (allowed by the boolean `mask`),
        best first: (row indices, cosine similarities)."""
        np = _np()
        n = len(self)
        q = np.asarray(q, dtype=np.float32).reshape(-1)
        want = max(RERANK_MIN, n // RERANK_SHARE, k)
        mask = self.searchable if mask is None else mask & self.searchable
        if mask is not None:
            allowed = np.flatnonzero(mask)
            if len(allowed) <= want:
                return self._rescore(allowed, q, k)
        if n <= want:
            return self._rescore(np.arange(n), q, k)
        cand = self._bit_candidates(q, want, mask)
        return self._rescore(cand, q, k)

    def _bit_candidates(self, q: Any, want: int, mask: Any) -> Any:
        np = _np()
        n = len(self)
        qbits = np.packbits(q > 0).view("<u8")
        dist = np.zeros(n, dtype=np.uint16)
        buf = np.empty(n, dtype=np.uint64)
        for j in range(WORDS):
            np.bitwise_xor(self.bits[j], qbits[j], out=buf)
            dist += np.bitwise_count(buf)
        if mask is not None:
            dist[~mask] = 1000
        # The `want` smallest distances: a histogram threshold (6 ms at 1M rows) instead of
        # an argpartition (17 ms).
        counts = np.cumsum(np.bincount(dist, minlength=1001))
        cut = int(np.searchsorted(counts, want))
        return np.flatnonzero(dist <= min(cut, 999))

    def _rescore(self, rows: Any, q: Any, k: int) -> tuple[Any, Any]:
        np = _np()
        if len(rows) == 0:
            return rows.astype(np.int64), np.zeros(0, dtype=np.float32)
        # In blocks that stay in the CPU cache: 15.6k rows at once took 32 ms, 4k rows 2 ms.
        sims = np.empty(len(rows), dtype=np.float32)
        for i in range(0, len(rows), RESCORE_BLOCK):
            part = rows[i : i + RESCORE_BLOCK]
            sims[i : i + len(part)] = np.asarray(self.vecs[part], dtype=np.float32) @ q
        sims *= self.scale[rows]
        top = np.argpartition(-sims, k - 1)[:k] if len(rows) > k else np.arange(len(rows))
        top = top[np.argsort(-sims[top], kind="stable")]
        return rows[top].astype(np.int64), sims[top]


_CACHE: dict[Path, Store] = {}
_LOCK = threading.Lock()


def _read_current(ws: Workspace) -> tuple[int | None, Path | None]:
    path = root(ws) / CURRENT
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        return int(d["format"]), root(ws) / str(d["generation"])
    except FileNotFoundError:
        return None, None
    except NotADirectoryError:
        return None, None
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise VectorsDamagedError(
            f"the vector store's pointer {path} is damaged ({exc}); run {REBUILD}"
        ) from None


def exists(ws: Workspace) -> bool:
    try:
        fmt, gen = _read_current(ws)
    except VectorsDamagedError:
        return False
    return fmt is not None and gen is not None and gen.is_dir()


def open_store(ws: Workspace, *, check_model: bool = True) -> Store | None:
    """The live store (cached per generation), None when there is none.

    VectorsDamagedError names the damaged file and `index --rebuild`; VectorsStaleError when
    it was built with another model or format (`check_model`)."""
    fmt, gen = _read_current(ws)
    if fmt is None or gen is None:
        return None
    if fmt != FORMAT:
        raise VectorsStaleError(
            f"the vector store has format {fmt}, this confindex reads {FORMAT}: "
            f"rebuild needed: {REBUILD}"
        )
    with _LOCK:
        store = _CACHE.get(gen)
        if store is None:
            if not gen.is_dir():
                raise VectorsDamagedError(f"the vector store {gen} is missing; run {REBUILD}")
            store = _load(gen)
            _CACHE.clear()  # one live generation per workspace is enough to keep mapped
            _CACHE[gen] = store
    if check_model:
        from confindex.search.embed import model_id

        if store.model != model_id():
            raise VectorsStaleError(
                f"the vector store was embedded with {store.model}, this confindex embeds "
                f"with {model_id()}: rebuild needed: {REBUILD}"
            )
    return store


def _load(gen: Path) -> Store:
    np = _np()

    def bad(name: str, why: str) -> VectorsDamagedError:
        return VectorsDamagedError(
            f"the vector store is damaged ({gen / name}: {why}); run {REBUILD}"
        )

    try:
        meta = json.loads((gen / "meta.json").read_text(encoding="utf-8"))
        n = int(meta["count"])
        dim = int(meta["dim"])
        rids = list(meta["order"])
        if not all(k in meta for k in ("recordings", "speakers", "langs")):
            raise KeyError("recordings, speakers or langs")
    except FileNotFoundError:
        raise bad("meta.json", "missing") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise bad("meta.json", f"unreadable: {exc}") from None
    arrays: dict[str, Any] = {}
    shapes = {
        "rows.npy": (n,),
        "vecs.npy": (n, dim),
        "scale.npy": (n,),
        "bits.npy": (WORDS, n),
    }
    for name, shape in shapes.items():
        try:
            a = np.load(gen / name, mmap_mode="r") if n else np.load(gen / name)
        except FileNotFoundError:
            raise bad(name, "missing") from None
        except (ValueError, OSError, EOFError) as exc:
            raise bad(name, " ".join(str(exc).split())[:100]) from None
        if a.shape != shape:
            raise bad(name, f"shape {a.shape}, expected {shape}")
        arrays[name] = a
    if arrays["rows.npy"].dtype != np.dtype(ROW):
        raise bad("rows.npy", "unexpected columns")
    try:
        size = (gen / "texts.bin").stat().st_size
        texts = (
            np.memmap(gen / "texts.bin", dtype=np.uint8, mode="r")
            if size
            else np.zeros(0, np.uint8)
        )
    except (OSError, ValueError) as exc:
        raise bad("texts.bin", str(exc)) from None
    rows = arrays["rows.npy"]
    if n and int(rows["t1"].max()) > size:
        raise bad("texts.bin", f"{size} bytes, rows need {int(rows['t1'].max())}")
    if n and not np.isfinite(np.asarray(arrays["scale.npy"])).all():
        raise bad("scale.npy", "not finite")
    return Store(
        gen,
        meta,
        rows,
        arrays["vecs.npy"],
        arrays["scale.npy"],
        arrays["bits.npy"],
        texts,
        rids,
        {r: i for i, r in enumerate(rids)},
    )


def load_recording(ws: Workspace, recording_id: str) -> tuple[list[Passage], Any]:
    """A recording's passages and their vectors: (passages in spoken order, float32 array of
    shape (len(passages), 384), unit rows). Empty when the store lacks the recording; raises
    VectorsStaleError / VectorsDamagedError like `open_store`."""
    np = _np()
    from confindex.search.embed import DIM

    store = open_store(ws)
    if store is None:
        return [], np.zeros((0, DIM), dtype=np.float32)
    sl = store.rows_of(recording_id)
    return [store.passage(i) for i in range(sl.start, sl.stop)], store.vectors(sl)


def size_bytes(ws: Workspace) -> int:
    with contextlib.suppress(VectorsDamagedError):
        _, gen = _read_current(ws)
        if gen is not None and gen.is_dir():
            return sum(p.stat().st_size for p in gen.iterdir() if p.is_file())
    return 0
