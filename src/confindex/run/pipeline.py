"""One recording through every stage: the job (job.py: fetch → decode → diarize → asr → turns)
then the one writer (store/store.py, the Store: transcript → exports → ledger → index).

This module keeps the names older code and scripts import (`FetchOptions`, `Transcriber`,
`Reporter`, `publish`) and the two single-recording entry points: `obtain_media` (download into
the workspace, for the local executor's pipelined downloads) and `retranscribe`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from typing import Any

from confindex.run.fetch import Media, is_url, local_media, local_path, url_recording_id
from confindex.run.job import FetchOptions, Job, Reporter, Transcriber, diarize_options, run_job
from confindex.run.outcome import Outcome
from confindex.store import transcript as transcript_store
from confindex.store.store import Published, Store
from confindex.store.transcript import Transcript
from confindex.store.workspace import Workspace, check_writable

__all__ = [
    "FetchOptions",
    "Job",
    "Outcome",
    "Reporter",
    "Transcriber",
    "diarize_options",
    "job_for",
    "obtain_media",
    "publish",
    "retranscribe",
    "run_job",
]

log = logging.getLogger("confindex.run.pipeline")


def obtain_media(
    ws: Workspace,
    arg: str,
    reporter: Reporter | None = None,
    ydl_extra: dict[str, Any] | None = None,
) -> Media:
    """Download a URL into the workspace (`ydl_extra`: more yt-dlp options), or take a local
    file where it is; either way with the media's sha256, which finds duplicates. The time it
    took is the media's `timings` ("download" or "hash"; this thread's CPU: a bulk run
    downloads beside the main thread)."""
    from confindex.stagetime import StageTimes

    times = StageTimes()
    with times.step("download" if is_url(arg) else "hash", side=True):
        media = _obtain(ws, arg, reporter, ydl_extra)
    media.timings = times.to_dict()
    return media


def _obtain(
    ws: Workspace, arg: str, reporter: Reporter | None, ydl_extra: dict[str, Any] | None
) -> Media:
    if is_url(arg):
        from confindex.run.fetch import check_url, download

        check_url(arg)
        from confindex.store.workspace import sha256_file

        rid = url_recording_id(arg)
        if reporter:
            reporter.stage(rid, "download")
        media = download(
            ws, arg, progress=reporter.advance if reporter else None, ydl_extra=ydl_extra
        )
        media.recording.media_sha256 = sha256_file(media.path)
        return media
    return local_media(local_path(arg))


def publish(ws: Workspace, t: Transcript, *, index: bool = True, **kw: Any) -> Published:
    """See `Store.publish`: the one writer of transcripts, exports, index and ledger."""
    return Store(ws).publish(t, index=index, **kw)


@contextlib.contextmanager
def _ledger_row(ws: Workspace, old: Transcript) -> Iterator[tuple[Any, str | None]]:
    """The ledger row of a recording transcribed again, claimed for publish (added when the
    recording has none): `transcribe` is recorded like `fetch` — stages, audio time, work time
    — so `status` counts it. (None, None) when another run holds the row: publish then leaves
    the ledger to that run."""
    from confindex.store.ledger import NewItem
    from confindex.store.stages import Stage

    with Store(ws).ledger() as led:
        rows = [r for r in led.by_recording_id(old.id) if r.stage != Stage.DUPLICATE]
        if rows:
            key = rows[0].key
        else:
            rec = old.recording
            item = NewItem(rec.source, rec.source, rec.kind, None, old.id, rec.title)
            (key,) = led.add([item])
        led.reset([key])
        row = led.claim_next([key])
        if row is None:
            log.info("%s: another run holds its ledger row; not recorded there", old.id)
            yield None, None
            return
        try:
            yield led, key
        finally:
            led.release(key)  # a no-op once indexed (the row is no longer ours)


def job_for(ws: Workspace, old: Transcript, options: FetchOptions) -> Job:
    """The job that transcribes a recording of the workspace again: from its media when it is
    still there, else from its source (downloaded to a temporary folder); with its earlier
    diarization when the options turn diarization off (the speakers and their names stay)."""
    media_path = None
    if old.recording.media_path:
        media_path = str(ws.media_file(old.recording.media_path))
    elif old.recording.kind == "file":
        media_path = old.recording.source
    speakers = None
    if not options.diarize and old.diarization:
        speakers = [dataclasses.asdict(s) for s in old.diarization]
    return Job(
        source=old.recording.source,
        recording=dataclasses.asdict(old.recording),
        media_path=media_path,
        speakers=speakers,
    )


def retranscribe(
    ws: Workspace,
    ref: str,
    options: FetchOptions,
    reporter: Reporter | None = None,
    *,
    transcriber: Transcriber | None = None,
) -> Outcome:
    """Redo the transcription of a recording already in the workspace (by id or source).

    Speaker names are carried to the new labels by time overlap and the replaced version is
    kept in the history (publish does both), whatever the options, and also when the media
    was deleted and the source has to be fetched again.
    """
    import time

    t0 = time.perf_counter()
    old = transcript_store.resolve_recording(ws, ref)
    # Publishing writes transcripts/, the ledger and the index: fail now, not after the work.
    check_writable([ws.transcripts, ws.state, *([ws.index_dir] if options.index else [])])
    t = run_job(job_for(ws, old, options), options, transcriber, reporter)
    if old.recording.media_path and not t.recording.media_path:
        t.recording.media_path = None  # fetched again into a temporary folder: gone now
    if reporter:
        reporter.stage(t.id, "index")
    with _ledger_row(ws, old) as (ledger, key):
        Store(ws).publish(
            t,
            index=options.index,
            formats=options.formats,
            output_dir=options.output_dir,
            ledger=ledger,
            key=key,
            diarized=bool(t.diarization),
            work_seconds=time.perf_counter() - t0,
            keep_edits=options.keep_edits,
        )
        if ledger is not None and not options.index:
            ledger.release(key)
    if reporter:
        reporter.done(t.id, "done", f"{len(t.turns)} turns")
    return Outcome(
        ref,
        "done",
        t.id,
        t.recording.title,
        audio_seconds=t.duration,
        wall_seconds=round(time.perf_counter() - t0, 3),
        turns=len(t.turns),
    )
