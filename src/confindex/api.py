"""The public Python API: `Archive(path)`, whose methods are the CLI's commands.

    from confindex import Archive

    archive = Archive("my-archive")
    summary = archive.fetch("talk.mp4", language="en")
    for hit in archive.search("cold war"):
        print(hit.title, hit.time, hit.snippet)

Every method returns plain dataclasses (with `to_dict()` for JSON) and raises
`ConfindexError` subclasses with one-line messages for expected failures. Heavy libraries
(faster-whisper, yt-dlp, sherpa-onnx, dask) are imported only by the methods that need them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confindex.errors import ConfindexError, InputError
from confindex.results import ArchiveStats, IndexReport, LedgerStatus, RenameResult
from confindex.store.corrections import Corrections
from confindex.store.workspace import Workspace

if TYPE_CHECKING:  # the return types: tests/test_api.py resolves them from these imports
    from collections.abc import Iterator

    from confindex.formats.cite import Citation
    from confindex.run.executors import ExecutorOptions
    from confindex.run.inputs import WorkItem
    from confindex.run.job import FetchOptions, Reporter
    from confindex.run.outcome import Outcome, RunSummary
    from confindex.run.scheduler import BulkOptions
    from confindex.search.hits import Hit, SearchResult
    from confindex.speech.quality import Passage
    from confindex.store.catalog import Entry, Removed
    from confindex.store.speakers import ArchiveSpeaker, Identified, Review, SpeakerInfo
    from confindex.store.transcript import Transcript, Turn

# The run layer (job → speech → numpy) is imported where a method needs it: `confindex search`
# and every other read-only command paid ~0.15 s CPU per start for it (numpy alone ~0.12 s).

log = logging.getLogger("confindex")

__all__ = [
    "Archive",
    "ArchiveStats",
    "IndexReport",
    "LedgerStatus",
    "RenameResult",
]


class Archive(Corrections):
    """A workspace folder (transcripts/, index/, media/, .confindex/) and what can be done
    with it. `path` None: $CONFINDEX_HOME, else the current directory."""

    def __init__(self, path: str | os.PathLike[str] | Workspace | None = None) -> None:
        self.ws = path if isinstance(path, Workspace) else Workspace.resolve(path)

    @property
    def root(self) -> Path:
        return self.ws.root

    def __repr__(self) -> str:
        return f"Archive({str(self.ws.root)!r})"

    # -- transcription ------------------------------------------------------------------------

    def fetch(
        self,
        *inputs: str,
        batch_files: Sequence[str] = (),
        match_title: str | None = None,
        date_after: str | None = None,
        date_before: str | None = None,
        max_recordings: int | None = None,
        force: bool = False,
        index: bool = True,
        formats: str | Sequence[str] | None = None,
        output_dir: str | os.PathLike[str] | None = None,
        download_workers: int = 1,
        retries: int = 3,
        sleep_interval: float | None = None,
        limit_rate: str | None = None,
        cookies: str | None = None,
        cookies_from_browser: str | None = None,
        ydl_extra: dict[str, Any] | None = None,
        executor: str = "local",
        workers: int | None = None,
        scheduler: str | None = None,
        reporter: Reporter | None = None,
        **options: Any,
    ) -> RunSummary:
        """Download, transcribe, diarize and index recordings (URLs, files, folders,
        playlists); returns the run's `RunSummary` (one result per recording). Options are
        checked before anything is downloaded. `formats`: the exports to write ("all",
        "none", "srt,vtt" or a list; default: the workspace config, else all), `output_dir`:
        where (default: beside the transcripts). `sleep_interval`, `limit_rate` ("2M"),
        `cookies` (a file), `cookies_from_browser` ("firefox[:profile]"): yt-dlp politeness
        and access; `ydl_extra`: any further yt-dlp option.

        `executor="dask"` runs the jobs on Dask workers: `workers=N` starts a LocalCluster of
        N processes here, `scheduler="tcp://HOST:PORT"` uses a running cluster; this process
        stays the only writer of the archive."""
        from confindex.run.executors import ExecutorOptions
        from confindex.run.fetch import politeness_options
        from confindex.run.inputs import Filters, expand
        from confindex.run.options import bulk_options, fetch_options
        from confindex.speech.heap import keep_freed_memory

        keep_freed_memory()  # before any thread starts: see speech/heap.py

        if not inputs and not batch_files:
            raise InputError("give URLs, files or folders, or a batch file")
        opts = fetch_options(
            force=force, index=index, formats=formats, output_dir=output_dir, **options
        )
        ydl = politeness_options(
            sleep_interval=sleep_interval,
            limit_rate=limit_rate,
            cookies=cookies,
            cookies_from_browser=cookies_from_browser,
        )
        ex = ExecutorOptions(executor, workers, scheduler)
        filters = Filters(
            match_title=match_title,
            date_after=date_after,
            date_before=date_before,
            max_recordings=max_recordings,
        )
        items = expand(
            list(inputs),
            batch_files=list(batch_files),
            filters=filters,
            exclude=[self.ws.media, self.ws.state],
        )
        if not items:
            raise ConfindexError("nothing to fetch: no media files or recordings in the inputs")
        bulk = bulk_options(download_workers, retries, {**ydl, **(ydl_extra or {})})
        return self.run(items, opts, bulk, executor=ex, reporter=reporter)

    def run(
        self,
        items: list[WorkItem] | None,
        options: FetchOptions,
        bulk: BulkOptions,
        *,
        executor: ExecutorOptions | None = None,
        reporter: Reporter | None = None,
    ) -> RunSummary:
        """Run work items (None: every unfinished row of the ledger) through the bulk runner,
        on `executor` (default: this process). A cluster that cannot be started or reached
        is an ExecutorError before anything is written."""
        from confindex.run.scheduler import BulkRunner

        cluster = None
        if executor is not None and executor.is_dask:
            from confindex.run.executors import DaskCluster

            cluster = DaskCluster(executor).start()
        try:
            if cluster is not None:
                cluster.wait_for_workers(1)
                bulk.cluster = cluster
            runner = BulkRunner(self.ws, options, bulk, reporter=reporter)
            return runner.run(items)
        finally:
            if cluster is not None:
                cluster.close()

    def transcribe(
        self, recording: str, *, reporter: Reporter | None = None, **options: Any
    ) -> Outcome:
        """Transcribe one recording again (a recording id or prefix, or the file/URL it came
        from) with new options; a file or URL not in the archive yet is fetched. Speaker names
        are kept and the replaced version goes to the history (`undo`). Returns an Outcome."""
        from confindex.errors import NotFoundError
        from confindex.run.options import build_options, validate_options
        from confindex.run.outcome import Outcome
        from confindex.run.pipeline import retranscribe
        from confindex.store import transcript as store

        opts = build_options(force=True, **options)
        validate_options(opts)
        try:
            store.resolve_recording(self.ws, recording)
        except NotFoundError as exc:
            from confindex.run.fetch import is_url, local_path

            if not is_url(recording) and not os.path.lexists(local_path(recording)):
                # A mistyped id: not "no such file" (and no failed row in the ledger).
                raise NotFoundError(f"{exc.message}, nor a file or URL of that name") from None
            summary = self.fetch(recording, force=True, reporter=reporter, **options)
            if not summary.results:
                return Outcome(recording, "failed")
            return summary.results[0].outcome()
        return retranscribe(self.ws, recording, opts, reporter)

    def transcribe_span(
        self, recording: str, span: str, *, reporter: Reporter | None = None, **options: Any
    ) -> Outcome:
        """Decode one passage of a recording again (`span` "12:30-14:00", e.g. one `review`
        flagged) with other options — a bigger model, a forced language, hotwords — and splice
        it in: the rest stays, the new words keep the recording's speakers and their names,
        flags, exports and index follow, the replaced version goes to the history (`undo`).
        The span and options are checked before the model loads. Returns an Outcome."""
        from confindex.run.options import build_options, validate_options
        from confindex.run.span import parse_span, redecode
        from confindex.store import transcript as store

        opts = build_options(force=True, **options)
        validate_options(opts)
        old = store.resolve_recording(self.ws, recording)  # a span needs the archive's recording
        parse_span(span, old.duration or None)
        return redecode(self.ws, old.id, span, opts, reporter)

    def undo(self, recording: str) -> Transcript:
        """Restore the version of a recording's transcript before its last overwrite
        (an edit, merge, meta, re-transcription, rename, `--force`); returns the restored
        Transcript."""
        from confindex.store import transcript as store
        from confindex.store.store import Store

        t = store.resolve_recording(self.ws, recording)
        return Store(self.ws).undo(t.id)

    def history(self, recording: str) -> list[str]:
        """Paths of the kept earlier versions of a recording's transcript, oldest first."""
        from confindex.store import transcript as store
        from confindex.store.store import Store

        t = store.resolve_recording(self.ws, recording)
        return [str(p) for p in Store(self.ws).history(t.id)]

    def resume(
        self,
        *,
        download_workers: int | None = None,
        executor: ExecutorOptions | None = None,
        reporter: Reporter | None = None,
    ) -> RunSummary:
        """Finish every unfinished recording of the ledger with the options of the last run."""
        return self.rerun(
            None, download_workers=download_workers, executor=executor, reporter=reporter
        )

    def retry_failed(
        self,
        *,
        requeue_only: bool = False,
        download_workers: int | None = None,
        executor: ExecutorOptions | None = None,
        reporter: Reporter | None = None,
    ) -> RunSummary | list[str]:
        """Queue failed recordings again and (unless `requeue_only`) run them; returns the
        RunSummary, or the requeued keys with `requeue_only` (or when none failed)."""
        from confindex.store.store import Store

        if not self._has_ledger():
            raise ConfindexError(f"nothing to retry: no bulk run in {self.ws.root}")
        with Store(self.ws).ledger() as led:
            keys = led.retry_failed()
        if requeue_only or not keys:
            return keys
        return self.rerun(
            keys, download_workers=download_workers, executor=executor, reporter=reporter
        )

    def _has_ledger(self) -> bool:
        return self.ws.ledger_path.exists()

    def last_run_options(self) -> tuple[FetchOptions, dict[str, Any]]:
        """The transcription options of the latest run and its scheduling options."""
        from confindex.run.job import FetchOptions
        from confindex.store.store import Store

        if not self._has_ledger():
            raise ConfindexError(f"nothing to resume: no bulk run in {self.ws.root}")
        with Store(self.ws).ledger() as led:
            run = led.last_run()
        stored = (run or {}).get("options") or {}
        options = FetchOptions.from_dict(stored)
        options.force = False
        return options, stored

    def rerun(
        self,
        keys: list[str] | None,
        *,
        download_workers: int | None = None,
        executor: ExecutorOptions | None = None,
        reporter: Reporter | None = None,
    ) -> RunSummary:
        """Run ledger rows (`keys`; None: every unfinished one) with the last run's options."""
        from confindex.run.options import validate_options
        from confindex.run.scheduler import BulkOptions

        options, stored = self.last_run_options()
        validate_options(options)
        if download_workers is None:
            download_workers = int(stored.get("download_workers", 1))
        items = None
        if keys is not None:
            from confindex.run.inputs import WorkItem
            from confindex.store.store import Store

            with Store(self.ws).ledger() as led:
                items = [
                    WorkItem(r.key, r.source, r.kind, r.parent, r.recording_id, r.title)
                    for r in led.rows(keys)
                ]
        return self.run(
            items,
            options,
            BulkOptions(download_workers=download_workers),
            executor=executor,
            reporter=reporter,
        )

    # -- reading ------------------------------------------------------------------------------

    def recording(self, ref: str | Transcript) -> Transcript:
        """The Transcript of a recording (id, unique id prefix, or its source URL/path); a
        Transcript given is returned as is."""
        from confindex.store import transcript as store

        if isinstance(ref, store.Transcript):
            return ref
        return store.resolve_recording(self.ws, ref)

    def recordings(self) -> Iterator[Transcript]:
        """Every transcript of the archive, in id order."""
        from confindex.store import transcript as store

        return store.iter_all(self.ws)

    def list_recordings(self, **filters: str | None) -> list[Entry]:
        """The recordings as `confindex list` shows them (catalog Entries, newest first);
        filters: title, speaker, channel, lang, since, until."""
        from confindex.store.catalog import Filters, entries

        return entries(self.ws, Filters(**filters))

    def remove(self, *refs: str, media: bool = False) -> list[Removed]:
        """Remove recordings everywhere (transcript, exports, index, ledger; downloaded media
        with `media=True`). Every ref is checked before anything is removed."""
        from confindex.store.catalog import remove, resolve_ids

        return remove(self.ws, resolve_ids(self.ws, refs), media=media)

    def search(
        self,
        query: str,
        *,
        limit: int = 10,
        offset: int = 0,
        group: bool = False,
        context: int = 0,
        log_fn: Any = None,
        semantic: bool = False,
    ) -> SearchResult:
        """Search the archive (the query language of `confindex search`); a SearchResult.

        Each hit is a turn; `hit.mentions` are the places in it where the query is said, each
        with its own second and link (`result.mentions`: all of them, as (hit, mention)).
        `semantic=True`: lexical and meaning hits fused, in any language; each hit a passage
        cited at its first word, `hit.match` "lexical" | "semantic" | "both" and, for meaning
        hits, `hit.similarity`.
        """
        if semantic:
            from confindex.search.fusion import hybrid_search as search
        else:
            from confindex.search.hits import search

        began = time.perf_counter()
        result = search(
            self.ws, query, limit=limit, offset=offset, group=group, context=context, log=log_fn
        )
        log.info(
            "search %r read as %r: %s%d match(es), %d shown, in %.0f ms",
            query,
            result.query,
            "" if result.exact else "about ",
            result.total,
            len(result.hits),
            (time.perf_counter() - began) * 1000,
        )
        return result

    def related(
        self, recording: Any, at: float, *, limit: int = 10, log_fn: Any = None
    ) -> tuple[Hit, list[Hit]]:
        """The passages across the archive closest in meaning to the one spoken at second `at`
        of `recording`: (that passage, related passages best first), each a Hit."""
        from confindex.search.fusion import related

        t = self.recording(recording)
        return related(self.ws, t.id, float(at), limit=limit, log=log_fn)

    def review(
        self, recording: Any, *, kinds: Sequence[str] | None = None, min_score: float = 0.0
    ) -> list[Passage]:
        """The passages of a recording flagged as likely wrong (quality.py's Passage: kind,
        start, end, score, reason, speaker, text, link), in time order; `kinds` keeps only
        those kinds (loop, nonspeech, lowconf, language, undecoded, missed), `min_score` (0–1)
        the surer ones."""
        from confindex.speech.quality import KINDS, review

        unknown = sorted(set(kinds or ()) - set(KINDS))
        if unknown:
            raise InputError(f"unknown flag kind(s) {', '.join(unknown)}: use {', '.join(KINDS)}")
        if not 0.0 <= min_score <= 1.0:
            raise InputError(f"min_score {min_score} is not between 0 and 1")
        return review(self.recording(recording), kinds or None, min_score)

    def show(self, recording: Any, at: float | None = None, around: float = 60.0) -> list[Turn]:
        """The turns of a recording, all of them or those within `around` s of `at` (a moment
        past the recording's end is an InputError)."""
        from confindex.formats.cite import check_moment

        t = self.recording(recording)
        if at is None:
            return list(t.turns)
        check_moment(t, at)
        return [x for x in t.turns if x.end >= at - around and x.start <= at + around]

    def cite(self, recording: Any, at: float | None = None, *, span: str | None = None) -> Citation:
        """A Citation of what was said at `at` seconds (its sentence), or of exactly the words
        starting in `span` ("57.2-61"): `.render(style)` with style apa, chicago, bibtex,
        ris or csl; an InputError when the moment lies outside the recording."""
        from confindex.formats.cite import cite, cite_span

        t = self.recording(recording)
        if span is not None:
            return cite_span(t, *self._span(t, span))
        return cite(t, at or 0.0)

    def export(
        self,
        recording: Any,
        fmt: str = "srt",
        *,
        max_line_width: int | None = None,
        max_line_count: int | None = None,
    ) -> str:
        """A recording's transcript rendered as text: srt, vtt, txt, md, rttm, json, or the
        QDA formats eaf, exb, maxqda, atlasti, nvivo (subtitle line limits: the arguments,
        else the workspace config, else 42 × 2). Binary formats (docx): `export_bytes`."""
        from confindex.formats.export import cue_style, render

        style = cue_style(self.ws, max_line_width=max_line_width, max_line_count=max_line_count)
        return render(self.recording(recording), fmt, style, self.ws.root)

    def chapters(self, recording: Any, *, recompute: bool = False) -> Transcript:
        """The Transcript of a recording with its chapters (issue 32): the stored ones; computed
        in memory (not saved) for a transcript published before chapters existed; with
        `recompute`, computed again and published (transcript, exports, index)."""
        from confindex.search import topics
        from confindex.store.store import Store

        t = self.recording(recording)
        if recompute:
            t.chapters, t.chapters_of = topics.compute(t), topics.fingerprint(t)
            # Published as any edit is (history kept, exports, index): keeps what was computed.
            Store(self.ws).publish(t, recognise_voices=False)
        elif not t.chapters:
            topics.refresh(t)
        return t

    def export_bytes(self, recording: Any, fmt: str = "srt", **limits: Any) -> bytes:
        """Any export format as the bytes of its file (UTF-8 for the text ones)."""
        from confindex.formats.export import cue_style, render_bytes

        style = cue_style(self.ws, **limits)
        return render_bytes(self.recording(recording), fmt, style, self.ws.root)

    def export_all(self, fmt: str, folder: str | os.PathLike[str], **limits: Any) -> list[Path]:
        """Write every recording as `folder/ID.<ext>` (created if missing); the paths written."""
        from confindex.formats.export import file_name
        from confindex.store.workspace import atomic_write_bytes

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for t in self.recordings():
            dest = out / file_name(t.id, fmt)
            atomic_write_bytes(dest, self.export_bytes(t, fmt, **limits))
            written.append(dest)
        return written

    def speakers(self, recording: Any) -> list[SpeakerInfo]:
        """The speakers of a recording (SpeakerInfo: label, name, talk time, first quote)."""
        from confindex.store.speakers import list_speakers

        return list_speakers(self.recording(recording))

    def archive_speakers(self) -> tuple[list[ArchiveSpeaker], int]:
        """The people of the archive (ArchiveSpeaker: recordings, talk time, first and last
        appearance), one per person whatever the spelling of case and spaces, and the count
        of speakers still unnamed."""
        from confindex.store.speakers import list_archive

        return list_archive(self.ws)

    def rename_speaker(
        self, recording: str, speaker: str, name: str, *, enroll: bool = True
    ) -> RenameResult:
        """Name a speaker (label or current name) of a recording; exports and index follow.
        Giving the label as `name` clears the name. The voice is enrolled in the voice library
        under that name (new recordings then name that person) unless `enroll` is False."""
        from confindex.store.speakers import list_speakers, rename

        t, label = rename(self.ws, recording, speaker, name, enroll=enroll)
        return RenameResult(t.id, label, t.speakers.get(label), list_speakers(t))

    def pending_names(self, *recordings: str) -> list[Review]:
        """Names the voice library gave and nobody confirmed yet (speakers.Review: recording,
        label, name, score, margin), in the given recordings or all."""
        from confindex.store.speakers import pending

        return pending(self.ws, recordings)

    def confirm_speaker(self, recording: str, speaker: str) -> RenameResult:
        """Keep the automatic name of `speaker`: it becomes a user's name and is enrolled."""
        from confindex.store.speakers import list_speakers, review

        t, label, name = review(self.ws, recording, speaker, accept=True)
        return RenameResult(t.id, label, name, list_speakers(t))

    def reject_speaker(self, recording: str, speaker: str) -> RenameResult:
        """Take back the automatic name of `speaker` (it reverts to its label) and never
        suggest that name again for it in this recording. `name` is the rejected name."""
        from confindex.store.speakers import list_speakers, review

        t, label, name = review(self.ws, recording, speaker, accept=False)
        return RenameResult(t.id, label, name, list_speakers(t))

    def identify_speakers(self, *recordings: str) -> list[Identified]:
        """Recognise the library's voices again in existing recordings (all when none given),
        computing missing voiceprints from the media when it is still there.
        Returns speakers.Identified per recording: the names given or taken back."""
        from confindex.store.speakers import identify

        return identify(self.ws, recordings)

    # -- the index ----------------------------------------------------------------------------

    def index(
        self,
        *,
        rebuild: bool = False,
        optimize: bool = False,
        progress: Any = None,
        log_fn: Any = None,
    ) -> IndexReport:
        """Bring the search index up to date with transcripts/ (new, changed, deleted ones),
        or rebuild it from them; optionally merge its segments. Transcripts that could not be
        read are listed in the report's `skipped` (and the index goes on without them)."""
        from confindex.store.store import Store

        t0 = time.monotonic()
        skipped: list[tuple[str, str]] = []
        store = Store(self.ws)
        report = IndexReport(rebuilt=rebuild)
        if rebuild:
            report.turns = store.rebuild_index(progress, skipped=skipped)
        else:
            r = store.sync_index(log=log_fn, skipped=skipped)
            report.added, report.changed, report.removed = r.added, r.changed, r.removed
            report.turns = r.turns
        # Exports older than their transcript (a crash between the two) are written again.
        report.exports_repaired = store.repair_exports()
        # Semantic search's vectors follow the same transcripts.
        report.vectors = store.sync_vectors(rebuild=rebuild, log=log_fn, skipped=skipped)
        report.seconds = time.monotonic() - t0
        report.skipped = skipped
        if optimize and not skipped:
            t1 = time.monotonic()
            store.optimize_index()
            report.optimize_seconds = time.monotonic() - t1
        return report

    def status(self) -> LedgerStatus:
        """Progress of bulk runs, from the ledger (`confindex status`)."""
        from confindex.store.report import ledger_status

        return LedgerStatus(**ledger_status(self.ws))

    def stats(self) -> ArchiveStats:
        """Figures of the indexed archive (`confindex stats`)."""
        from confindex.store.report import archive_stats

        return ArchiveStats(**archive_stats(self.ws))
