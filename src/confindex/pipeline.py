"""One recording through every stage: fetch → audio → asr → diarize → turns → transcript →
exports → index. Each stage is idempotent and keyed by recording id, so a rerun skips what is
finished and a crash costs at most the recording in progress.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from . import __version__
from . import transcript as transcript_store
from .asr import AsrOptions, LoadedModel
from .errors import ConfindexError
from .fetch import Media, is_url, local_media, local_path, url_recording_id
from .transcript import Provenance, Transcript
from .workspace import Workspace

log = logging.getLogger("confindex")


@dataclass
class FetchOptions:
    """Everything that decides how a recording is transcribed."""

    model: str | None = None
    device: str = "auto"
    compute_type: str | None = None
    cpu_threads: int = 0
    asr: AsrOptions = field(default_factory=AsrOptions)
    diarize: bool = True
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    diarization_model: str | None = None
    force: bool = False  # redo finished recordings
    index: bool = True
    formats: list[str] | None = None  # exports to write; None: the workspace config, else all
    output_dir: str | None = None  # where exports go; None: beside the transcript JSON


class Reporter:
    """Progress callbacks; the CLI draws bars, the library default stays silent."""

    def stage(self, recording_id: str, stage: str, total: float | None = None) -> None:
        """A stage starts ("download", "decode", "transcribe", "diarize", "index")."""

    def advance(self, done: float, total: float | None = None) -> None:
        """Progress inside the current stage (bytes for download, audio seconds otherwise)."""

    def done(self, recording_id: str, status: str, message: str = "") -> None:
        """A recording finished: status is "done", "skipped" or "failed"."""


@dataclass
class Outcome:
    source: str
    status: str  # done | skipped | failed
    recording_id: str | None = None
    title: str | None = None
    error: str | None = None
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    turns: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def recording_id_of(arg: str) -> str | None:
    """The id a URL will get, without network (None for a local file until it is hashed)."""
    return url_recording_id(arg) if is_url(arg) else None


def obtain_media(
    ws: Workspace,
    arg: str,
    reporter: Reporter | None = None,
    ydl_extra: dict[str, Any] | None = None,
) -> Media:
    """Download a URL into the workspace (`ydl_extra`: more yt-dlp options), or take a local
    file where it is; either way with the media's sha256, which finds duplicates."""
    if is_url(arg):
        from .fetch import check_url, download

        check_url(arg)
        from .workspace import sha256_file

        rid = url_recording_id(arg)
        if reporter:
            reporter.stage(rid, "download")
        media = download(
            ws, arg, progress=reporter.advance if reporter else None, ydl_extra=ydl_extra
        )
        media.recording.media_sha256 = sha256_file(media.path)
        return media
    return local_media(local_path(arg))


class Transcriber:
    """Holds the loaded model so that a batch of recordings loads it once."""

    def __init__(self, options: FetchOptions) -> None:
        self.options = options
        self._model: LoadedModel | None = None
        self.diarize_options = diarize_options(options) if options.diarize else None

    @property
    def model(self) -> LoadedModel:
        if self._model is None:
            from .asr import load_model

            o = self.options
            self._model = load_model(o.model, o.device, o.compute_type, o.cpu_threads)
        return self._model

    def transcribe(self, media: Media, reporter: Reporter | None = None) -> Transcript:
        """Decode once, transcribe, diarize, build turns: the transcript (not yet saved)."""
        from . import audio, turns
        from .asr import transcribe

        o = self.options
        rid = media.recording.id
        if reporter:
            reporter.stage(rid, "decode")
        samples, decoded = audio.decode_with_info(media.path)
        total = audio.duration(samples)
        truncated = decoded.warning(media.path.name)
        if truncated:
            log.warning("%s", truncated)
        loaded = self.model
        # Speaker turns first (about a tenth of the cost): the language is then detected per
        # turn, and ASR decodes the turns grouped by language.
        speaker_segments: list = []
        diarization_info: dict[str, Any] | None = None
        diarize_seconds = None
        if self.diarize_options is not None:
            if reporter:
                reporter.stage(rid, "diarize", total)
            t0 = time.perf_counter()
            speaker_segments, diarization_info = self._diarize(samples)
            diarize_seconds = round(time.perf_counter() - t0, 3)
        if reporter:
            reporter.stage(rid, "transcribe", total)
        result = transcribe(
            loaded,
            samples,
            o.asr,
            speaker_segments=speaker_segments,
            progress=reporter.advance if reporter else None,
        )
        words = turns.words_of(result.segments)
        if speaker_segments:
            words = turns.assign_speakers(words, speaker_segments)
            words, mapping = turns.relabel_by_first_appearance(words)
            speaker_segments = [
                type(s)(s.start, s.end, mapping.get(s.speaker, s.speaker)) for s in speaker_segments
            ]
        # Each segment was decoded in its unit's language: a turn never mixes two.
        built = turns.build_turns(
            words, result.language, word_languages=turns.word_languages(words, result.segments)
        )
        del samples
        if media.recording.duration is None:
            media.recording.duration = round(total, 3)
        provenance = Provenance(
            confindex_version=__version__,
            faster_whisper_version=_version("faster-whisper"),
            ctranslate2_version=_version("ctranslate2"),
            yt_dlp_version=_version("yt-dlp") if media.recording.kind != "file" else None,
            model=loaded.spec.name,
            model_sha256=loaded.spec.sha256,
            device=loaded.device,
            compute_type=loaded.compute_type,
            options={
                **o.asr.to_dict(),
                "batch_size": result.batch_size,
                "language_seconds": result.languages,
                "language_detect_seconds": result.detect_seconds,
                # A truncated file is transcribed as far as it goes; the record says so.
                **({"decode": decoded.to_dict()} if decoded.truncated else {}),
            },
            diarization=diarization_info,
            created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            transcribe_seconds=round(result.seconds, 3),
            diarize_seconds=diarize_seconds,
        )
        return Transcript(
            recording=media.recording,
            provenance=provenance,
            language=result.language,
            duration=round(total, 3),
            segments=result.segments,
            turns=built,
            diarization=speaker_segments,
        )

    def _diarize(self, samples: Any) -> tuple[list, dict[str, Any]]:
        from .diarize import describe, diarize

        segments = diarize(samples, self.diarize_options)
        info = {**describe(self.diarize_options), "speakers": len({s.speaker for s in segments})}
        return segments, info


def diarize_options(options: FetchOptions) -> Any:
    """The diarization settings of `options`, checked now so that a bad combination fails
    before minutes of transcription, not after."""
    from .diarize import DiarizeOptions

    opts = DiarizeOptions(
        num_speakers=options.num_speakers,
        min_speakers=options.min_speakers,
        max_speakers=options.max_speakers,
        model_dir=Path(options.diarization_model) if options.diarization_model else None,
    )
    opts.validate()
    opts.model_paths()
    return opts


def publish(
    ws: Workspace, t: Transcript, *, index: bool = True, options: FetchOptions | None = None
) -> None:
    """Save the transcript (source of truth) first, then its exports, then the index."""
    from . import export

    transcript_store.save(ws, t)
    o = options or FetchOptions()
    export.write_exports(ws, t, formats=o.formats, output_dir=o.output_dir)
    if index:
        from . import index as search_index

        search_index.add(ws, [t])


def ensure_indexed(ws: Workspace, t: Transcript) -> None:
    """Repair a crash between saving a transcript and indexing it."""
    from . import index as search_index

    if t.id not in search_index.indexed_ids(ws):
        search_index.add(ws, [t])


def process(
    ws: Workspace,
    arg: str,
    options: FetchOptions,
    transcriber: Transcriber | None = None,
    reporter: Reporter | None = None,
) -> Outcome:
    """Run one input through every stage; never raises a ConfindexError (it becomes `failed`)."""
    t0 = time.perf_counter()
    transcriber = transcriber or Transcriber(options)
    rid = recording_id_of(arg)
    try:
        ws.ensure()
        if rid and not options.force and transcript_store.exists(ws, rid):
            return _skip(ws, arg, transcript_store.load(ws, rid), options, reporter)
        media = obtain_media(ws, arg, reporter)
        rid = media.recording.id
        if not options.force and transcript_store.exists(ws, rid):
            return _skip(ws, arg, transcript_store.load(ws, rid), options, reporter)
        t = transcriber.transcribe(media, reporter)
        if reporter:
            reporter.stage(rid, "index")
        publish(ws, t, index=options.index, options=options)
    except ConfindexError as exc:
        if reporter:
            reporter.done(rid or arg, "failed", exc.message)
        return Outcome(arg, "failed", rid, error=exc.message, wall_seconds=time.perf_counter() - t0)
    out = Outcome(
        arg,
        "done",
        t.id,
        t.recording.title,
        audio_seconds=t.duration,
        wall_seconds=round(time.perf_counter() - t0, 3),
        turns=len(t.turns),
    )
    if reporter:
        reporter.done(t.id, "done", f"{len(t.turns)} turns")
    return out


def _skip(
    ws: Workspace, arg: str, t: Transcript, options: FetchOptions, reporter: Reporter | None
) -> Outcome:
    if options.index:
        with contextlib.suppress(ImportError):
            ensure_indexed(ws, t)
    if reporter:
        reporter.done(t.id, "skipped", "already transcribed")
    return Outcome(arg, "skipped", t.id, t.recording.title, audio_seconds=t.duration)


def retranscribe(
    ws: Workspace, ref: str, options: FetchOptions, reporter: Reporter | None = None
) -> Outcome:
    """Redo the transcription of a recording already in the workspace (by id or source);
    speaker names follow the voices they were given to, even if labels are renumbered."""
    from . import turns

    old = transcript_store.resolve_recording(ws, ref)
    media_path = Path(old.recording.media_path or old.recording.source)
    if not media_path.is_absolute():
        media_path = ws.root / media_path
    if not media_path.exists():
        # The media cache was cleared: fetch the source again.
        return process(ws, old.recording.source, _forced(options), reporter=reporter)
    t = Transcriber(options).transcribe(Media(old.recording, media_path), reporter)
    t.speakers = turns.carry_names(old.turns, t.turns, old.speakers)
    publish(ws, t, index=options.index, options=options)
    return Outcome(
        ref, "done", t.id, t.recording.title, audio_seconds=t.duration, turns=len(t.turns)
    )


def _forced(options: FetchOptions) -> FetchOptions:
    from dataclasses import replace

    return replace(options, force=True)
