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
more (numpy has no BLAS for them); the two passes take a few tens of ms.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confindex.errors import ConfindexError, IndexDamagedError
from confindex.search.passages import Passage, passages
from confindex.store.workspace import Workspace, atomic_write_text, make_dir

log = logging.getLogger("confindex.search.vectors")

FORMAT = 1
DIRNAME = "vectors"
CURRENT = "CURRENT.json"
REBUILD = "confindex index --rebuild"
WORDS = 6  # uint64 words of sign bits per 384-d vector
BATCH = 32  # passages per embedding call
# Rows re-scored exactly after the bit pass: at least this many, or 1 in RERANK_SHARE.
# recall@10 against exact float32 cosine, bench/semantic.py: see bench/README.md.
RERANK_MIN = 4096
RERANK_SHARE = 64

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

    def search(self, q: Any, k: int, mask: Any = None) -> tuple[Any, Any]:
        """The `k` rows closest to unit vector `q` (allowed by the boolean `mask`), best first:
        (row indices, cosine similarities)."""
        np = _np()
        n = len(self)
        q = np.asarray(q, dtype=np.float32).reshape(-1)
        want = max(RERANK_MIN, n // RERANK_SHARE, k)
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
        sims = (np.asarray(self.vecs[rows], dtype=np.float32) @ q) * self.scale[rows]
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


# ---------------------------------------------------------------------------------------------
# Writing


@dataclass
class _Chunk:
    """One recording's rows for a new generation: new passages with their quantised vectors,
    or (`kept`) a slice of the live store copied as arrays."""

    rid: str
    stamp: str | None
    passages: list[Passage]
    vecs: Any  # int8 (k, dim)
    scale: Any  # float32 (k,)
    kept: tuple[Store, slice] | None = None

    def __len__(self) -> int:
        return len(self.passages) if self.kept is None else self.kept[1].stop - self.kept[1].start


@dataclass
class VectorSync:
    """What a write did: recordings embedded, kept or removed, passages embedded or reused."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    passages: int = 0
    embedded: int = 0
    reused: int = 0
    embed_seconds: float = 0.0  # CPU seconds in the embedder
    rebuilt: bool = False

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def quantise(v: Any) -> tuple[Any, Any]:
    """float32 rows → (int8 rows, float32 scale) with row ≈ int8 × scale."""
    np = _np()
    v = np.asarray(v, dtype=np.float32)
    if len(v) == 0:
        return np.zeros(v.shape, np.int8), np.zeros(0, np.float32)
    peak = np.abs(v).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(v / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


def _stamp(ws: Workspace, rid: str) -> str | None:
    from confindex.search.index import transcript_stamp

    return transcript_stamp(ws, rid)


def _live_for_writing(ws: Workspace, log_fn: LogFn | None) -> Store | None:
    """The live store if it can be kept and extended; None (after saying why) when it must be
    rebuilt: missing, damaged, another model or format."""
    try:
        return open_store(ws)
    except (VectorsDamagedError, VectorsStaleError) as exc:
        if log_fn:
            log_fn(f"{exc.message.split('; run')[0].split(': rebuild')[0]}: rebuilding it")
        return None


def _embed(
    todo: list[tuple[str, str | None, list[Passage]]],
    reuse: dict[str, tuple[Any, Any]],
    report: VectorSync,
    progress: Callable[[int, int], None] | None = None,
) -> list[_Chunk]:
    """Chunks for these recordings: vectors reused by passage text, the rest embedded."""
    np = _np()
    from confindex.search.embed import DIM, embed_passages

    missing = sorted({p.text for _, _, ps in todo for p in ps if p.text not in reuse})
    total = len(missing)
    t0 = time.process_time()
    for i in range(0, total, BATCH):
        batch = missing[i : i + BATCH]
        q, s = quantise(embed_passages(batch))
        for j, text in enumerate(batch):
            reuse[text] = (q[j], s[j])
        if progress:
            progress(min(i + BATCH, total), total)
    report.embed_seconds += time.process_time() - t0
    report.embedded += total
    chunks = []
    for rid, stamp, ps in todo:
        vecs = np.zeros((len(ps), DIM), dtype=np.int8)
        scale = np.zeros(len(ps), dtype=np.float32)
        for j, p in enumerate(ps):
            vecs[j], scale[j] = reuse[p.text]
        report.passages += len(ps)
        chunks.append(_Chunk(rid, stamp, ps, vecs, scale))
    report.reused = report.passages - report.embedded
    return chunks


def _kept_chunk(store: Store, rid: str) -> _Chunk:
    sl = store.rows_of(rid)
    stamp = store.meta["recordings"][rid].get("stamp")
    return _Chunk(rid, stamp, [], store.vecs[sl], store.scale[sl], kept=(store, sl))


def _reuse_table(store: Store | None, rids: Iterable[str]) -> dict[str, tuple[Any, Any]]:
    """Passage text → (int8 vector, scale) from these recordings of the live store: a speaker
    rename or a re-run that kept the words embeds nothing again."""
    out: dict[str, tuple[Any, Any]] = {}
    if store is None:
        return out
    for rid in rids:
        sl = store.rows_of(rid)
        for i in range(sl.start, sl.stop):
            out.setdefault(store.text(i), (store.vecs[i], store.scale[i]))
    return out


def _write_generation(ws: Workspace, chunks: Sequence[_Chunk], model: str | None = None) -> Path:
    np = _np()
    from confindex.search.embed import DIM, model_id

    base = root(ws)
    make_dir(base)
    name = f"g-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    gen = base / name
    gen.mkdir()
    try:
        n = sum(len(c) for c in chunks)
        speakers: dict[str, int] = {}
        langs: dict[str, int] = {}
        rows = np.zeros(n, dtype=ROW)
        vecs = np.lib.format.open_memmap(gen / "vecs.npy", "w+", np.int8, (n, DIM))
        scale = np.zeros(n, dtype=np.float32)
        recordings: dict[str, Any] = {}
        order: list[str] = []
        i = 0
        offset = 0
        with (gen / "texts.bin").open("wb") as tf:
            for c in chunks:
                k = len(c)
                recordings[c.rid] = {"stamp": c.stamp, "first": i, "count": k}
                rec = len(order)
                order.append(c.rid)
                if k:
                    vecs[i : i + k] = c.vecs
                    scale[i : i + k] = c.scale
                if c.kept is not None and k:
                    offset = _copy_rows(c.kept, rows[i : i + k], rec, speakers, langs, tf, offset)
                for j, p in enumerate(c.passages):
                    data = p.text.encode("utf-8")
                    tf.write(data)
                    sp = -1 if p.speaker is None else speakers.setdefault(p.speaker, len(speakers))
                    lg = -1 if p.language is None else langs.setdefault(p.language, len(langs))
                    rows[i + j] = (
                        rec,
                        p.turn,
                        p.start,
                        p.end,
                        sp,
                        lg,
                        p.w0,
                        p.w1,
                        offset,
                        offset + len(data),
                    )
                    offset += len(data)
                i += k
            tf.flush()
            os.fsync(tf.fileno())
        vecs.flush()
        del vecs
        bits = np.packbits(np.load(gen / "vecs.npy", mmap_mode="r") > 0, axis=1)
        bits = np.ascontiguousarray(bits.view("<u8").reshape(n, WORDS).T) if n else bits
        np.save(gen / "bits.npy", bits.reshape(WORDS, n))
        np.save(gen / "scale.npy", scale)
        np.save(gen / "rows.npy", rows)
        meta = {
            "format": FORMAT,
            "model": model or model_id(),
            "dim": DIM,
            "count": n,
            "order": order,
            "recordings": recordings,
            "speakers": list(speakers),
            "langs": list(langs),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        atomic_write_text(gen / "meta.json", json.dumps(meta, ensure_ascii=False))
        for p in gen.iterdir():  # the data on disk before CURRENT.json points at it
            with p.open("rb") as f:
                os.fsync(f.fileno())
    except BaseException:
        shutil.rmtree(gen, ignore_errors=True)
        raise
    return gen


def _copy_rows(
    kept: tuple[Store, slice],
    out: Any,
    rec: int,
    speakers: dict[str, int],
    langs: dict[str, int],
    tf: Any,
    offset: int,
) -> int:
    """Copy a live slice's rows as arrays (no per-row Python): recording, speaker and language
    numbers renumbered, text offsets moved; returns the new end of texts.bin."""
    np = _np()
    store, sl = kept
    src = np.asarray(store.rows[sl])
    out[:] = src
    out["rec"] = rec
    for col, names, table in (
        ("speaker", store.meta["speakers"], speakers),
        ("lang", store.meta["langs"], langs),
    ):
        used = np.unique(src[col])
        remap = np.full(len(names) + 1, -1, dtype=np.int64)  # index -1 → the last: stays -1
        for u in used[used >= 0]:
            remap[u] = table.setdefault(names[u], len(table))
        out[col] = remap[src[col]]
    t0, t1 = int(src["t0"].min()), int(src["t1"].max())
    tf.write(bytes(store.texts[t0:t1]))
    out["t0"] = src["t0"] - t0 + offset
    out["t1"] = src["t1"] - t0 + offset
    return offset + (t1 - t0)


def _swap_in(ws: Workspace, gen: Path) -> None:
    atomic_write_text(root(ws) / CURRENT, json.dumps({"format": FORMAT, "generation": gen.name}))
    _cleanup(ws, keep=gen)


def _cleanup(ws: Workspace, keep: Path | None) -> None:
    """Remove generations other than `keep` (a killed writer's, a replaced one). Readers that
    mapped an old one keep their files until they close them (POSIX)."""
    with contextlib.suppress(OSError):
        for p in root(ws).iterdir():
            if p.is_dir() and p.name.startswith("g-") and p != keep:
                shutil.rmtree(p, ignore_errors=True)
            elif p.name.startswith(".") and p.name.endswith(".tmp"):
                p.unlink()


def _load_passages(
    ws: Workspace, rids: Iterable[str], skipped: list[tuple[str, str]] | None
) -> list[tuple[str, str | None, list[Passage]]]:
    from confindex.store.transcript import load_path

    out = []
    for rid in rids:
        try:
            t = load_path(ws.transcript_path(rid))
        except ConfindexError as exc:
            if skipped is not None and not any(r == rid for r, _ in skipped):
                skipped.append((rid, exc.message))
            continue
        out.append((rid, _stamp(ws, rid), passages(t)))
    return out


def sync(
    ws: Workspace,
    *,
    rebuild: bool = False,
    log_fn: LogFn | None = None,
    skipped: list[tuple[str, str]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VectorSync:
    """Make the store match transcripts/: embed new and changed transcripts (stamp differs),
    drop removed ones; `rebuild`: a new store from transcripts/ alone (vectors of unchanged
    passage texts are reused when the model is the same). A missing, damaged or stale store is
    rebuilt. Transcripts that cannot be read are listed in `skipped`."""
    report = VectorSync()
    with ws.lock("vectors"):
        live = _live_for_writing(ws, log_fn)
        present = ws.transcript_ids()
        if live is None or rebuild:
            report.rebuilt = True
            keep: list[str] = []
            redo = present
            reuse_from: list[str] = list(live.rids) if live is not None else []
        else:
            recs = live.meta["recordings"]
            keep = [r for r in present if r in recs and recs[r].get("stamp") == _stamp(ws, r)]
            redo = [r for r in present if r not in keep]
            reuse_from = [r for r in redo if r in recs]
            report.removed = sorted(set(recs) - set(present))
            if not redo and not report.removed:
                return report
        if live is None and redo and log_fn:
            log_fn(f"embedding the passages of {len(redo)} recording(s) for semantic search")
        todo = _load_passages(ws, redo, skipped)
        reuse = _reuse_table(live, reuse_from)
        report.added = [rid for rid, _, _ in todo]
        new = {c.rid: c for c in _embed(todo, reuse, report, progress)}
        chunks = [
            new[r] if r in new else _kept_chunk(live, r)  # type: ignore[arg-type]
            for r in present
            if r in new or r in keep
        ]
        _swap_in(ws, _write_generation(ws, chunks))
    return report


def add(ws: Workspace, transcripts: Sequence[Any], *, log_fn: LogFn | None = None) -> VectorSync:
    """Embed these transcripts' passages (replacing their rows), keeping every other
    recording's rows. A missing store is built from transcripts/ plus these; a damaged or
    stale one is left alone with a warning naming `index --rebuild` (never mixed vectors)."""
    report = VectorSync()
    if not transcripts:
        return report
    with ws.lock("vectors"):
        try:
            live = open_store(ws)
        except (VectorsDamagedError, VectorsStaleError) as exc:
            log.warning("passages of %s not embedded: %s", transcripts[0].id, exc.message)
            return report
        ids = {t.id for t in transcripts}
        todo = [(t.id, _stamp(ws, t.id), passages(t)) for t in transcripts]
        if live is None:  # the first: the store holds every transcript there is
            others = [r for r in ws.transcript_ids() if r not in ids]
            todo = _load_passages(ws, others, None) + todo
            report.rebuilt = True
        reuse = _reuse_table(live, [r for r in ids if live is not None and r in live.rids])
        report.added = [rid for rid, _, _ in todo]
        new = {c.rid: c for c in _embed(todo, reuse, report)}
        order = list(live.rids) if live is not None else []
        order += sorted(r for r in new if r not in order)
        chunks = [new[r] if r in new else _kept_chunk(live, r) for r in order]  # type: ignore[arg-type]
        _swap_in(ws, _write_generation(ws, chunks))
    return report


def after_publish(ws: Workspace, t: Any) -> VectorSync | None:
    """Embed a just-published transcript's passages. A failure costs semantic search this
    recording until the next `confindex index`, never the transcription: it is logged."""
    try:
        r = add(ws, [t])
    except (ConfindexError, OSError) as exc:
        why = exc.message if isinstance(exc, ConfindexError) else str(exc)
        log.warning("passages of %s not embedded (%s): run confindex index", t.id, why)
        return None
    log.info(
        "%s: %d passages, %d embedded in %.1f CPU s", t.id, r.passages, r.embedded, r.embed_seconds
    )
    return r


def remove(ws: Workspace, recording_ids: Iterable[str]) -> int:
    """Drop these recordings' rows; returns how many passages went (0 without a store)."""
    ids = set(recording_ids)
    with ws.lock("vectors"):
        try:
            live = open_store(ws, check_model=False)
        except VectorsDamagedError:
            return 0  # the next `index` rebuilds it without them
        if live is None or not ids & set(live.rids):
            return 0
        gone = sum(len(_kept_chunk(live, r)) for r in ids if r in live.rids)
        chunks = [_kept_chunk(live, r) for r in live.rids if r not in ids]
        _swap_in(ws, _write_generation(ws, chunks, model=live.model))
    return gone


def size_bytes(ws: Workspace) -> int:
    with contextlib.suppress(VectorsDamagedError):
        _, gen = _read_current(ws)
        if gen is not None and gen.is_dir():
            return sum(p.stat().st_size for p in gen.iterdir() if p.is_file())
    return 0
