"""The per-recording job: a source and options in, a `Transcript` out.

The job touches no workspace state, so it can run in this process, in a Dask worker on this
machine or on another machine: a URL is downloaded into a private temporary folder (removed
afterwards), a local file is read where it is, and the result is returned, not saved. Saving,
exports, the index and the ledger are the Store's job (store/store.py), the one writer.

Order inside the job: listen (decode the audio; diarize in a thread of its own while the model
loads and the VADs run) → asr → turns → flags. Diarization comes before speech recognition so
that it can be given the speaker segments (per-speaker language detection).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Any

from confindex import __version__
from confindex.errors import InputError
from confindex.run.fetch import Media, is_url, local_media, local_path
from confindex.speech.asr import AsrOptions, vad_chunks
from confindex.speech.decoder import Decoder
from confindex.stagetime import StageTimes, side_thread
from confindex.store.transcript import (
    Flag,
    Provenance,
    Recording,
    SpeakerSegment,
    Transcript,
    Voiceprint,
)

log = logging.getLogger("confindex.run.job")
# "1": a recording's steps one after the other (benches and tests compare with it).
ENV_SEQUENTIAL = "CONFINDEX_SEQUENTIAL_STAGES"


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
    force: bool = False  # redo finished recordings (the one `force` flag)
    index: bool = True
    formats: list[str] | None = None  # exports to write; None: the workspace config, else all
    output_dir: str | None = None  # where exports go; None: beside the transcript JSON
    keep_edits: bool = True  # a new transcription keeps users' corrected words (issue 27)

    def to_dict(self) -> dict[str, Any]:
        """Plain data: what the ledger records of a run, what a Dask task receives."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FetchOptions:
        """Options `to_dict` wrote (an earlier run for `resume`, a Dask task); keys this version
        does not know are ignored."""
        names = {f.name for f in fields(cls)}
        asr_names = {f.name for f in fields(AsrOptions)}
        kw = {k: v for k, v in d.items() if k in names and k != "asr"}
        asr = AsrOptions(**{k: v for k, v in (d.get("asr") or {}).items() if k in asr_names})
        return cls(**kw, asr=asr)

    @staticmethod
    def check(
        *,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
        language: str | None = None,
        languages: tuple[str, ...] | list[str] | None = None,
    ) -> None:
        """The checks of option values against each other (one place: the CLI shows them as
        usage errors, `Archive` as InputErrors)."""
        if min_speakers and max_speakers and min_speakers > max_speakers:
            raise InputError(
                f"--min-speakers {min_speakers} is more than --max-speakers {max_speakers}"
            )
        if language and languages and language not in languages:
            raise InputError(f"--language {language} is not among --languages")


class Reporter:
    """Progress callbacks; the CLI draws bars, the library default stays silent."""

    def stage(self, recording_id: str, stage: str, total: float | None = None) -> None:
        """A stage starts ("download", "decode", "transcribe", "diarize", "index")."""

    def advance(self, done: float, total: float | None = None) -> None:
        """Progress inside the current stage (bytes for download, audio seconds otherwise)."""

    def done(self, recording_id: str, status: str, message: str = "") -> None:
        """A recording finished: status is "done", "skipped" or "failed"."""

    def side(self) -> Reporter | None:
        """A reporter for work running beside the current stage, in another thread (the
        pipelined downloads of a bulk run); None when such work is not shown."""
        return None


@dataclass
class Job:
    """What one recording needs to be transcribed anywhere.

    `media_path` is used when it exists where the job runs (a local file, a download already
    in the workspace); otherwise `source` is fetched again into a temporary folder.
    `speakers` (a previous diarization) is reused when the options say `diarize=False`, so
    that a re-transcription without diarization keeps the speakers and their names.
    """

    source: str
    recording: dict[str, Any] | None = None
    media_path: str | None = None
    speakers: list[dict[str, Any]] | None = None
    ydl_extra: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] | None = None  # steps measured before (Media.timings)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def diarize_options(options: FetchOptions) -> Any:
    """The diarization settings of `options`, checked now so that a bad combination fails
    before minutes of transcription, not after."""
    from confindex.speech.diarize import DiarizeOptions

    opts = DiarizeOptions(
        num_speakers=options.num_speakers,
        min_speakers=options.min_speakers,
        max_speakers=options.max_speakers,
        model_dir=Path(options.diarization_model) if options.diarization_model else None,
    )
    opts.validate()
    opts.model_paths()
    return opts


class Transcriber:
    """Holds the loaded decoder so that a batch of recordings (or a Dask worker) loads it once."""

    def __init__(self, options: FetchOptions) -> None:
        self.options = options
        self._model: Decoder | None = None
        self.diarize_options = diarize_options(options) if options.diarize else None
        # Diarization beside the other steps of `listen` (False: one after the other).
        self.concurrent = os.environ.get(ENV_SEQUENTIAL) != "1"
        self._ahead: dict[str, Heard] = {}  # media path -> what `listen_ahead` heard
        self._lock = threading.Lock()

    @property
    def model(self) -> Decoder:
        with self._lock:  # a bulk run's download thread may load it first (`listen_ahead`)
            if self._model is None:
                from confindex.speech.decoder import load_model

                o = self.options
                self._model = m = load_model(o.model, o.device, o.compute_type, o.cpu_threads)
                log.info("model %s on %s (%s)", m.describe().model, m.device, m.compute_type)
            return self._model

    def listen(self, media: Media, reporter: Reporter | None = None) -> Heard:
        """Everything the audio alone gives, before speech recognition: the samples, the
        speaker segments, where speech is (VAD) and the quality flags' VAD evidence.

        Both cores work (issue 33): diarization (single-threaded in sherpa-onnx) runs in a
        thread of its own while this one loads the model, finds speech, gathers the flags'
        evidence and runs the overlap pass's segmentation, which diarization takes at its end;
        each step's result is the same as in `concurrent = False` order (tests/test_stages.py).
        A bulk run calls this for the next recording in its download thread
        (executors.PipelinedExecutor) while this thread decodes the current one."""
        from confindex.speech import audio

        times = StageTimes(media.timings)
        if reporter:
            reporter.stage(media.recording.id, "decode")
        with times.step("audio"):
            samples, decoded = audio.decode_with_info(media.path)
        truncated = decoded.warning(media.path.name)
        if truncated:
            log.warning("%s", truncated)
        heard = Heard(samples, decoded, times)
        frames: Future[Any] = Future()
        pool = None
        if self.diarize_options is not None:
            if reporter:
                reporter.stage(media.recording.id, "diarize", audio.duration(samples))
            if self.concurrent:
                pool = ThreadPoolExecutor(1, thread_name_prefix="confindex-diarize")
                diarized = pool.submit(side_thread(self._diarize_timed), heard, frames.result)
            else:
                self._diarize_timed(heard, None)
        side = pool is not None  # steps beside diarization: this thread's own CPU
        try:
            with times.step("model", side=side):
                loaded = self.model
            with times.step("vad", side=side):
                heard.speech = vad_chunks(samples, self.options.asr, loaded)
            with times.step("evidence", side=side):
                # The decoding's VAD is the flags' `heard` when its settings are the defaults.
                same = _vad_settings(self.options.asr) == _vad_settings(AsrOptions())
                heard.evidence = flag_evidence(
                    samples, loaded, heard=heard.speech if same else None
                )
            if pool is not None:
                with times.step("overlap", side=True):
                    _set_frames(frames, samples, self.diarize_options)
        finally:
            if pool is not None:
                frames.cancel()  # only if never set: diarization then stops on it
                pool.shutdown(wait=True)
        if pool is not None:
            diarized.result()  # its exception, if any, here
        return heard

    def _diarize_timed(self, heard: Heard, frames: Callable[[], Any] | None) -> None:
        from confindex.speech.sherpa_pass import child_cpu

        t0, c0 = time.perf_counter(), child_cpu()
        with heard.times.step("diarize", side=self.concurrent):
            heard.diarization = self._diarize(heard.samples, frames)
        heard.times.add("diarize", child_cpu() - c0, 0.0)  # its pass, in the child process
        heard.diarize_seconds = round(time.perf_counter() - t0, 3)

    def transcribe(
        self,
        media: Media,
        reporter: Reporter | None = None,
        *,
        speakers: list[SpeakerSegment] | None = None,
        heard: Heard | None = None,
    ) -> Transcript:
        """Listen (`listen`: decode, diarize, VAD), transcribe, build turns: the transcript
        (not yet saved).

        `speakers`: an earlier diarization to reuse when diarization is off. `heard`: what
        `listen` gave for this media (else the one a bulk run's download thread left, else
        listened to now).
        """
        from confindex.speech import audio
        from confindex.speech.asr import transcribe

        o = self.options
        rid = media.recording.id
        heard = heard or self._ahead.pop(str(media.path), None) or self.listen(media, reporter)
        # Each step's CPU and wall seconds: logged (`fetch -v`) and kept in the provenance.
        times, samples, decoded = heard.times, heard.samples, heard.decoded
        total = audio.duration(samples)
        with times.step("model"):
            loaded = self.model
        # Speaker turns first: the language is then detected per turn, and ASR decodes the
        # turns grouped by language. Not cheap: about a third of the CPU of a default fetch
        # (47 of ~133 CPU s on the 10-min bench file, bench/README.md).
        speaker_segments: list[SpeakerSegment] = []
        # One speaker per moment (diarize.Diarization.primary): units are cut and words
        # assigned by it; the overlapping segments only mark turns' `overlap` and go to RTTM.
        primary: list[SpeakerSegment] = []
        prints: dict[str, Voiceprint] = {}
        diarization_info: dict[str, Any] | None = None
        if heard.diarization is not None:
            speaker_segments, primary, prints, diarization_info = heard.diarization
        elif speakers:
            speaker_segments = primary = list(speakers)
            diarization_info = {"reused": True, "speakers": len({s.speaker for s in speakers})}

        if reporter:
            reporter.stage(rid, "transcribe", total)
        result = transcribe(
            loaded,
            samples,
            o.asr,
            speaker_segments=primary,
            progress=reporter.advance if reporter else None,
            speech=heard.speech,
            times=times,
        )
        with times.step("turns"):
            built, speaker_segments, prints = _turns(
                result, speaker_segments, primary, prints, fresh=self.diarize_options is not None
            )
        t_flags = time.perf_counter()
        with times.step("flags"):
            flags = quality_flags(samples, result, loaded, evidence=heard.evidence)
        flag_seconds = round(time.perf_counter() - t_flags, 3)
        del samples
        heard.samples = None
        log.info("%s: CPU/wall s per step: %s", rid, times.summary())
        if media.recording.duration is None:
            media.recording.duration = round(total, 3)
        provenance = Provenance(
            confindex_version=__version__,
            engine=loaded.describe(),
            yt_dlp_version=_version("yt-dlp") if media.recording.kind != "file" else None,
            device=loaded.device,
            compute_type=loaded.compute_type,
            options={
                **o.asr.to_dict(),
                "batch_size": result.batch_size,
                "language_seconds": result.languages,
                "language_detect_seconds": result.detect_seconds,
                "loops_redecoded": result.loops_redecoded,
                # A truncated file is transcribed as far as it goes; the record says so.
                **({"decode": decoded.to_dict()} if decoded.truncated else {}),
                # What the quality flags (quality.py) cost, their VADs apart since issue 33
                # (`stages`: evidence); bench/quality.py measures it.
                "quality_seconds": flag_seconds,
                # CPU and wall seconds per step (stagetime.py; publishing comes after).
                "stages": times.to_dict(),
            },
            diarization=diarization_info,
            created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            transcribe_seconds=round(result.seconds, 3),
            diarize_seconds=heard.diarize_seconds,
        )
        return Transcript(
            recording=media.recording,
            provenance=provenance,
            language=result.language,
            duration=round(total, 3),
            segments=result.segments,
            turns=built,
            diarization=speaker_segments,
            flags=flags,
            voiceprints=prints,
        )

    def listen_ahead(self, media: Media, ws: Any = None, reporter: Reporter | None = None) -> None:
        """`listen` now (a bulk run's download thread: diarization of the next recording while
        the main thread decodes this one), kept for `transcribe` of this media; not when the
        workspace `ws` has its transcript and the options do not force it again (the run will
        not transcribe it). A failure is left for `transcribe` to meet and report."""
        from confindex.store import transcript as transcript_store

        done = ws is not None and transcript_store.exists(ws, media.recording.id)
        if done and not self.options.force:
            return
        try:
            heard = self.listen(media, reporter)  # its bars drawn beside the main thread's
        except Exception as exc:  # the main thread will fail on it again, and record it
            log.debug("listening ahead to %s failed: %s", media.path, exc)
            return
        with self._lock:
            self._ahead[str(media.path)] = heard

    def drop_ahead(self, media: Media) -> None:
        """Forget what `listen_ahead` heard of `media` (its samples: ~230 MB an hour) when the
        run does not transcribe it after all (another process saved it meanwhile, Ctrl-C)."""
        with self._lock:
            self._ahead.pop(str(media.path), None)

    def _diarize(
        self, samples: Any, frames: Callable[[], Any] | None = None
    ) -> tuple[list[SpeakerSegment], list[SpeakerSegment], dict[str, Voiceprint], dict[str, Any]]:
        """Speaker segments (overlaps included), the same with one speaker per moment, each
        speaker's voiceprint (for the voice library, matched by the one writer at publish), and
        what was run."""
        from confindex.speech.diarize import describe, diarize_with_voices

        result = diarize_with_voices(samples, self.diarize_options, frames=frames)
        segments = result.segments
        info = {**describe(self.diarize_options), "speakers": len({s.speaker for s in segments})}
        return segments, result.primary or segments, result.voiceprints, info


def _turns(
    result: Any,
    speaker_segments: list[SpeakerSegment],
    primary: list[SpeakerSegment],
    prints: dict[str, Voiceprint],
    *,
    fresh: bool,
) -> tuple[list[Any], list[SpeakerSegment], dict[str, Voiceprint]]:
    """Words given speakers (by `primary`), turns built; with a `fresh` diarization, labels
    numbered as they first speak (segments and voiceprints renamed alike)."""
    from confindex.speech import turns

    words = turns.words_of(result.segments)
    if speaker_segments and words:
        words = turns.assign_speakers(words, primary)
        if fresh:  # fresh labels: number them as they appear
            words, mapping = turns.relabel_by_first_appearance(words)
            mapping = turns.complete_mapping(
                mapping, (s.speaker for s in sorted(speaker_segments, key=lambda s: s.start))
            )
            speaker_segments = [
                SpeakerSegment(s.start, s.end, mapping.get(s.speaker, s.speaker))
                for s in speaker_segments
            ]
            prints = {mapping.get(k, k): v for k, v in prints.items()}
    # Each segment was decoded in its unit's language: a turn never mixes two.
    built = turns.build_turns(
        words, result.language, word_languages=turns.word_languages(words, result.segments)
    )
    if speaker_segments:
        built = turns.mark_overlaps(built, speaker_segments)
    return built, speaker_segments, prints


@dataclass
class Heard:
    """What `Transcriber.listen` found in a recording's audio; `times` goes on measuring."""

    samples: Any
    decoded: Any  # audio.Decoded: how far the file could be read
    times: StageTimes
    speech: list[tuple[float, float]] | None = None  # the decoding's VAD regions
    evidence: FlagEvidence | None = None
    # Transcriber._diarize's answer (segments, primary, voiceprints, info); None: not run.
    diarization: tuple[Any, ...] | None = None
    diarize_seconds: float | None = None


def _vad_settings(o: AsrOptions) -> tuple[Any, ...]:
    return o.vad, o.vad_threshold, o.vad_min_silence_ms, o.vad_pad_ms


def _set_frames(box: Future[Any], samples: Any, options: Any) -> None:
    """The overlap pass's segmentation frames (speech/overlap.py) into `box`, where the
    diarization thread takes them: audio alone decides them, so they are found beside it."""
    if not options.overlap:
        box.set_result(None)
        return
    from confindex.speech import overlap

    try:
        seg, _ = options.model_paths()
        box.set_result(overlap.segment(samples, seg, options.overlap_step, options.threads()))
    except Exception as exc:  # diarization meets it where it would have
        box.set_exception(exc)


@dataclass
class FlagEvidence:
    speech: list[tuple[float, float]] | None  # a strict VAD's speech regions (seconds)
    heard: list[tuple[float, float]] | None  # the decoder's own VAD regions
    listened: list[tuple[float, float]] | None = None  # a sensitive VAD's, for `missed`


class SileroVad:
    """Silero VAD alone, run as the decoder runs it: evidence without a loaded model."""

    def speech(self, audio: Any, vad: Any) -> list[tuple[float, float]]:
        from confindex.speech.decoder import FasterWhisperDecoder

        return FasterWhisperDecoder.speech(self, audio, vad)  # type: ignore[arg-type]


def flag_evidence(
    samples: Any, decoder: Any = None, asr: Any = None, heard: Any = None
) -> FlagEvidence:
    """The VAD opinions of `samples`: a strict one; the decoder's own (asr.vad_chunks with the
    decoding's options; `heard` when already found), which `nonspeech` needs to agree; a
    sensitive one for `missed`."""
    from dataclasses import replace

    from confindex.speech.decoder import VadSettings
    from confindex.speech.quality import MISSED_VAD_THRESHOLD

    if not len(samples):
        return FlagEvidence(None, None)
    decoder = decoder or SileroVad()
    # A second, stricter opinion than the decoding's VAD (threshold 0.35, chosen for
    # recall): Silero at its default threshold 0.5 with short pads, so that text decoded
    # from noise, music or a gap between sentences falls outside these regions.
    speech = decoder.speech(samples, VadSettings(threshold=0.5, min_silence_ms=500, pad_ms=200))
    opts = asr if asr is not None and asr.vad else AsrOptions()
    sensitive = replace(opts, vad_threshold=min(opts.vad_threshold, MISSED_VAD_THRESHOLD))
    if heard is None:
        heard = vad_chunks(samples, opts, decoder)
    return FlagEvidence(speech, heard, vad_chunks(samples, sensitive, decoder))


def quality_flags(
    samples: Any, result: Any, decoder: Decoder, asr: Any = None, evidence: Any = None
) -> list[Flag]:
    """The quality flags of a transcription (quality.py), with the speech regions the VADs
    find in `samples` (`evidence`: `flag_evidence` found before) and the text-language
    classifier as evidence."""
    from confindex.speech import quality
    from confindex.speech.language import classify_fn

    ev = evidence if evidence is not None else flag_evidence(samples, decoder, asr)
    signals = quality.Signals(
        speech=ev.speech,
        heard=ev.heard,
        listened=ev.listened,
        language=result.language,
        # The share of speech in the top language is no detection probability: not used.
        language_probability=None,
        language_of=classify_fn(result.language),
    )
    flags = quality.assess(result.segments, signals)
    flags += quality.undecoded_flags(getattr(result, "failed", None) or [])
    flags += quality.language_flags(getattr(result, "elsewhere", None) or [])
    return sorted(flags, key=lambda f: (f.start, f.kind))


def run_job(
    job: Job,
    options: FetchOptions,
    transcriber: Transcriber | None = None,
    reporter: Reporter | None = None,
) -> Transcript:
    """Transcribe one recording; writes nothing outside a temporary folder of its own."""
    transcriber = transcriber or Transcriber(options)
    speakers = [SpeakerSegment(**s) for s in job.speakers] if job.speakers else None
    path = Path(job.media_path) if job.media_path else None
    if path is not None and path.is_file():
        if job.recording is not None:
            media = Media(Recording(**job.recording), path, job.timings)
        else:
            media = local_media(path)
        return transcriber.transcribe(media, reporter, speakers=speakers)
    if not is_url(job.source):
        media = local_media(local_path(job.source))
        if job.recording is not None:  # keep the id, title and tags the archive knows it by
            media = Media(Recording(**{**job.recording, "media_path": None}), media.path)
        return transcriber.transcribe(media, reporter, speakers=speakers)
    with tempfile.TemporaryDirectory(prefix="confindex-job-") as tmp:
        times = StageTimes()
        with times.step("download", side=True):
            media = download_to(Path(tmp), job.source, reporter, job.ydl_extra)
        media.timings = times.to_dict()
        if job.recording is not None:
            media = Media(Recording(**{**job.recording, "media_path": None}), media.path)
        else:
            media.recording.media_path = None  # the temporary copy is gone after the job
        log.debug("downloaded %s to %s", job.source, media.path)
        return transcriber.transcribe(media, reporter, speakers=speakers)


def download_to(
    folder: Path,
    url: str,
    reporter: Reporter | None = None,
    ydl_extra: dict[str, Any] | None = None,
) -> Media:
    """Download `url` into `folder` (a scratch workspace) with the media's sha256."""
    from confindex.run.fetch import check_url, download, url_recording_id
    from confindex.store.workspace import Workspace, sha256_file

    check_url(url)
    if reporter:
        reporter.stage(url_recording_id(url), "download")
    media = download(
        Workspace(folder), url, progress=reporter.advance if reporter else None, ydl_extra=ydl_extra
    )
    media.recording.media_sha256 = sha256_file(media.path)
    return media


_TRANSCRIBERS: dict[str, Transcriber] = {}


def cached_transcriber(options: FetchOptions) -> Transcriber:
    """One Transcriber (so one loaded model) per process and set of options: a Dask worker
    runs many jobs and loads the model for the first only."""
    import json
    from dataclasses import asdict

    key = json.dumps(asdict(options), sort_keys=True, default=str)
    if key not in _TRANSCRIBERS:
        _TRANSCRIBERS[key] = Transcriber(options)
    return _TRANSCRIBERS[key]
