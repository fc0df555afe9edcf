"""Build the bundled sample: a ~60 s two-voice French/English "panel excerpt" (espeak-ng).

Writes samples/panel.ogg (Opus, 16 kHz mono), samples/panel.json (the script with measured
start/end of every line), samples/panel.rttm (the same turns as a diarization reference) and
samples/panel.ref.txt (the plain text, an ASR reference).
Build-time only: needs espeak-ng, sox and ffmpeg on PATH; confindex itself never runs this.

    python tools/make_sample.py            # rebuild samples/panel.ogg + panel.json
    python tools/make_sample.py --wav x.wav  # also keep the lossless mix
    python tools/make_sample.py --check      # transcribe the built sample with confindex.speech.asr

The two voices differ in sex variant, pitch and rate on purpose: plain espeak-ng voices sound
alike to speaker-embedding models (CAM++), which would make the sample useless for diarization.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "samples"

# speaker -> (language, espeak-ng arguments). A low, slow male French voice and a high female
# British English voice, so the two are far apart for an embedding model.
VOICES: dict[str, tuple[str, list[str]]] = {
    "Marc Lefèvre": ("fr", ["-v", "fr+m3", "-p", "25", "-s", "135"]),
    "Maya Brooks": ("en", ["-v", "en+f3", "-p", "80", "-s", "145"]),
}

PAUSE = 1.0  # silence between turns (s)
LONG_PAUSE = 2.6  # once, before the line marked long_pause_before (tests pause-based splitting)
LEAD_IN = 0.5  # silence at the very start (s)


@dataclass
class Line:
    speaker: str
    text: str
    long_pause_before: bool = False


SCRIPT: list[Line] = [
    Line(
        "Marc Lefèvre",
        "Bonsoir et bienvenue. Ce soir, nous parlons de diplomatie spatiale, "
        "et de l'histoire de Soyouz et Apollo.",
    ),
    Line(
        "Maya Brooks",
        "Thank you. In July 1975, an American Apollo capsule docked with a Soviet Soyuz "
        "spacecraft in orbit.",
    ),
    Line(
        "Marc Lefèvre",
        "En 1982, Jean-Loup Chrétien est devenu le premier astronaute français, "
        "à bord d'un vaisseau Soyouz.",
    ),
    Line(
        "Maya Brooks",
        "That famous handshake in space showed that rival nations could work together.",
    ),
    Line(
        "Marc Lefèvre",
        "La diplomatie spatiale continue aujourd'hui, avec la Station spatiale internationale.",
        long_pause_before=True,
    ),
    Line(
        "Maya Brooks",
        "Exactly. The crews trained together, and learned each other's language.",
    ),
    Line("Marc Lefèvre", "Pour les historiens, cette mission reste un symbole de paix."),
    Line(
        "Maya Brooks",
        "And a reminder that cooperation in orbit began during the Cold War.",
    ),
    Line("Marc Lefèvre", "Merci à tous, et à bientôt."),
]


def synthesize(text: str, espeak_args: list[str], workdir: Path, n: int) -> np.ndarray:
    """One line → float32 16 kHz mono samples with leading/trailing silence trimmed."""
    raw = workdir / f"line{n}.wav"
    resampled = workdir / f"line{n}_16k.wav"
    subprocess.run(["espeak-ng", *espeak_args, "-w", str(raw), text], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(resampled)],
        check=True,
    )
    with wave.open(str(resampled)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    samples = pcm.astype(np.float32) / 32768.0
    return trim(samples)


def trim(samples: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """Cut silence at both ends so the recorded start/end are where speech is."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if loud.size == 0:
        return samples[:0]
    return samples[loud[0] : loud[-1] + 1]


def build(workdir: Path) -> tuple[np.ndarray, list[dict]]:
    """Concatenate the lines with pauses; return the mix and the timed script."""
    pieces: list[np.ndarray] = [np.zeros(int(LEAD_IN * SAMPLE_RATE), np.float32)]
    t = LEAD_IN
    timed: list[dict] = []
    for n, line in enumerate(SCRIPT):
        language, args = VOICES[line.speaker]
        if n > 0:
            gap = LONG_PAUSE if line.long_pause_before else PAUSE
            pieces.append(np.zeros(round(gap * SAMPLE_RATE), np.float32))
            t += round(gap * SAMPLE_RATE) / SAMPLE_RATE
        speech = synthesize(line.text, args, workdir, n)
        start, end = t, t + speech.size / SAMPLE_RATE
        pieces.append(speech)
        t = end
        timed.append(
            {
                "speaker": line.speaker,
                "language": language,
                "text": line.text,
                "start": round(start, 2),
                "end": round(end, 2),
            }
        )
    pieces.append(np.zeros(int(LEAD_IN * SAMPLE_RATE), np.float32))
    mix = np.concatenate(pieces)
    # Normalise to -1 dBFS: espeak variants differ in loudness.
    mix *= 0.5 / max(float(np.max(np.abs(mix))), 1e-6)
    return mix, timed


def write_wav(path: Path, samples: np.ndarray) -> None:
    pcm = np.clip(samples * 32767.0, -32768, 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())


# Container tags: confindex shows them as the recording's title, channel and date.
TAGS = (
    "-metadata", "title=Space diplomacy panel excerpt (synthetic)",
    "-metadata", "artist=confindex samples",
    "-metadata", "date=2026-11-24",
)  # fmt: skip


def encode_opus(wav: Path, out: Path, bitrate: str = "32k") -> None:
    # Opus at 32 kb/s: ~4 kB per second, and Whisper hears no difference from the WAV.
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(wav), "-ac", "1", "-ar",
         str(SAMPLE_RATE), "-c:a", "libopus", "-b:a", bitrate, "-application", "audio",
         "-map_metadata", "-1", *TAGS, "-fflags", "+bitexact", str(out)],
        check=True,
    )  # fmt: skip


# Phrases the embedded base model gets right in the whole sample (README and tests rely on them).
KEY_PHRASES = ["diplomatie spatiale", "station spatiale internationale", "handshake in space",
               "cold war"]  # fmt: skip


def _norm(text: str) -> str:
    text = re.sub(r"[^\w\s]", " ", text.lower().replace("-", " ").replace("'", " "))
    return " ".join(text.split())


def check(out_dir: Path, model: str | None = None) -> int:
    """Transcribe the built sample with confindex.speech.asr; exit 1 if a promise below is broken.

    1. The whole file, default options (what `confindex fetch` does): every KEY_PHRASE appears.
    2. Each language's lines alone (cut from the decoded .ogg, joined with 1 s of silence):
       the detected language is right; WER is reported.
    """
    import jiwer

    from confindex.speech import asr, audio

    meta = json.loads((out_dir / "panel.json").read_text(encoding="utf-8"))
    samples = audio.decode(out_dir / meta["audio"])
    loaded = asr.load_model(model)
    failures = 0

    result = asr.transcribe(loaded, samples, asr.AsrOptions())
    print(f"whole file: language {result.language}")
    for seg in result.segments:
        found = [p for p in KEY_PHRASES if p in _norm(seg.text)]
        print(f"  {seg.start:6.2f}-{seg.end:6.2f} {seg.text}" + (f"   <- {found}" if found else ""))
    full = _norm(" ".join(s.text for s in result.segments))
    missing = [p for p in KEY_PHRASES if p not in full]
    print(f"  missing key phrases: {missing or 'none'}")
    failures += bool(missing)

    gap = np.zeros(SAMPLE_RATE, np.float32)
    for lang in ("fr", "en"):
        lines = [x for x in meta["lines"] if x["language"] == lang]
        pieces = [gap]
        for x in lines:
            a, b = int((x["start"] - 0.2) * SAMPLE_RATE), int((x["end"] + 0.2) * SAMPLE_RATE)
            pieces += [samples[a:b], gap]
        res = asr.transcribe(loaded, np.concatenate(pieces), asr.AsrOptions())
        hyp = _norm(" ".join(s.text for s in res.segments))
        ref = _norm(" ".join(x["text"] for x in lines))
        print(f"{lang} lines alone: detected {res.language} (p={res.language_probability:.2f}), "
              f"WER {jiwer.wer(ref, hyp):.3f}: {hyp}")  # fmt: skip
        failures += res.language != lang
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=OUT_DIR)
    ap.add_argument("--wav", type=Path, help="also write the lossless 16 kHz mix here")
    ap.add_argument("--bitrate", default="32k", help="Opus bitrate (default 32k)")
    ap.add_argument("--check", action="store_true", help="only verify the built sample with ASR")
    ap.add_argument("--model", help="Whisper model for --check (default: embedded base)")
    args = ap.parse_args(argv)
    if args.check:
        return check(args.out_dir, args.model)
    for tool in ("espeak-ng", "sox", "ffmpeg"):
        if shutil.which(tool) is None:
            print(
                f"error: {tool} is needed to build the sample (apt install {tool})", file=sys.stderr
            )
            return 1
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        mix, timed = build(Path(tmp))
        wav = Path(tmp) / "panel.wav"
        write_wav(wav, mix)
        if args.wav:
            shutil.copyfile(wav, args.wav)
        encode_opus(wav, args.out_dir / "panel.ogg", args.bitrate)
    meta = {
        "audio": "panel.ogg",
        "title": "Space diplomacy panel excerpt (synthetic)",
        "sample_rate": SAMPLE_RATE,
        "duration": round(mix.size / SAMPLE_RATE, 2),
        "generator": "tools/make_sample.py (espeak-ng)",
        "voices": {name: {"language": lang, "espeak": " ".join(a)} for name, (lang, a) in
                   VOICES.items()},
        "lines": timed,
    }  # fmt: skip
    (args.out_dir / "panel.json").write_text(
        json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    # Reference speaker turns, for `confindex eval diarization samples/panel.ogg panel.rttm`.
    rttm = "".join(
        f"SPEAKER panel 1 {x['start']:.2f} {x['end'] - x['start']:.2f} <NA> <NA> "
        f"{x['speaker'].replace(' ', '_')} <NA> <NA>\n"
        for x in timed
    )
    (args.out_dir / "panel.rttm").write_text(rttm, encoding="utf-8")
    # Plain reference text, for `confindex eval asr samples/panel.ogg samples/panel.ref.txt`.
    ref = "\n".join(x["text"] for x in timed) + "\n"
    (args.out_dir / "panel.ref.txt").write_text(ref, encoding="utf-8")
    size = (args.out_dir / "panel.ogg").stat().st_size
    print(f"wrote {args.out_dir / 'panel.ogg'} ({size / 1000:.0f} kB, {meta['duration']} s)")
    for line in timed:
        print(f"  {line['start']:6.2f}-{line['end']:6.2f} {line['language']} {line['text']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
