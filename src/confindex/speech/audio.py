"""Decode any media file once into 16 kHz mono float32 samples, the input of ASR and diarization."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from confindex.errors import MediaError

SAMPLE_RATE = 16_000
# Peak amplitude below which we call a recording silent (-80 dBFS).
SILENCE_PEAK = 1e-4
# A file whose decoded audio is this much shorter than its header announces was cut short
# (an interrupted copy, a truncated FLAC): transcribed as far as it goes, with a warning.
TRUNCATED_RATIO = 0.9
TRUNCATED_MIN_SECONDS = 2.0
PREALLOC_SECONDS = 3600.0  # at most this much audio (230 MB) is allocated before it arrives


@dataclass
class DecodeInfo:
    """What decoding found beside the samples."""

    container_seconds: float | None  # the duration the container's header announces
    decoded_seconds: float

    @property
    def truncated(self) -> bool:
        c = self.container_seconds
        return bool(c) and (
            self.decoded_seconds < c * TRUNCATED_RATIO  # type: ignore[operator]
            and c - self.decoded_seconds > TRUNCATED_MIN_SECONDS  # type: ignore[operator]
        )

    def warning(self, name: str) -> str | None:
        if not self.truncated:
            return None
        from confindex.timefmt import hms

        return (
            f"{name} looks truncated: only {hms(self.decoded_seconds)} of audio decoded of the "
            f"{hms(self.container_seconds or 0)} its header announces; transcribing what is there"
        )

    def to_dict(self) -> dict[str, float | bool | None]:
        return {
            "container_seconds": self.container_seconds,
            "decoded_seconds": round(self.decoded_seconds, 3),
            "truncated": self.truncated,
        }


class _NoAudioStream(Exception):
    pass


def decode(path: str | Path) -> np.ndarray:
    """Samples of the first audio stream of `path`, resampled to 16 kHz mono float32.

    Uses PyAV (FFmpeg's libraries, as faster-whisper does), so no ffmpeg binary is needed.
    Raises MediaError with a one-line reason for a missing, corrupt, audio-less or silent file.
    """
    return decode_with_info(path)[0]


def decode_with_info(path: str | Path) -> tuple[np.ndarray, DecodeInfo]:
    """`decode`, and what the container announced (to tell a truncated file)."""
    import av

    from confindex.errors import InputError
    from confindex.store.workspace import check_file

    p = Path(path)
    try:
        check_file(p)  # only regular files: decoding a FIFO or /dev/zero never ends
    except InputError as exc:
        raise MediaError(exc.message) from None
    if p.stat().st_size == 0:
        raise MediaError(f"{p.name} is empty (0 bytes)")
    try:
        samples, container_seconds = _decode_samples(p)
    except _NoAudioStream:
        raise MediaError(f"{p.name} has no audio track (a video without sound?)") from None
    except (av.error.FFmpegError, IndexError, ValueError, StopIteration) as exc:
        raise MediaError(f"{p.name} is not a media file or is corrupt ({_reason(exc)})") from None
    if samples.size == 0:
        raise MediaError(f"{p.name} holds no audio")
    if float(np.max(np.abs(samples))) < SILENCE_PEAK:
        raise MediaError(f"{p.name} is silent: nothing to transcribe")
    return samples, DecodeInfo(container_seconds, samples.size / SAMPLE_RATE)


def _decode_samples(path: Path) -> tuple[np.ndarray, float | None]:
    """Resample the first audio stream into one float32 array, filled in place.

    faster-whisper's decode_audio buffers int16 bytes, then makes two float32 copies: ~2.5x
    the result at peak (575 MB for an hour). Filling a preallocated array keeps it near 1x.
    """
    import gc

    import av

    resampler = av.audio.resampler.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    with av.open(str(path), mode="r", metadata_errors="ignore") as container:
        if not container.streams.audio:
            raise _NoAudioStream
        stream = container.streams.audio[0]
        seconds = (container.duration or 0) / 1_000_000
        if stream.duration and stream.time_base:  # the stream's own figure is more precise
            seconds = float(stream.duration * stream.time_base)
        # The header's duration sizes the array, up to PREALLOC_SECONDS (it grows past that
        # as audio really arrives): a FLAC header claiming 2^36 samples allocated 188 GiB.
        first = min(seconds, PREALLOC_SECONDS)
        out = np.empty(max(int(first * SAMPLE_RATE * 1.01) + SAMPLE_RATE, SAMPLE_RATE), np.float32)
        n = 0

        def put(frames: list) -> None:
            nonlocal out, n
            for rf in frames:
                chunk = rf.to_ndarray().reshape(-1)
                if n + chunk.size > out.size:  # the container under-stated its duration
                    out = np.resize(out, max(out.size * 3 // 2, n + chunk.size))
                np.multiply(chunk, np.float32(1 / 32768), out=out[n : n + chunk.size])
                n += chunk.size

        # Resampling in large groups of frames is much faster than frame by frame.
        fifo = av.audio.fifo.AudioFifo()
        frames = container.decode(audio=0)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except av.error.InvalidDataError:  # a damaged packet: skip it, as players do
                continue
            frame.pts = None  # the resampler must not check timestamps of joined streams
            fifo.write(frame)
            if fifo.samples >= 500_000:
                put(resampler.resample(fifo.read()))
        if fifo.samples:
            put(resampler.resample(fifo.read()))
        put(resampler.resample(None))  # flush
    del resampler
    gc.collect()  # PyAV's resampler objects are only freed by a collection
    # FFmpeg takes a WAV's duration from the bytes present, so a cut copy looked whole: the
    # data chunk's own size says what was meant (a header for 4.33 s, 1.56 s present).
    seconds = max(seconds, wav_announced_seconds(path) or 0.0)
    return out[:n], (seconds or None)


def wav_announced_seconds(path: Path) -> float | None:
    """The duration a RIFF/WAVE header announces (data chunk size / byte rate), or None."""
    import struct

    try:
        with path.open("rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    at, byte_rate = 12, 0
    while at + 8 <= len(head):
        cid, size = head[at : at + 4], struct.unpack("<I", head[at + 4 : at + 8])[0]
        if cid == b"fmt " and size >= 12 and at + 20 <= len(head):
            byte_rate = struct.unpack("<I", head[at + 16 : at + 20])[0]
        elif cid == b"data":
            # 0 and 0xFFFFFFFF: a header written before the length was known (streaming).
            if not byte_rate or size in (0, 0xFFFFFFFF):
                return None
            return size / byte_rate
        at += 8 + size + (size & 1)
    return None


def duration(samples: np.ndarray) -> float:
    return samples.shape[0] / SAMPLE_RATE


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    # PyAV says "[Errno 1094995529] Invalid data found when processing input: '/path'".
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    text = re.sub(r":\s*'[^']*'$", "", text)
    return text[:120]
