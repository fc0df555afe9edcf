"""Writing the vector store (vectors.py reads it): embed passages, write a new generation,
swap it in. Every write holds `ws.lock("vectors")`; see vectors.py for the layout."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confindex.errors import ConfindexError
from confindex.search.passages import Passage, passages
from confindex.search.vectors import (
    CURRENT,
    FORMAT,
    ROW,
    WORDS,
    Store,
    VectorsDamagedError,
    VectorsStaleError,
    open_store,
    root,
)
from confindex.store.workspace import Workspace, atomic_write_text, make_dir

log = logging.getLogger("confindex.search.vector_build")

BATCH = 32  # passages per embedding call
LogFn = Callable[[str], None]


def _np() -> Any:
    import numpy as np

    return np


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
        if live is None and redo:  # stdout's summary line says what was embedded
            log.info("embedding the passages of %d recording(s) for semantic search", len(redo))
        todo = _load_passages(ws, redo, skipped)
        if live is not None and not report.rebuilt and not todo and not report.removed:
            return report  # only unreadable transcripts (listed in `skipped`): nothing to write
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
