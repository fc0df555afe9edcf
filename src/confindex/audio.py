"""Decode any media file once into 16 kHz mono float32 samples, the input of ASR and diarization."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .errors import MediaError

SAMPLE_RATE = 16_000
# Peak amplitude below which we call a recording silent (-80 dBFS).
SILENCE_PEAK = 1e-4


def decode(path: str | Path) -> np.ndarray:
    """Samples of the first audio stream of `path`, resampled to 16 kHz mono float32.

    Uses PyAV (FFmpeg's libraries, as faster-whisper does), so no ffmpeg binary is needed.
    Raises MediaError with a one-line reason for a missing, corrupt, audio-less or silent file.
    """
    import av
    from faster_whisper.audio import decode_audio

    p = Path(path)
    if not p.is_file():
        raise MediaError(f"no such file: {p}")
    if p.stat().st_size == 0:
        raise MediaError(f"{p.name} is empty (0 bytes)")
    try:
        samples = decode_audio(str(p), sampling_rate=SAMPLE_RATE)
    except (av.error.FFmpegError, IndexError, ValueError, StopIteration) as exc:
        # IndexError/StopIteration: PyAV found a container but no audio stream in it.
        raise MediaError(f"{p.name} is not a media file or is corrupt ({_reason(exc)})") from None
    if samples.size == 0:
        raise MediaError(f"{p.name} holds no audio")
    if float(np.max(np.abs(samples))) < SILENCE_PEAK:
        raise MediaError(f"{p.name} is silent: nothing to transcribe")
    return samples


def duration(samples: np.ndarray) -> float:
    return samples.shape[0] / SAMPLE_RATE


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    # PyAV says "[Errno 1094995529] Invalid data found when processing input: '/path'".
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    text = re.sub(r":\s*'[^']*'$", "", text)
    return text[:120]
