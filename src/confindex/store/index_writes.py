"""The Store's writes of the search index (and its passage vectors): a part of `Store`
(store.py), kept in its own file; nothing else writes the index."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from confindex.errors import ConfindexError
from confindex.store import transcript as transcripts
from confindex.store.stages import Stage
from confindex.store.transcript import Transcript
from confindex.store.workspace import Workspace, make_dir

if TYPE_CHECKING:
    from confindex.search.index import SyncResult
    from confindex.store.ledger import Ledger

log = logging.getLogger("confindex.store.store")

ProgressFn = Callable[[int, int], None]
LogFn = Callable[[str], None]


class IndexWrites:
    ws: Workspace

    def index(self, items: Iterable[Transcript], *, log: LogFn | None = None) -> int:
        """Index these transcripts, replacing their recordings' documents; returns turns."""
        from confindex.search import index as search_index

        return search_index.add(self.ws, items, log=log)

    def reindex(self, recording_ids: Iterable[str]) -> int:
        """Index these recordings again from their transcripts on disk; returns turns."""
        ids = list(recording_ids)
        if not ids:
            return 0
        return self.index(transcripts.load_path(self.ws.transcript_path(i)) for i in ids)

    def embed(self, t: Transcript) -> None:
        """Semantic search: embed the passages of a published transcript once (a failure is
        logged, never fatal: `confindex index` embeds what is missing)."""
        from confindex.search import vector_build

        vector_build.after_publish(self.ws, t)

    def unembed(self, recording_ids: Iterable[str]) -> int:
        """Drop these recordings' passage vectors; returns how many went."""
        from confindex.search import vector_build

        return vector_build.remove(self.ws, recording_ids)

    def sync_vectors(
        self,
        *,
        rebuild: bool = False,
        log: LogFn | None = None,
        skipped: list[tuple[str, str]] | None = None,
    ) -> dict[str, Any]:
        """Make the semantic vectors match transcripts/ (a new store with `rebuild`; a killed
        embedding, a damaged or stale store is rebuilt, reusing what it can); what was done."""
        from confindex.search import vector_build

        return vector_build.sync(self.ws, rebuild=rebuild, log_fn=log, skipped=skipped).to_dict()

    def unindex(self, recording_ids: Iterable[str]) -> int:
        """Delete every index document of these recordings; returns how many went."""
        from confindex.search import index as search_index

        return search_index.remove(self.ws, recording_ids)

    def rebuild_index(
        self, progress: ProgressFn | None = None, *, skipped: list[tuple[str, str]] | None = None
    ) -> int:
        """Rebuild the whole index from transcripts/ (atomically); returns turns indexed."""
        from confindex.search import index as search_index

        make_dir(self.ws.index_dir)
        return search_index.rebuild(self.ws, progress, skipped=skipped)

    def sync_index(
        self, *, log: LogFn | None = None, skipped: list[tuple[str, str]] | None = None
    ) -> SyncResult:
        """Make the index match transcripts/ (new, changed, deleted transcripts)."""
        from confindex.search import index as search_index

        make_dir(self.ws.index_dir)
        return search_index.sync(self.ws, log=log, skipped=skipped)

    def optimize_index(self) -> None:
        """Merge the index's segments into one (minutes on a big index)."""
        from confindex.search import index as search_index

        search_index.optimize(self.ws)

    def reconcile(self, ledger: Ledger, keys: list[str], *, index: bool = True) -> None:
        """The transcripts are the truth: requeue `indexed` ledger rows whose transcript is
        gone, and (with `index`) index those missing from the index (it was deleted or rebuilt
        without them)."""
        from confindex.log import suppressed
        from confindex.search import index as search_index

        rows = [r for r in ledger.rows(keys) if r.stage == Stage.INDEXED and r.recording_id]
        gone = [r.key for r in rows if not transcripts.exists(self.ws, r.recording_id or "")]
        if gone:
            ledger.reset(gone)
        if not index:
            return
        have = search_index.indexed_ids(self.ws)
        missing = [
            r.recording_id
            for r in rows
            if r.key not in gone and r.recording_id and r.recording_id not in have
        ]
        if missing:
            # A damaged transcript: `index` reports it.
            with suppressed(log, "indexing transcripts missing from the index", ConfindexError):
                self.reindex(missing)
