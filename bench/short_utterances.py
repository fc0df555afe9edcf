"""Short real utterances alone in a file (issue 30): which language does default transcription
pick? Cuts 2-4 s utterances at Whisper's own word boundaries from the shared French, Russian
and English recordings, pads each with 0.5 s of silence, transcribes each alone with default
options, and prints one row per clip (expected, chosen, text) and the share right.

    PYTHONPATH=src python bench/short_utterances.py [--max-per-source 6]

Measured 2026-12-06 (2 shared cores, load ~10; base int8): default options 20/21 right (fr 7/7,
en 11/11, ru 2/3: pisets 4.36-8.04 s heard as Ukrainian). Tried and not landed: choosing an
unsure unit's language (top probability < 0.9, recording under 10 s of speech) among its top 3
by the duration-weighted average log-probability of a decode in each: 18/21 — decoding AMI
English as Turkish gave a confident loop ("Tamam. Tamam. …", -0.2) and as Welsh a plausible
babble; log-probability rewards loops and translations, so it needs a loop penalty first.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SR = 16_000
SOURCES = [
    ("fr", "fr/picovoice_test_fr.wav"),
    ("fr", "fr/radiofrance_smartphone.mp3"),
    ("ru", "ru/pisets_mono_sound_ru.wav"),
    ("en", "en/jfk.flac"),
    ("en", "diar/ami_dev00.wav"),
    ("en", "diar/pyannote_sample.wav"),
]


def utterances(decoder, audio: np.ndarray, lang: str, most: int) -> list[tuple[float, float]]:
    """(start, end) of word runs of 2-4 s, cut where Whisper's words leave a gap."""
    from confindex.speech import asr

    result = asr.transcribe(decoder, audio, asr.AsrOptions(language=lang))
    words = [w for s in result.segments for w in s.words]
    out: list[tuple[float, float]] = []
    i = 0
    while i < len(words) and len(out) < most:
        j = i
        while j + 1 < len(words) and words[j + 1].end - words[i].start <= 4.0:
            j += 1
        dur = words[j].end - words[i].start
        gap_after = (words[j + 1].start - words[j].end) if j + 1 < len(words) else 1.0
        if 2.0 <= dur <= 4.0 and gap_after >= 0.1:
            out.append((words[i].start, words[j].end))
            i = j + 1
        else:
            i += 1
    return out


def main() -> None:
    from faster_whisper.audio import decode_audio

    from confindex.speech import asr

    ap = argparse.ArgumentParser()
    ap.add_argument("--max-per-source", type=int, default=6)
    args = ap.parse_args()
    decoder = asr.load_model()
    rows = []
    for lang, rel in SOURCES:
        audio = decode_audio(str(SHARED / rel), sampling_rate=SR)
        for a, b in utterances(decoder, audio, lang, args.max_per_source):
            clip = audio[max(0, int((a - 0.1) * SR)) : int((b + 0.1) * SR)]
            pad = np.zeros(SR // 2, np.float32)
            padded = np.concatenate([pad, clip, pad])
            t0 = time.process_time()
            r = asr.transcribe(decoder, padded)
            cpu = time.process_time() - t0
            text = " ".join(s.text for s in r.segments)
            rows.append((rel, a, b, lang, r.language, cpu, text))
            print(f"{rel:32s} {a:6.2f}-{b:6.2f}  want {lang}  got {r.language}  "
                  f"{cpu:5.2f} CPU s  {text[:70]}", flush=True)  # fmt: skip
    right = sum(1 for r in rows if r[3] == r[4])
    print(f"right: {right}/{len(rows)} ({right / max(1, len(rows)):.0%})")
    for lg in ("fr", "ru", "en"):
        mine = [r for r in rows if r[3] == lg]
        print(f"  {lg}: {sum(1 for r in mine if r[4] == lg)}/{len(mine)}")


if __name__ == "__main__":
    main()
