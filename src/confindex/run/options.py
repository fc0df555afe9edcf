"""Transcription options from keyword arguments (the Archive API and the CLI share them), and
the checks made before any download or decoding."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confindex.errors import InputError
from confindex.run.job import FetchOptions

if TYPE_CHECKING:
    from confindex.run.scheduler import BulkOptions

# Options of `fetch`/`transcribe` that decide how a recording is transcribed (FetchOptions and
# AsrOptions fields), accepted as keyword arguments by the Archive methods.
ASR_KEYS = (
    "language",
    "languages",
    "beam_size",
    "vad",
    "vad_threshold",
    "vad_min_silence_ms",
    "vad_pad_ms",
    "batch_size",
    "initial_prompt",
    "hotwords",
)
MODEL_KEYS = (
    "model",
    "device",
    "compute_type",
    "cpu_threads",
    "diarize",
    "num_speakers",
    "min_speakers",
    "max_speakers",
    "diarization_model",
    "keep_edits",
)


def build_options(*, force: bool = False, index: bool = True, **kw: Any) -> FetchOptions:
    """FetchOptions from keyword arguments (`language="fr"`, `diarize=False`, …); an unknown
    keyword is an InputError, so that a typo is not silently ignored."""
    from confindex.speech.asr import AsrOptions

    unknown = set(kw) - set(ASR_KEYS) - set(MODEL_KEYS)
    if unknown:
        raise InputError(f"unknown transcription option(s): {', '.join(sorted(unknown))}")
    languages = kw.get("languages")
    if isinstance(languages, str):
        languages = kw["languages"] = tuple(x.strip() for x in languages.split(",") if x.strip())
    if languages:
        kw["languages"] = tuple(languages)
    FetchOptions.check(
        min_speakers=kw.get("min_speakers"),
        max_speakers=kw.get("max_speakers"),
        language=kw.get("language"),
        languages=languages,
    )
    asr = AsrOptions(**{k: kw[k] for k in ASR_KEYS if kw.get(k) is not None})
    model_kw = {k: kw[k] for k in MODEL_KEYS if kw.get(k) is not None}
    return FetchOptions(**model_kw, asr=asr, force=force, index=index)


def whisper_languages() -> frozenset[str]:
    """The language codes Whisper knows (no model is loaded)."""
    from confindex.speech.decoder import known_languages

    return known_languages()


def check_language_codes(codes: list[str] | tuple[str, ...]) -> None:
    """An InputError for the first code Whisper does not know. The one rule and message for
    the CLI's --languages (shown as a usage error) and `Archive`'s options."""
    if not codes:
        return
    known = whisper_languages()
    for lang in codes:
        if lang not in known:
            raise InputError(
                f"unknown language code {lang!r}: use a Whisper code such as en, fr, de, ru"
            )


def validate_options(options: FetchOptions) -> None:
    """Check everything that can be checked before any download or decoding: the language
    code, the model (a directory must hold a model; a hub name must be cached when the hub is
    offline), the device and the diarization settings. Raises a ConfindexError; nothing is
    recorded, so a run that fails on its options marks no recording failed."""
    from confindex.run.job import diarize_options
    from confindex.speech.decoder import check_model

    asked = [options.asr.language] if options.asr.language is not None else []
    check_language_codes(asked + list(options.asr.languages or ()))
    check_model(options.model, options.device, options.compute_type)
    if options.diarize:
        diarize_options(options)


def fetch_options(
    *,
    force: bool,
    index: bool,
    formats: str | Sequence[str] | None,
    output_dir: str | os.PathLike[str] | None,
    **kw: Any,
) -> FetchOptions:
    """`Archive.fetch`'s FetchOptions: `build_options`, the exports to write ("all", "none",
    "srt,vtt" or a list; None: the workspace config) and where, checked (`validate_options`)."""
    opts = build_options(force=force, index=index, **kw)
    if formats is not None:
        from confindex.formats.export import parse_formats

        # an empty list means none (as "none" does), never "all"
        opts.formats = parse_formats(formats) if isinstance(formats, str) or formats else []
    if output_dir:
        opts.output_dir = str(Path(output_dir).expanduser().resolve())
    validate_options(opts)
    return opts


def bulk_options(download_workers: int, retries: int, ydl_extra: dict[str, Any]) -> BulkOptions:
    """`Archive.fetch`'s BulkOptions; called after the inputs are expanded, which takes the
    credentials out of URLs: they travel to Dask workers with the job only."""
    from confindex.run.credentials import CREDENTIALS_KEY, remembered_credentials
    from confindex.run.scheduler import BulkOptions

    creds = {CREDENTIALS_KEY: remembered_credentials()} if remembered_credentials() else {}
    return BulkOptions(
        download_workers=download_workers, ydl_extra={**ydl_extra, **creds}, retries=retries
    )
