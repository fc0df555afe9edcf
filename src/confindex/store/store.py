"""The one writer of a workspace.

Every write to a workspace goes through a `Store`: a finished transcript (`publish`), the
exports beside it, its earlier versions (`undo`, `history`), its index documents (`index`,
`unindex`, `rebuild_index`, `sync_index`), the voice library (voices.json) and the removal of a
recording everywhere. The job ledger is written by `store.ledger.Ledger`, which a Store opens
(`ledger()`) for the run that drives it. Readers (search, serve, list, show) never write:
a missing or stale index is a warning that names `confindex index --rebuild`.

Publishing writes transcript JSON, exports, ledger stages and index entries, in that order, so
that a crash between two steps leaves the source of truth (the transcript) ahead of what is
derived from it. Two rules hold for every transcript written:

- manual work is kept: speaker names users gave in the transcript being replaced are carried
  to the new speaker labels by time overlap (with the names they rejected and the voices
  they kept out of the voice library; carry.py has the pure functions);
- speakers nobody named are named by the voice library when it knows their voice (marked
  automatic, with the score), here and only here;
- nothing is overwritten without a copy: the previous version goes to
  `transcripts/.history/ID/` first, and `undo` brings it back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confindex.errors import ConfindexError, NotFoundError
from confindex.store import transcript as transcripts
from confindex.store.edits import carry_edits
from confindex.store.history import commit
from confindex.store.index_writes import IndexWrites
from confindex.store.stages import Stage
from confindex.store.transcript import Transcript
from confindex.store.voice_writes import VoiceWrites
from confindex.store.workspace import Workspace, atomic_write_bytes, make_dir

if TYPE_CHECKING:
    from confindex.store.ledger import Ledger

log = logging.getLogger("confindex.store.store")

ProgressFn = Callable[[int, int], None]
LogFn = Callable[[str], None]


@dataclass
class Published:
    """What `publish` did for one recording."""

    recording_id: str
    previous_kept: str | None  # path of the copy of the version it replaced
    names_carried: dict[str, str]  # new label -> name, from the replaced version
    indexed: bool
    recognised: dict[str, str] = field(default_factory=dict)  # label -> name, by the library

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Removed:
    """What `remove` deleted for one recording."""

    id: str
    files: list[str] = field(default_factory=list)
    index_docs: int = 0
    ledger_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Store(IndexWrites, VoiceWrites):
    """The writer of one workspace (cheap to make: it holds no open file)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def __repr__(self) -> str:
        return f"Store({str(self.ws.root)!r})"

    # -- transcripts -----------------------------------------------------------------------

    def publish(
        self,
        t: Transcript,
        *,
        index: bool = True,
        keep_names: bool = True,
        recognise_voices: bool = True,
        ledger: Ledger | None = None,
        key: str | None = None,
        diarized: bool | None = None,
        work_seconds: float | None = None,
        on_stage: Callable[[str], None] | None = None,
        formats: list[str] | None = None,
        output_dir: str | None = None,
        keep_edits: bool = True,
    ) -> Published:
        """Write `t` as the recording's transcript, its exports, its index entries and (with a
        `ledger` and its row `key`) the ledger stages; keep the version it replaces.
        `on_stage("index")` is called once the transcript is saved, before indexing. `formats`
        and `output_dir`: which exports and where (None: the config); `keep_edits`: carry_edits."""
        from confindex.store.carry import carry_names, carry_voice_marks

        ws = self.ws.ensure()
        kept: Path | None = None
        carried: dict[str, str] = {}
        old: Transcript | None = None
        if transcripts.exists(ws, t.id):
            kept = self.keep_previous(t.id)
            if keep_names:
                try:
                    old = transcripts.load(ws, t.id)
                except NotFoundError:
                    old = None
                if old is not None and old.speakers:
                    carried = carry_names(old, t)
                    for label, name in carried.items():
                        t.speakers.setdefault(label, name)
                    log.debug("%s: names carried %s", t.id, carried)
                if old is not None:  # users' voice marks, edits, metadata (issue 27)
                    carry_voice_marks(old, t)
                    carry_edits(old, t, words=keep_edits)
        # After the users' names are carried: the library names only speakers nobody named.
        recognised = self.recognise(t) if recognise_voices else {}
        from confindex.search import topics  # chapters follow the words (issue 32)

        topics.refresh(t, old)  # (kept as they were when the turns did not change)
        transcripts.save(ws, t)
        if diarized is None:
            diarized = bool(t.diarization)
        self.settle(
            t,
            ledger=ledger,
            key=key,
            stage=Stage.DIARIZED if diarized else Stage.TRANSCRIBED,
            index=index,
            formats=formats,
            output_dir=output_dir,
            on_stage=on_stage,
            work_seconds=work_seconds,
        )
        return Published(t.id, str(kept) if kept else None, carried, index, recognised)

    def settle(
        self,
        t: Transcript,
        *,
        ledger: Ledger | None = None,
        key: str | None = None,
        stage: Stage | None = Stage.TRANSCRIBED,
        index: bool = True,
        formats: list[str] | None = None,
        output_dir: str | None = None,
        on_stage: Callable[[str], None] | None = None,
        work_seconds: float | None = None,
        started: float | None = None,
    ) -> None:
        """Everything derived from a saved transcript, in publish's order: its exports and the
        ledger's `stage` (both skipped when `stage` is None: they were written before), then
        its index documents and the ledger's `indexed` (with `work_seconds`, or the seconds
        since `started`, a perf_counter value). A run that finds a transcript saved just before
        a crash finishes it here."""
        recorded = ledger is not None and key is not None
        if stage is not None:
            self.write_exports(t, formats=formats, output_dir=output_dir)
            if recorded:
                assert ledger is not None and key is not None
                ledger.advance(
                    key, stage, recording_id=t.id, audio_seconds=t.duration, title=t.recording.title
                )
        if index:
            if on_stage:
                on_stage("index")
            self.index([t])
            if recorded:
                assert ledger is not None and key is not None
                if started is not None:
                    work_seconds = time.perf_counter() - started
                extra = {} if work_seconds is None else {"work_seconds": round(work_seconds, 3)}
                ledger.advance(key, Stage.INDEXED, audio_seconds=t.duration, **extra)
            if on_stage:
                on_stage("embed")
            self.embed(t)

    def republish(self, t: Transcript, what: str = "renamed") -> None:
        """Publish `t` as it is (transcript, exports, index; the version before is kept in the
        history): no names carried, no recognition run — a user's edit of speakers."""
        try:
            self.publish(t, keep_names=False, recognise_voices=False)
        except ConfindexError as exc:
            if not _saved(self.ws, t):
                # A full disk failed the history copy or the transcript itself: say that
                # nothing was saved (it said "renamed in the transcript" with the old name
                # still there, and left an empty history folder).
                _drop_empty_history(self.ws, t.id)
                raise ConfindexError(f"nothing was saved: {exc.message}") from None
            raise ConfindexError(
                f"{what} in the transcript, but the index was not updated ({exc.message}); "
                "run `confindex index --rebuild`"
            ) from None

    def repair_exports(self) -> list[str]:
        """Rewrite the exports beside transcripts/ that are older than their transcript; the
        paths rewritten. A crash between saving a transcript and writing its exports (kill -9
        during `speakers rename`, 1 of 15 seeded kills) left a .vtt with the old name, and
        `index` did not repair it. Unreadable transcripts are left to the index's report."""
        from confindex.formats.export import (
            DEFAULT_STYLE,
            FORMATS,
            cue_style,
            file_name,
            render_bytes,
        )

        ws = self.ws
        fixed: list[str] = []
        for rid in ws.transcript_ids():
            try:
                mtime = ws.transcript_path(rid).stat().st_mtime_ns
            except (OSError, ConfindexError):
                continue
            stale = []
            for fmt in FORMATS:
                if fmt == "json":  # the transcript itself
                    continue
                path = ws.transcripts / file_name(rid, fmt)
                with contextlib.suppress(OSError):
                    if path.stat().st_mtime_ns < mtime:
                        stale.append((fmt, path))
            if not stale:
                continue
            try:
                t = transcripts.load(ws, rid)
            except ConfindexError:
                continue
            style = cue_style(ws) if any(f in ("srt", "vtt") for f, _ in stale) else DEFAULT_STYLE
            for fmt, path in stale:
                atomic_write_bytes(path, render_bytes(t, fmt, style, ws.root))
                fixed.append(str(path))
        return fixed

    def save_change(self, t: Transcript, *, expect: str, index: bool = True) -> str:
        """A user's change made from version `expect`: see store/history.py `commit`."""
        return commit(self, t, expect=expect, index=index)

    def write_exports(
        self, t: Transcript, *, formats: list[str] | None = None, output_dir: str | None = None
    ) -> list[str]:
        """Write the exports of `t` (atomically); returns their paths. By default every format
        beside the transcript JSON; `formats`/`output_dir` (else the workspace config's [fetch]
        values) choose which and where (a relative folder is under the workspace)."""
        from confindex.config import export_defaults
        from confindex.formats.export import (
            DEFAULT_STYLE,
            cue_style,
            file_name,
            parse_formats,
            render_bytes,
        )

        ws = self.ws
        conf_formats, conf_dir = export_defaults(ws)
        chosen = parse_formats(formats if formats is not None else conf_formats)
        where = output_dir or conf_dir
        folder = ws.transcripts if not where else ws.root / Path(where).expanduser()
        style = cue_style(ws) if {"srt", "vtt"} & set(chosen) else DEFAULT_STYLE
        paths = []
        for fmt in chosen:
            path = folder / file_name(t.id, fmt)
            atomic_write_bytes(path, render_bytes(t, fmt, style, ws.root))
            paths.append(str(path))
        return paths

    def keep_previous(self, recording_id: str) -> Path | None:
        """Copy the current transcript of `recording_id` into the history; its path (None if
        there is no current transcript)."""
        current = self.ws.transcript_path(recording_id)
        try:
            data = current.read_bytes()
        except FileNotFoundError:
            return None
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        dest = self.ws.history_dir(recording_id) / f"{stamp}.json"
        make_dir(dest.parent)
        atomic_write_bytes(dest, data)
        return dest

    def history(self, recording_id: str) -> list[Path]:
        """Kept versions of a recording's transcript, oldest first."""
        d = self.ws.history_dir(recording_id)
        return sorted(d.glob("*.json")) if d.is_dir() else []

    def undo(self, recording_id: str, *, index: bool = True) -> Transcript:
        """Bring back the latest kept version of a transcript. The version it replaces is kept
        as `*.undone` beside the history (not part of it), so that repeated undos go further
        back."""
        versions = self.history(recording_id)
        if not versions:
            raise NotFoundError(f"no earlier version of {recording_id} to restore")
        latest = versions[-1]
        previous = transcripts.load_path(latest)
        undone = self.keep_previous(recording_id)
        if undone is not None:
            undone.replace(undone.with_suffix(".undone"))
        transcripts.save(self.ws, previous)
        latest.unlink()
        self.write_exports(previous)
        self.sync_voices(previous)  # the library follows the names of the restored version
        if index:
            self.index([previous])
            self.embed(previous)
        return previous

    def remove(self, recording_ids: list[str], *, media: bool = False) -> list[Removed]:
        """Remove recordings everywhere: index documents, ledger rows, voices, history,
        exports, media (if asked), then the transcript. Missing pieces are skipped, so a
        half-done removal can be rerun."""
        from confindex.formats.registry import WRITABLE, file_name
        from confindex.search import index as search_index

        ws = self.ws
        media_paths: dict[str, Path | None] = {}
        for rid in recording_ids:
            if not ws.transcript_path(rid).exists():
                raise NotFoundError(f"no recording {rid!r} in {ws.transcripts}")
            mp = None
            with contextlib.suppress(ConfindexError):
                mp = ws.media_file(transcripts.load(ws, rid).recording.media_path)
            media_paths[rid] = mp
        has_index = search_index.exists(ws)
        results = []
        with contextlib.ExitStack() as stack:
            ledger = stack.enter_context(self.ledger()) if ws.ledger_path.exists() else None
            for rid in recording_ids:
                r = Removed(rid)
                r.index_docs = self.unindex([rid]) if has_index else 0
                self.unembed([rid])
                r.ledger_rows = ledger.forget([rid]) if ledger else 0
                results.append(r)
        # Their voices leave the library too: a removed recording must not name people any more.
        self.forget_voices([r.id for r in results])
        for r in results:
            rid = r.id
            # every export fetch or `export` may have written beside it (the QDA formats too)
            doomed = [ws.transcripts / file_name(rid, fmt) for fmt in WRITABLE]
            old = ws.history_dir(rid)  # earlier versions: the recording's words, kept for undo
            if old.is_dir():
                r.files += [str(p) for p in sorted(old.iterdir())]
                shutil.rmtree(old)
            mp = media_paths[rid]
            # Only media inside the workspace: a local file the user fetched stays theirs.
            if media and mp is not None and mp.resolve().is_relative_to(ws.root.resolve()):
                doomed.append(mp)
            doomed.append(ws.transcript_path(rid))
            for p in doomed:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
                    r.files.append(str(p))
        return results

    # -- housekeeping ----------------------------------------------------------------------

    def cleanup(self, ledger: Ledger) -> int:
        """Remove temporary files nobody can use any more; returns how many went.

        Staging folders of finished or failed recordings go; a half download of an unfinished
        one stays so that the next run resumes it. Temp files of atomic writes are removed
        only when no other run is active (it could be writing one right now).
        """
        from confindex.store.workspace import remove_stale_temps

        ws = self.ws
        removed = 0
        others = ledger.live_owners() - {ledger.owner}
        if ws.tmp.is_dir():
            for d in ws.tmp.iterdir():
                if d.name.startswith("dl-"):
                    rows = ledger.by_recording_id(d.name[3:])
                    # Not in the ledger: maybe `confindex transcribe` is downloading right now.
                    unknown_stale = not others and _age(d) > 3600
                    gone = all(r.terminal for r in rows) if rows else unknown_stale
                    if gone:
                        shutil.rmtree(d, ignore_errors=True)
                        removed += 1
                elif not others:
                    with contextlib.suppress(OSError):
                        shutil.rmtree(d) if d.is_dir() else d.unlink()
                        removed += 1
        if not others:
            for folder in (ws.transcripts, ws.media, ws.index_dir):
                removed += remove_stale_temps(folder)
            for gen in ws.index_dir.glob("g-*"):
                removed += remove_stale_temps(gen)
        return removed

    # -- the ledger ------------------------------------------------------------------------

    def ledger(self, **kw: Any) -> Ledger:
        """The job ledger of this workspace (a damaged one is set aside and rebuilt from the
        transcripts); `read_only=True` for readers."""
        from confindex.store.ledger import Ledger

        return Ledger.of(self.ws, **kw)


def _saved(ws: Workspace, t: Transcript) -> bool:
    """Whether the transcript on disk has `t`'s speaker names (what a rename writes)."""
    try:
        return transcripts.load(ws, t.id).speakers == t.speakers
    except ConfindexError:
        return False


def _drop_empty_history(ws: Workspace, rid: str) -> None:
    with contextlib.suppress(OSError):
        ws.history_dir(rid).rmdir()  # only when empty


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0
