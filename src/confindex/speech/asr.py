"""Speech recognition of a recording: speech units, a language each, decoded by language.

`transcribe` runs the steps: where speech is (VAD), speech cut into units at speaker changes
(units.py), each unit's language (language.py), the units of each language decoded in ≤ 30-s
chunks by the speech engine (decoder.py), and what came out looping or without words decoded
again. The engine and its model files are decoder.py's and model_files.py's business.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from confindex.speech.audio import SAMPLE_RATE
from confindex.speech.decoder import Decoder, DecodeSettings, VadSettings
from confindex.speech.decoder import load_model as load_model  # re-exported: callers' name
from confindex.speech.language import choose_languages, detect_languages
from confindex.speech.units import (
    CHUNK_SECONDS,
    Unit,
    calls,
    inside,
    lost_stretches,
    pack_chunks,
    segments_by_unit,
    speech_units,
)
from confindex.stagetime import StageTimes, maybe
from confindex.store.transcript import Segment, SpeakerSegment

log = logging.getLogger("confindex.speech.asr")

# Silero VAD settings, chosen by speech recall against the reference turns of the real clips
# (bench/transcription.py --vad, 2026-11-25): 0.35 / 500 ms / 400 ms keeps 97.4% of the speech
# (worst clip 94.5%) and 61% of the audio; 0.5 / 500 / 200 kept 92.5% (worst 83.9%).
# faster-whisper's defaults (0.5 / 2000 / 400: 98.5%, 64% of the audio) join speech across
# pauses up to 2 s, too coarse to find a speaker's language switch.
VAD_THRESHOLD = 0.35
VAD_MIN_SILENCE_MS = 500
VAD_PAD_MS = 400

ProgressFn = Callable[[float, float], None]  # (seconds done, seconds total)


@dataclass
class AsrOptions:
    language: str | None = None  # force one language (no detection); None: detect per turn
    languages: tuple[str, ...] | None = None  # the candidates when detecting (--languages)
    beam_size: int = 5
    vad: bool = True
    # Silero VAD settings, chosen by speech recall on real clips (bench/transcription.py --vad).
    vad_threshold: float = VAD_THRESHOLD
    vad_min_silence_ms: int = VAD_MIN_SILENCE_MS
    vad_pad_ms: int = VAD_PAD_MS
    word_timestamps: bool = True
    batch_size: int | None = None  # None: by device (AUTO_BATCH); 0/1: sequential decoding
    initial_prompt: str | None = None
    hotwords: str | None = None
    # Sequential decoding only. Off: conditioning made runs differ and fall into repetition
    # loops on a 10-min file (3× the CPU per audio minute of its first 5 minutes).
    condition_on_previous_text: bool = False
    # More faster-whisper decoding options, passed as they are: its hallucination guards
    # (temperature, compression_ratio_threshold, log_prob_threshold, no_speech_threshold,
    # hallucination_silence_threshold), measured in bench/quality.py.
    decode_options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["languages"] = list(self.languages) if self.languages else None
        return d


@dataclass
class AsrResult:
    language: str | None
    language_probability: float
    duration: float
    segments: list[Segment] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the transcription
    languages: dict[str, float] = field(default_factory=dict)  # language -> seconds of speech
    batch_size: int = 0  # what decoding used (0/1: sequential)
    detect_seconds: float = 0.0  # wall time of the per-unit language detection
    loops_redecoded: int = 0  # clips decoded again because their text looped (_decode_unlooped)
    # Speech the decoder failed on even alone: (start, end, reason); flagged, never text.
    failed: list[tuple[float, float, str]] = field(default_factory=list)
    # Under a forced language, stretches heard as another one and so not decoded again:
    # (start, end, reason, score); `language` flags (quality.language_flags).
    elsewhere: list[tuple[float, float, str, float]] = field(default_factory=list)


# Batch size when the user gives none, per device (bench/transcription.py, 2026-11-25: on 2 CPU
# cores batch 8 took 0.36× the CPU of sequential decoding on a 10-min real-speech file).
AUTO_BATCH = {"cpu": 8, "cuda": 16}


def vad_chunks(audio: np.ndarray, opts: AsrOptions, decoder: Decoder) -> list[tuple[float, float]]:
    """Speech (seconds) found by Silero VAD with the options' settings, ≤ 30 s each."""
    total = len(audio) / SAMPLE_RATE
    if not opts.vad:
        return [(a, min(a + CHUNK_SECONDS, total)) for a in np.arange(0.0, total, CHUNK_SECONDS)]
    settings = VadSettings(
        opts.vad_threshold, opts.vad_min_silence_ms, opts.vad_pad_ms, max_seconds=CHUNK_SECONDS
    )
    return decoder.speech(audio, settings)


def transcribe(
    decoder: Decoder,
    audio: np.ndarray,
    options: AsrOptions | None = None,
    speaker_segments: Sequence[SpeakerSegment] | None = None,
    progress: ProgressFn | None = None,
    *,
    speech: list[tuple[float, float]] | None = None,
    times: StageTimes | None = None,
) -> AsrResult:
    """Transcribe 16 kHz mono samples; calls `progress(done_s, total_s)` as speech is decoded.

    Speech (VAD) is cut at the speaker changes of `speaker_segments`; each resulting unit gets
    its language from its own audio, with the whole recording's evidence as a prior (see
    `language.choose_languages`); then the units of each language are decoded together, in
    ≤ 30-s chunks, with the batched pipeline (or sequentially with `batch_size` 0 or 1); a
    unit whose text loops is decoded once more with repeats forbidden (`_decode_unlooped`).
    `speech`: `vad_chunks(audio, options, decoder)` when already found (the job finds them
    while diarization runs); `times` receives each step's CPU and wall seconds.
    """
    opts = options or AsrOptions()
    t0 = time.perf_counter()
    total = len(audio) / SAMPLE_RATE
    if speech is None:
        with maybe(times, "vad"):
            speech = vad_chunks(audio, opts, decoder)
    units = speech_units(speech, speaker_segments)
    forced = opts.language or (
        opts.languages[0] if opts.languages and len(opts.languages) == 1 else None
    )
    # A language the user forced decodes every unit in it, without detection (the fast path);
    # only what comes out looping or lost is checked before it is decoded again (_Guard).
    guard = _Guard(forced) if forced and decoder.multilingual else None
    if guard is not None and effective_batch_size(decoder, opts) > 1:
        opts = forced_reading(opts)
    if forced is None and not decoder.multilingual:
        forced = "en"
    detect_seconds = 0.0
    if forced:
        langs = [forced] * len(units)
        probs: list[dict[str, float] | None] = []
    else:
        t_detect = time.perf_counter()
        with maybe(times, "language"):
            probs = detect_languages(decoder, audio, units, opts.languages)
            langs = choose_languages(probs, units, opts.languages)
        detect_seconds = time.perf_counter() - t_detect
    speech_s = sum(u.duration for u in units) or 1.0
    done = 0.0
    segments: list[Segment] = []
    seconds: dict[str, float] = {}
    repairs: list[float] = []  # where a looping clip was decoded again (its start, s)
    failed: list[tuple[float, float, str]] = []  # speech the decoder failed on (flagged)
    for lang in sorted(set(langs)):
        mine = [u for u, lg in zip(units, langs, strict=True) if lg == lang]
        seconds[lang] = round(sum(u.duration for u in mine), 2)
        for call in calls(pack_chunks(mine)):
            decoded = _decode_unlooped(
                decoder, audio, call, lang, opts, repairs, failed, times=times, guard=guard
            )
            # Batched decoding sometimes ends a chunk early and loses its tail (the bundled
            # panel lost a 5-s English line; the French radio clip a 4-s sentence at a chunk's
            # end): decode such stretches again, each alone, and keep what falls inside them.
            lost = lost_stretches([u for chunk in call for u in chunk], decoded)
            if lost and guard is not None:
                lost = guard.kept(decoder, audio, lost, lambda x: x[0], times)
            if lost:
                again = _decode_unlooped(
                    decoder, audio, [[u] for u, _ in lost], lang, opts, repairs, failed,
                    times=times, step="lost", guard=guard,
                )  # fmt: skip
                decoded += inside(again, [core for _, core in lost])
            for seg in decoded:
                seg.language = lang
                segments.append(seg)
            done += sum(u.duration for chunk in call for u in chunk)
            if progress:
                progress(min(done / speech_s * total, total), total)
    if guard is not None:
        guard.kept(decoder, audio, unsure_units(units, segments), lambda u: u, times)
    segments.sort(key=lambda s: (s.start, s.end))
    for i, seg in enumerate(segments):
        seg.id = i
    top = max(seconds, key=seconds.__getitem__) if seconds else forced
    if progress:
        progress(total, total)
    return AsrResult(
        language=top,
        language_probability=round(seconds[top] / sum(seconds.values()), 4) if seconds else 0.0,
        duration=total,
        segments=segments,
        seconds=time.perf_counter() - t0,
        languages=seconds,
        batch_size=effective_batch_size(decoder, opts),
        detect_seconds=round(detect_seconds, 3),
        loops_redecoded=len(repairs),
        failed=sorted(set(failed)),
        elsewhere=sorted(set(guard.elsewhere)) if guard is not None else [],
    )


def forced_reading(opts: AsrOptions) -> AsrOptions:
    """Under a language the user forced, every call forbids repeated LOOP_NGRAM-token runs from
    the start (unless the user's decode options set it). Speech in another language decoded as
    the forced one comes out as a translation that loops up to Whisper's 224 tokens, and the
    loop also eats the chunk's tail, which is then decoded again alone as lost speech. On the
    549-s mixed file forced to French (in-process, diarized units, alternated, load 4-6):
    63.2 / 62.4 -> 54.1 / 49.4 CPU s for transcription (no lost stretch left, no loop repair,
    encoder passes 37 -> 23), the French clips' words as before (radio WER vs silver 0.195
    both, picovoice 0.231 both); `fetch --language fr` 0.97x the default's CPU over 3 rounds
    (bench/README.md, issue 33). Fewer `language` flags: what no longer loops is not judged.
    The detected-language path is unchanged, and so is sequential decoding (faster-whisper's
    temperature fallback handles its loops)."""
    if "no_repeat_ngram_size" in opts.decode_options:
        return opts
    return replace(opts, decode_options={**opts.decode_options, "no_repeat_ngram_size": LOOP_NGRAM})


# Under --language, a stretch that comes out looping or without words is decoded again only if
# the language detector does not hear it as another language (its forced language under this
# probability, another on top): on a 549-s mixed file (bench/stages.py) forced to French, the
# English and Russian stretches decoded again alone cost 33 CPU s and their loop repairs 7.8,
# against 8.7 and 0 when each unit was decoded in its detected language.
ELSEWHERE = 0.2


@dataclass
class _Guard:
    """A forced language's check before a stretch is decoded again (loop or lost)."""

    language: str
    elsewhere: list[tuple[float, float, str, float]] = field(default_factory=list)
    repaired: list[Unit] = field(default_factory=list)  # decoded again for a loop already

    def kept(
        self,
        decoder: Decoder,
        audio: np.ndarray,
        items: list[Any],
        unit_of: Callable[[Any], Unit],
        times: StageTimes | None,
    ) -> list[Any]:
        """The items whose unit may be in the forced language (or is too short to judge); the
        others are noted in `elsewhere`. Lost speech inside a stretch already heard elsewhere,
        or already decoded again for a loop, is left too, unjudged: no stretch is decoded again
        more than once."""

        def judged(u: Unit) -> bool:
            spans = [(a, b) for a, b, _, _ in self.elsewhere]
            spans += [(r.start, r.end) for r in self.repaired]
            return any(a <= u.start and u.end <= b for a, b in spans)

        items = [x for x in items if not judged(unit_of(x))]
        if not items:
            return []
        with maybe(times, "language"):
            probs = detect_languages(decoder, audio, [unit_of(x) for x in items])
        out = []
        for x, p in zip(items, probs, strict=True):
            top = max(p, key=p.__getitem__) if p else self.language
            if p is None or top == self.language or p.get(self.language, 0.0) >= ELSEWHERE:
                out.append(x)
                continue
            u = unit_of(x)
            why = f"heard as {top} ({p[top]:.2f}), not {self.language} (forced): not decoded again"
            self.elsewhere.append((round(u.start, 3), round(u.end, 3), why, round(p[top], 2)))
            log.info("speech at %.1f-%.1f s %s", u.start, u.end, why)
        return out


# Under --language, forbidding repeats (forced_reading) turns speech in another language into
# varied nonsense or a fluent translation instead of a loop, which the loop check judged: a
# unit whose words average under this probability is judged too (detection only; nothing is
# decoded again). Forced to French, the Russian clip reads at 0.26-0.27 and JFK's English, as
# a French translation, at 0.53: both flagged "heard as ..." again (0.4 missed JFK). Detected
# in their own language, the shared clips' turns average 0.45-0.95, French radio >= 0.60;
# what is judged and heard in the forced language stays unflagged.
UNSURE = 0.6


def unsure_units(units: Sequence[Unit], segments: Sequence[Segment]) -> list[Unit]:
    """The units whose words (those starting inside them) average under UNSURE probability."""
    words = sorted(
        ((w.start, w.probability) for s in segments for w in s.words), key=lambda x: x[0]
    )
    starts = [a for a, _ in words]
    out = []
    for u in units:
        lo, hi = bisect.bisect_left(starts, u.start), bisect.bisect_left(starts, u.end)
        probs = [p for _, p in words[lo:hi] if p is not None]
        if probs and sum(probs) / len(probs) < UNSURE:
            out.append(u)
    return out


def effective_batch_size(decoder: Decoder, opts: AsrOptions) -> int:
    if opts.batch_size is None:
        return AUTO_BATCH.get(decoder.device, 8)
    return opts.batch_size


# Whisper falls back to sampling at higher temperatures when a window's text compresses like a
# loop (ratio > 2.4); faster-whisper's batched pipeline decodes at temperatures[0] only, so a
# loop stays: on an AMD EPYC the 10-min bench file read "si, non," ~50× at 9:45, and the French
# radio clip with 600-ms VAD pads "Il n'y a pas d'équivalent," 17× (WER 0.316; 0.131 decoded
# again). A looping unit is decoded again alone with repeated 6-token runs forbidden, not by
# sampling: CTranslate2 seeds its sampler once per worker thread, so a sampled fallback would
# make a file's words depend on what the process decoded before it. On the radio stretch n = 3,
# 4 and 6 all give the same right sentence; 6 forbids the least. The check is per unit, not per
# chunk: a chunk packs units from far apart, and the bench file's Russian chunk, the same two
# sentences said twice 5 minutes apart, compresses at 3.3 without any loop.
LOOP_NGRAM = 6


def _decode_unlooped(
    decoder: Decoder,
    audio: np.ndarray,
    chunks: list[list[Unit]],
    lang: str,
    opts: AsrOptions,
    repairs: list[float] | None = None,
    failed: list[tuple[float, float, str]] | None = None,
    *,
    times: StageTimes | None = None,
    step: str = "decoding",
    guard: _Guard | None = None,
) -> list[Segment]:
    """`_decode` (timed as `step`), then each unit whose text compresses like a loop decoded
    again alone with repeats forbidden; the less repetitive reading is kept (its start goes to
    `repairs`).
    Batched decoding only (sequential decoding has faster-whisper's own temperature fallback);
    `compression_ratio_threshold=None` in the decode options turns it off, as it does
    faster-whisper's fallback."""
    from confindex.speech.quality import COMPRESSION_RATIO, compression_ratio

    with maybe(times, step):
        segments = _decode(decoder, audio, chunks, lang, opts, failed)
    limit = opts.decode_options.get("compression_ratio_threshold", COMPRESSION_RATIO)
    if limit is None or effective_batch_size(decoder, opts) <= 1:
        return segments

    def ratio(segs: list[Segment]) -> float:
        return compression_ratio(" ".join(s.text for s in segs))

    units = [u for chunk in chunks for u in chunk]
    per_unit = segments_by_unit(units, segments)
    ratios = [ratio(segs) for segs in per_unit]
    looping = [i for i, r in enumerate(ratios) if r > limit]
    if looping and guard is not None:  # a forced language: not again if heard as another
        looping = guard.kept(decoder, audio, looping, units.__getitem__, times)
    strict = replace(
        opts, decode_options={**opts.decode_options, "no_repeat_ngram_size": LOOP_NGRAM}
    )
    # Read with repeats forbidden already (forced_reading): decoding again would read the same.
    if not looping or strict == opts:
        return segments
    if guard is not None:
        guard.repaired += [units[i] for i in looping]
    with maybe(times, "loops"):
        again = _decode(decoder, audio, [[units[i]] for i in looping], lang, strict, failed)
    for i, segs in zip(looping, segments_by_unit([units[i] for i in looping], again), strict=True):
        before, after = ratios[i], ratio(segs)
        log.info(
            "speech at %.1f s looped (compression ratio %.1f); decoded again: %.1f",
            units[i].start, before, after,
        )  # fmt: skip
        if after < before:
            per_unit[i] = segs
        if repairs is not None:
            repairs.append(units[i].start)
    return [s for segs in per_unit for s in segs]


class DecodeFailed(RuntimeError):
    """A stretch of speech the decoder failed on, alone, after its batched call failed."""


def _decode(
    decoder: Decoder,
    audio: np.ndarray,
    chunks: list[list[Unit]],
    lang: str,
    opts: AsrOptions,
    failed: list[tuple[float, float, str]] | None = None,
) -> list[Segment]:
    """`_decode_call`, and if that fails (a decoder error, not the user's interrupt or a lack
    of memory), each unit decoded again alone: one bad call must not abort a recording. A unit
    that still fails is appended to `failed` as (start, end, reason) — an `undecoded` flag in
    the transcript — and has no text; without a `failed` list it raises DecodeFailed."""
    try:
        return _decode_call(decoder, audio, chunks, lang, opts)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as e:  # any decoder failure: retried unit by unit
        units = [u for chunk in chunks for u in chunk]
        log.warning(
            "decoding %d stretch(es) of speech (%s) failed: %s; decoding each alone",
            len(units), lang, _reason(e),
        )  # fmt: skip
        if len(units) == 1 and failed is None:
            raise DecodeFailed(_reason(e)) from e
    out: list[Segment] = []
    for u in units:
        try:
            out += _decode_call(decoder, audio, [[u]], lang, opts)
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception as e:
            if failed is None:
                raise DecodeFailed(_reason(e)) from e
            why = _reason(e)
            log.warning("speech at %.1f-%.1f s could not be decoded: %s", u.start, u.end, why)
            failed.append((round(u.start, 3), round(u.end, 3), why))
    return out


def _reason(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".strip().splitlines()[0][:200]
    return text if str(e) else type(e).__name__


def _decode_call(
    decoder: Decoder, audio: np.ndarray, chunks: list[list[Unit]], lang: str, opts: AsrOptions
) -> list[Segment]:
    """Decode chunks of units of one language (each chunk one clip, ≤ 30 s of speech)."""
    settings = DecodeSettings(
        language=lang,
        batch_size=effective_batch_size(decoder, opts),
        beam_size=opts.beam_size,
        word_timestamps=opts.word_timestamps,
        initial_prompt=opts.initial_prompt,
        hotwords=opts.hotwords,
        condition_on_previous_text=opts.condition_on_previous_text,
        options=opts.decode_options,
    )
    return decoder.decode(audio, chunks, settings)
