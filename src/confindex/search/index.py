"""The search index: one Whoosh document per turn, derived from transcripts/ and rebuildable.

Layout under `ws.index_dir`:

    CURRENT.json        {"schema": N, "generation": "g-…"}: which generation readers open
    g-…/                a Whoosh index + recordings.json (per-recording metadata for links/stats)

`rebuild()` builds a new generation beside the live one and swaps `CURRENT.json` atomically, so
a crash mid-build never leaves a half index. Writers take `ws.lock("index")`; readers never lock.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whoosh import index

from confindex.errors import ConfindexError, IndexDamagedError
from confindex.log import suppressed
from confindex.safeio import MiB, read_json
from confindex.search.documents import documents, make_schema, recording_meta
from confindex.store.transcript import Transcript, load_path
from confindex.store.workspace import Workspace, atomic_write_text, make_dir

_log = logging.getLogger("confindex.search.index")

REBUILD_HINT = "run confindex index --rebuild (it rebuilds the index from transcripts/)"


# The disk, not the index: full, read-only, no permission, I/O error.
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


@contextlib.contextmanager
def damage_named() -> Iterator[None]:
    """Reading a damaged index is an IndexDamagedError that names `index --rebuild`.

    A truncated or garbled segment, TOC or recordings.json surfaces as EOFError (which click
    would report as "interrupted"), struct/pickle/JSON/KeyError from Whoosh, … — never as a
    traceback. Disk errors (full, read-only) stay OSErrors: they are not damage.
    """
    try:
        yield
    except OSError as exc:
        if exc.errno in _DISK_ERRNOS:
            raise
        what = " ".join((exc.strerror or str(exc)).split())[:120]  # a segment gone or garbled
        raise IndexDamagedError(f"the search index is damaged ({what}); {REBUILD_HINT}") from None
    except (ConfindexError, KeyboardInterrupt, MemoryError, AssertionError):
        raise  # AssertionError: a bug (search.TimeNotLocated in tests), not damage
    except ImportError as exc:  # a broken install, not the index: a rebuild would not help
        raise ConfindexError(
            f"confindex is installed incompletely ({exc}); reinstall it with its dependencies"
        ) from None
    except Exception as exc:
        what = " ".join(str(exc).split())[:120]
        raise IndexDamagedError(
            f"the search index is damaged ({type(exc).__name__}{': ' + what if what else ''}); "
            + REBUILD_HINT
        ) from None


# Bump when the schema or the analysis changes: older indexes are rebuilt from transcripts.
# 5: titles split on _ and camelCase.
# 6: compound terms (BFM TV → bfmtv, Jean-Loup → jeanloup) in `stem`; `pairs` holds stem pairs
#    with a common word (CommonGrams), not only pairs of two common words.
# 7: quality flags per turn (`flag`, `flags`).
# 8: each `_` segment of a title also whole (`doklad_part1` → doklad, part1, part, 1).
# 9: `verified` per turn (words a user corrected, issue 27).
SCHEMA_VERSION = 9

ProgressFn = Callable[[int, int], None]
LogFn = Callable[[str], None]


# ---------------------------------------------------------------------------------------------
# Generations


CURRENT = "CURRENT.json"
# IndexState.schema of an unreadable CURRENT.json: damage, not an index of another version.
DAMAGED = -1
RECORDINGS = "recordings.json"


@dataclass(frozen=True)
class IndexState:
    schema: int | None
    generation: Path | None


def state(ws: Workspace) -> IndexState:
    try:
        d = read_json(ws.index_dir / CURRENT, "index state", limit=MiB)
        gen = ws.index_dir / str(d["generation"])
        return IndexState(int(d["schema"]), gen if gen.is_dir() else None)
    except NotADirectoryError:  # a file where index/ should be: writing will say so
        return IndexState(None, None)
    except FileNotFoundError:
        # A bare Whoosh index in index/ (no CURRENT.json) was made by an older layout.
        old = any(ws.index_dir.glob("*.toc")) if ws.index_dir.is_dir() else False
        return IndexState(0 if old else None, None)
    except (ValueError, KeyError, TypeError, OSError, ConfindexError):
        return IndexState(DAMAGED, None)


def exists(ws: Workspace) -> bool:
    s = state(ws)
    return s.schema == SCHEMA_VERSION and s.generation is not None


def needs_rebuild(ws: Workspace) -> bool:
    """True when an index exists but was built by another schema (or is damaged)."""
    s = state(ws)
    return s.schema is not None and (s.schema != SCHEMA_VERSION or s.generation is None)


def stale_message(ws: Workspace) -> str:
    s = state(ws)
    if s.schema == DAMAGED:
        return (
            f"the search index's pointer {ws.index_dir / CURRENT} is damaged: "
            "rebuilding it from transcripts/"
        )
    if s.schema is not None and s.schema != SCHEMA_VERSION:
        return (
            f"the search index was built by another confindex (index schema {s.schema}, "
            f"this version uses {SCHEMA_VERSION}): rebuilding it from transcripts/"
        )
    return "the search index is missing or damaged: rebuilding it from transcripts/"


def open_index(ws: Workspace) -> index.Index | None:
    """The live Whoosh index, or None when there is none (readers never lock)."""
    for _attempt in range(3):
        s = state(ws)
        if s.schema != SCHEMA_VERSION or s.generation is None:
            return None
        try:
            with damage_named():
                return index.open_dir(str(s.generation))
        except (index.EmptyIndexError, OSError, IndexDamagedError) as exc:
            # A rebuild may have swapped generations between reading CURRENT and opening.
            if state(ws).generation == s.generation:
                if isinstance(exc, IndexDamagedError):
                    raise
                raise IndexDamagedError(
                    f"cannot open the search index ({exc}); {REBUILD_HINT}"
                ) from None
    raise ConfindexError("the search index keeps changing; try again")


def check_readable(ws: Workspace) -> None:
    """IndexDamagedError (naming `index --rebuild`) when the live index cannot be opened and
    read. Opening a reader reads every segment's header: a truncated, garbled or missing
    segment and a garbled or empty TOC all fail there (5 of 5 trials each), in milliseconds."""
    ix = open_index(ws)
    if ix is None:
        return
    with damage_named(), ix.reader() as r:
        r.doc_count_all()


def load_recordings(ws: Workspace) -> dict[str, dict[str, Any]]:
    """Per-recording metadata of the live index (empty when there is no index)."""
    s = state(ws)
    if s.generation is None:
        return {}
    return _read_recordings(s.generation)


_REC_CACHE: dict[Path, tuple[float, dict[str, dict[str, Any]]]] = {}


def _read_recordings(gen: Path) -> dict[str, dict[str, Any]]:
    path = gen / RECORDINGS
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return {}
    cached = _REC_CACHE.get(gen)
    if cached and cached[0] == mtime:
        return cached[1]
    try:
        data = read_json(path, "index recordings")
    except (ValueError, ConfindexError) as exc:  # JSONDecodeError, unreadable, too deep
        raise IndexDamagedError(f"{path} is damaged ({exc}); {REBUILD_HINT}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise IndexDamagedError(f"{path} is damaged (not a table of recordings); {REBUILD_HINT}")
    _REC_CACHE[gen] = (mtime, data)
    return data


def _write_recordings(gen: Path, recs: dict[str, dict[str, Any]]) -> None:
    atomic_write_text(gen / RECORDINGS, json.dumps(recs, ensure_ascii=False, sort_keys=True))


def _new_generation(ws: Workspace) -> Path:
    make_dir(ws.index_dir)
    name = f"g-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    gen = ws.index_dir / name
    gen.mkdir()
    try:
        index.create_in(str(gen), make_schema())
    except BaseException:  # a full disk: leave no partial generation behind
        shutil.rmtree(gen, ignore_errors=True)
        raise
    return gen


def _swap_in(ws: Workspace, gen: Path) -> None:
    """Point CURRENT.json at `gen` (atomic), then delete every other generation."""
    atomic_write_text(
        ws.index_dir / CURRENT, json.dumps({"schema": SCHEMA_VERSION, "generation": gen.name})
    )
    _cleanup(ws, keep=gen)


def _cleanup(ws: Workspace, keep: Path | None) -> None:
    """Remove old generations and files of an older layout (open readers keep their files)."""
    for p in ws.index_dir.iterdir():
        if p.name == CURRENT or (keep is not None and p == keep):
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.suffix in (".toc", ".seg", ".pst", ".trm", ".fdt", ".json", ".lock") or (
            p.name.startswith("_") or p.name.startswith("MAIN")
        ):
            with contextlib.suppress(OSError):
                p.unlink()


def _cleanup_generations(ws: Workspace, keep: Path) -> None:
    with contextlib.suppress(OSError):
        for p in ws.index_dir.iterdir():
            if p.is_dir() and p.name.startswith("g-") and p != keep:
                shutil.rmtree(p, ignore_errors=True)


def _writer(ix: index.Index, limitmb: int = 128):
    # procs=1: with procs>1 worker errors are swallowed and 0 docs get indexed (NOTES).
    return ix.writer(procs=1, limitmb=limitmb)


# ---------------------------------------------------------------------------------------------
# Writing


def add(ws: Workspace, transcripts: Iterable[Transcript], *, log: LogFn | None = None) -> int:
    """Index these transcripts, replacing any documents of the same recordings; returns turns.

    Idempotent: re-adding a recording deletes its old documents in the same writer.
    """
    items = list(transcripts)
    if not items:
        return 0
    with ws.lock("index"):
        if not exists(ws):
            if needs_rebuild(ws) and log:
                log(stale_message(ws))
            # Build from transcripts/ plus these (they may not be saved yet): one fresh index.
            skipped: list[tuple[str, str]] = []
            n = _rebuild_locked(ws, extra=items, skipped=skipped)
            _warn_skipped(skipped)
            return n
        s = state(ws)
        assert s.generation is not None
        # Under the index lock nobody is building: a generation other than the live one is
        # what a killed or failed (disk full) rebuild left behind.
        _cleanup_generations(ws, keep=s.generation)
        with damage_named():
            ix = index.open_dir(str(s.generation))
            recs = dict(_read_recordings(s.generation))
            w = _writer(ix)
        n = 0
        try:
            with damage_named():
                for t in items:
                    w.delete_by_term("recording", t.id)
                    for doc in documents(t):
                        w.add_document(**doc)
                        n += 1
                    recs[t.id] = {**recording_meta(t), "stamp": transcript_stamp(ws, t.id)}
                w.commit()  # the default merge policy merges small segments; never optimize
        except BaseException:
            with suppressed(_log, "cancelling the index writer"):
                w.cancel()
            raise
        _write_recordings(s.generation, recs)
        return n


def remove(ws: Workspace, recording_ids: Iterable[str]) -> int:
    """Delete every document of these recordings; returns how many documents went."""
    ids = list(recording_ids)
    with ws.lock("index"):
        s = state(ws)
        if s.schema != SCHEMA_VERSION or s.generation is None or not ids:
            return 0
        with damage_named():
            ix = index.open_dir(str(s.generation))
            w = _writer(ix)
        removed = 0
        try:
            with damage_named():
                for rid in ids:
                    removed += w.delete_by_term("recording", rid) or 0
                w.commit()
        except BaseException:
            with suppressed(_log, "cancelling the index writer"):
                w.cancel()
            raise
        recs = {k: v for k, v in _read_recordings(s.generation).items() if k not in ids}
        _write_recordings(s.generation, recs)
        return removed


def rebuild(
    ws: Workspace,
    progress: ProgressFn | None = None,
    *,
    skipped: list[tuple[str, str]] | None = None,
) -> int:
    """Rebuild the whole index from transcripts/ alone; returns the number of turns indexed.

    Builds into a new generation and swaps it in atomically: a crash leaves the old index.
    Transcripts that cannot be read are left out and listed in `skipped` as (id, why).
    """
    with ws.lock("index"):
        return _rebuild_locked(ws, progress=progress, skipped=skipped)


def _rebuild_locked(
    ws: Workspace,
    progress: ProgressFn | None = None,
    extra: list[Transcript] | None = None,
    skipped: list[tuple[str, str]] | None = None,
) -> int:
    ids = ws.transcript_ids()
    extra_by_id = {t.id: t for t in extra or []}
    total = len(set(ids) | set(extra_by_id))
    items = _iter_transcripts(ws, ids, extra_by_id, skipped)
    return _build_locked(ws, items, total, progress)


def build(
    ws: Workspace,
    transcripts: Iterable[Transcript],
    progress: ProgressFn | None = None,
    total: int = 0,
) -> int:
    """Replace the index with one built from `transcripts` (e.g. a generator; used by bench)."""
    with ws.lock("index"):
        return _build_locked(ws, transcripts, total, progress)


def _build_locked(
    ws: Workspace, transcripts: Iterable[Transcript], total: int, progress: ProgressFn | None
) -> int:
    gen = _new_generation(ws)
    recs: dict[str, dict[str, Any]] = {}
    n = 0
    try:
        ix = index.open_dir(str(gen))
        w = _writer(ix, limitmb=256)
        try:
            for done, t in enumerate(transcripts, 1):
                for doc in documents(t):
                    w.add_document(**doc)
                    n += 1
                recs[t.id] = {**recording_meta(t), "stamp": transcript_stamp(ws, t.id)}
                if progress:
                    progress(done, total)
            w.commit()
        except BaseException:
            # After a failed commit (disk full) Whoosh says "This writer is closed": the
            # original error is the one to report.
            with suppressed(_log, "cancelling the index writer"):
                w.cancel()
            raise
        _write_recordings(gen, recs)
    except BaseException:
        shutil.rmtree(gen, ignore_errors=True)
        raise
    _swap_in(ws, gen)
    return n


def _iter_transcripts(
    ws: Workspace,
    ids: list[str],
    extra: dict[str, Transcript],
    skipped: list[tuple[str, str]] | None = None,
) -> Iterator[Transcript]:
    for rid in ids:
        if rid in extra:
            continue
        try:
            yield load_path(ws.transcript_path(rid))
        except ConfindexError as exc:
            # A damaged transcript must not block the archive, nor vanish silently: the caller
            # lists it (`index --rebuild` exits non-zero).
            if skipped is not None:
                skipped.append((rid, exc.message))
    yield from extra.values()


def optimize(ws: Workspace) -> None:
    """Merge all segments into one (slow on a big index: minutes; never done implicitly)."""
    with ws.lock("index"):
        ix = open_index(ws)
        if ix is None:
            return
        with damage_named():
            ix.optimize()


def doc_count(ws: Workspace) -> int:
    ix = open_index(ws)
    with damage_named():
        return 0 if ix is None else ix.doc_count()


def indexed_ids(ws: Workspace) -> set[str]:
    return set(load_recordings(ws))


def missing(ws: Workspace) -> list[str]:
    """Transcript ids not (yet) in the index."""
    have = indexed_ids(ws)
    return [i for i in ws.transcript_ids() if i not in have]


def size_bytes(ws: Workspace) -> int:
    s = state(ws)
    if s.generation is None:
        return 0
    return sum(p.stat().st_size for p in s.generation.rglob("*") if p.is_file())


def transcript_stamp(ws: Workspace, recording_id: str) -> str | None:
    """Size and mtime of the transcript file, so that `sync` notices a hand-edited one."""
    try:
        st = ws.transcript_path(recording_id).stat()
    except OSError:
        return None
    return f"{st.st_size}:{st.st_mtime_ns}"


@dataclass(frozen=True)
class SyncResult:
    added: list[str]
    changed: list[str]
    removed: list[str]
    turns: int

    @property
    def up_to_date(self) -> bool:
        return not (self.added or self.changed or self.removed)


def sync(
    ws: Workspace, *, log: LogFn | None = None, skipped: list[tuple[str, str]] | None = None
) -> SyncResult:
    """Make the index match transcripts/: index new and changed transcripts (size or mtime
    differ from when they were indexed) and drop recordings whose transcript is gone.

    Transcripts that cannot be read are left out and listed in `skipped` as (id, why).
    """
    if not exists(ws):
        if needs_rebuild(ws) and log:
            log(stale_message(ws))
        ids = ws.transcript_ids()
        return SyncResult(ids, [], [], rebuild(ws, skipped=skipped) if ids else 0)
    check_readable(ws)  # a damaged index is never "up to date": it names the rebuild
    recs = load_recordings(ws)
    present = ws.transcript_ids()
    added = [i for i in present if i not in recs]
    changed = [i for i in present if i in recs and recs[i].get("stamp") != transcript_stamp(ws, i)]
    removed = sorted(set(recs) - set(present))
    if removed:
        remove(ws, removed)
    todo = added + changed
    n = add(ws, _iter_transcripts(ws, todo, {}, skipped), log=log) if todo else 0
    return SyncResult(added, changed, removed, n)


FIX_HINT = "run `confindex index --rebuild`"


def stale_warning(ws: Workspace) -> str | None:
    """One line naming the command that fixes a missing or stale index when transcripts exist
    (None when the index is current, or there is nothing to index). Readers (search, serve)
    say this and go on: they never build nor modify the index."""
    if ws.index_dir.exists() and not ws.index_dir.is_dir():
        raise ConfindexError(
            f"{ws.index_dir} is a file, but confindex needs a folder there: move the file away"
        )
    if exists(ws) or not ws.transcript_ids():
        return None
    s = state(ws)
    if s.schema == DAMAGED:
        what = f"the search index's pointer {ws.index_dir / CURRENT} is damaged"
    elif s.schema is not None and s.schema != SCHEMA_VERSION:
        what = (
            f"the search index was built by another confindex (index schema {s.schema}, "
            f"this version uses {SCHEMA_VERSION})"
        )
    elif s.schema is not None:
        what = "the search index is damaged"
    else:
        what = "there is no search index yet"
    return f"{what}: {FIX_HINT} (search finds nothing until then)"


_WARNED: set[tuple[Path, str]] = set()


def warn_if_stale(ws: Workspace, log: LogFn | None = None) -> bool:
    """Say `stale_warning` once per process and workspace (to `log`, else the logger); True
    when the index is missing or stale."""
    msg = stale_warning(ws)
    if msg is None:
        return False
    if log is not None:
        log(msg)
    elif (ws.root, msg) not in _WARNED:
        import logging

        logging.getLogger("confindex").warning("%s", msg)
    _WARNED.add((ws.root, msg))
    return True


def _warn_skipped(skipped: list[tuple[str, str]]) -> None:
    """A recording left out of an implicit (re)build must not vanish from search silently."""
    import logging

    log = logging.getLogger("confindex")
    for rid, why in skipped:
        log.warning("not indexed: %s: %s (fix or remove it, then: confindex index)", rid, why)
