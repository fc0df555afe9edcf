"""`nonspeech` and `missed` flags against reference speech, on every shared real recording
(issue 31): does a `nonspeech` flag ever fall on speech, and does `missed` find speech that
came out without words?

    .venv/bin/python bench/flags.py [--data ../shared/data] [--cache DIR] [--only NAME]

Each recording is transcribed once by the real job (Transcriber: decode, diarization, Whisper,
turns, flags; base model) and the transcript cached as JSON in --cache (delete it to decode
again). The flags are then computed again from the cached segments with the current
quality.py and both VAD opinions of the audio (the flags' strict one, and the decoder's own,
`asr.vad_chunks` with the decoding defaults), so rule changes are measured without decoding.

References: RTTM speaker turns (AMI excerpts, pyannote sample; their union is the speech), and
the silver word times of the Radio France clip (words closer than 0.5 s joined). A flag is
"on speech" when more than half of it lies in reference speech.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from confindex.run import job
from confindex.speech import audio, quality
from confindex.speech.audio import SAMPLE_RATE
from confindex.store.transcript import Transcript

REPO = Path(__file__).resolve().parents[1]


def clips(data: Path) -> list[tuple[str, Path, list[tuple[float, float]]]]:
    out = []
    for wav in sorted((data / "diar").glob("*.wav")):
        rttm = wav.with_suffix(".rttm")
        if rttm.exists():
            out.append((wav.stem, wav, merge(rttm_turns(rttm))))
    mp3 = data / "fr" / "radiofrance_smartphone.mp3"
    silver = data / "fr" / "radiofrance_smartphone.silver.words.json"
    if mp3.exists() and silver.exists():
        out.append((mp3.stem, mp3, merge(silver_words(silver), gap=0.5)))
    return out


def rttm_turns(path: Path) -> list[tuple[float, float]]:
    out = []
    for line in path.read_text().splitlines():
        f = line.split()
        if len(f) > 4 and f[0] == "SPEAKER":
            out.append((float(f[3]), float(f[3]) + float(f[4])))
    return out


def silver_words(path: Path) -> list[tuple[float, float]]:
    d = json.loads(path.read_text(encoding="utf-8"))
    words = d["words"] if isinstance(d, dict) and "words" in d else d
    if isinstance(d, dict) and "segments" in d:
        words = [w for s in d["segments"] for w in s.get("words", [])]
    return [(float(w["start"]), float(w["end"])) for w in words]


def merge(spans: list[tuple[float, float]], gap: float = 0.0) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1] + gap:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def overlap(a: float, b: float, spans: list[tuple[float, float]]) -> float:
    return sum(max(0.0, min(y, b) - max(x, a)) for x, y in spans)


def transcript_of(name: str, path: Path, cache: Path) -> Transcript:
    from confindex.run.fetch import local_media
    from confindex.run.pipeline import FetchOptions, Transcriber

    cached = cache / f"{name}.json"
    if cached.exists():
        return Transcript.from_dict(json.loads(cached.read_text(encoding="utf-8")))
    t = Transcriber(FetchOptions()).transcribe(local_media(path))
    cache.mkdir(parents=True, exist_ok=True)
    cached.write_text(t.to_json(), encoding="utf-8")
    return t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/confindex-bench-flags"))
    ap.add_argument("--only")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"no shared data at {args.data}", file=sys.stderr)
        return 2
    total_ns = on_speech = total_missed = missed_on_speech = 0
    old_ns = old_on = 0
    for name, path, ref in clips(args.data):
        if args.only and args.only not in name:
            continue
        t = transcript_of(name, path, args.cache)
        samples = audio.decode(path)
        dur = len(samples) / SAMPLE_RATE
        ev = job.flag_evidence(samples)
        signals = quality.Signals(speech=ev.speech, heard=ev.heard, listened=ev.listened)
        flags = quality.assess(t.segments, signals)
        words = [(w.start, w.end) for s in t.segments for w in s.words]
        ref_s = sum(b - a for a, b in ref)
        wordless = sum(max(0.0, (b - a) - overlap(a, b, merge(words, 0.3))) for a, b in ref)
        fetched = ", ".join(f"{f.kind} {f.start:.1f}-{f.end:.1f}" for f in t.flags) or "none"
        print(f"\n## {name}: {dur:.0f} s, reference speech {ref_s:.1f} s, of it without a word "
              f"{wordless:.1f} s; flags at fetch: {fetched}")  # fmt: skip
        # The rule before issue 31: the strict VAD alone (as if the decoder's heard nothing).
        for h in quality.find_nonspeech(t.segments, ev.speech, None):
            share = overlap(h.start, h.end, ref) / max(h.end - h.start, 1e-3)
            old_ns += 1
            old_on += share > 0.5
            print(f"  (strict VAD alone) nonspeech {h.start:7.2f}-{h.end:7.2f}  {share:4.0%} "
                  f"reference speech: {h.reason}")  # fmt: skip
        for f in flags:
            if f.kind not in ("nonspeech", "missed"):
                continue
            share = overlap(f.start, f.end, ref) / max(f.end - f.start, 1e-3)
            verdict = "ON SPEECH" if share > 0.5 else "not speech"
            print(f"  {f.kind:9} {f.start:7.2f}-{f.end:7.2f}  {share:4.0%} reference speech "
                  f"({verdict}): {f.reason}")  # fmt: skip
            if f.kind == "nonspeech":
                total_ns += 1
                on_speech += share > 0.5
            else:
                total_missed += 1
                missed_on_speech += share > 0.5
    print(f"\nnonspeech flags: {total_ns}, on reference speech: {on_speech} "
          f"(the strict VAD alone, as before: {old_ns}, on speech: {old_on})")  # fmt: skip
    print(f"missed flags: {total_missed}, on reference speech: {missed_on_speech}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
