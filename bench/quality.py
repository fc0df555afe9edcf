"""Quality flags (issue 14): how many passages are flagged on every real recording, how many of
those are really wrong against the references, and what the flags cost in `fetch` wall time.

    .venv/bin/python bench/quality.py [--data ../shared/data] [--built] [--only NAME]

For each recording the real pipeline runs (Transcriber: decode, Whisper, diarization, turns,
flags). The flag step (VAD + pure checks) is timed inside that run, wall and CPU seconds (all
threads, getrusage), and set beside the whole transcription's wall and CPU time. Each flag is
printed with the transcribed words and the reference words of its time span, and judged wrong
when the span's word error rate against the reference is ≥ 0.3 (references with word or turn
times: picovoice, radiofrance silver words, pyannote STM; JFK's 11 s gold text without times is
compared whole). Recordings without a reference (AMI, Russian) are counted, not judged.

`--built` adds audio built to fail (babble between real speech, a long silence), decoded with
the settings that make it fail and with faster-whisper's own guards on, to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from confindex import audio, job
from confindex.asr import AsrOptions
from confindex.evaluate import normaliser, wer
from confindex.fetch import local_media
from confindex.pipeline import FetchOptions, Transcriber

SR = 16000
REPO = Path(__file__).resolve().parents[1]


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


TIMES: list[tuple[float, float]] = []
_real_flags = job.quality_flags


def timed_flags(*a, **kw):
    w0, c0 = time.perf_counter(), cpu()
    out = _real_flags(*a, **kw)
    TIMES.append((time.perf_counter() - w0, cpu() - c0))
    return out


job.quality_flags = timed_flags


def ref_words(data: Path, name: str) -> list[tuple[float, float, str]] | None:
    """(start, end, text) reference units with times, or None."""
    if name == "picovoice_test_fr.wav":
        items = json.loads((data / "fr/picovoice_test_fr.words.json").read_text())
        return [(x.get("start", x.get("start_sec")), x.get("end", x.get("end_sec")),
                 x.get("text", x.get("word"))) for x in items]  # fmt: skip
    if name == "radiofrance_smartphone.mp3":
        items = json.loads((data / "fr/radiofrance_smartphone.silver.words.json").read_text())
        return [(x["start"], x["end"], x["text"]) for x in items]
    if name == "pyannote_sample.wav":
        out = []
        for line in (data / "diar/pyannote_sample.stm").read_text().splitlines():
            _, _, _, a, b, text = line.split(" ", 5)
            out.append((float(a), float(b), text))
        return out
    if name == "jfk.flac":
        return [(0.0, 11.0, (data / "en/jfk.ref.txt").read_text())]
    return None


def span_wer(hyp: str, ref: str) -> float:
    if not ref.strip():
        return 1.0 if hyp.strip() else 0.0
    return wer(ref, hyp, normaliser("auto")) if hyp.strip() else 1.0


def judge(t, f, refs) -> tuple[str, str, float | None]:
    words = [w for turn in t.turns for w in turn.words if f.start - 0.01 <= (w.start + w.end) / 2
             <= f.end + 0.01]  # fmt: skip
    hyp = " ".join(w.text for w in words)
    if refs is None:
        return hyp, "", None
    ref = " ".join(x for a, b, x in refs if min(b, f.end + 0.3) > max(a, f.start - 0.3))
    return hyp, ref, span_wer(hyp, ref)


def run_one(tr: Transcriber, path: Path, data: Path | None, label: str | None = None) -> dict:
    media = local_media(path)
    TIMES.clear()
    w0, c0 = time.perf_counter(), cpu()
    t = tr.transcribe(media)
    wall, cpus = time.perf_counter() - w0, cpu() - c0
    fw, fc = TIMES[-1] if TIMES else (0.0, 0.0)
    refs = ref_words(data, path.name) if data else None
    judged = wrong = 0
    print(f"\n## {label or path.name}: {t.duration:.0f} s, {len(t.turns)} turns, "
          f"{len(t.flags)} flags; fetch {wall:.1f} s wall / {cpus:.1f} s CPU, flags "
          f"{fw:.2f} s wall / {fc:.2f} s CPU ({100 * fw / wall:.1f}% of wall)")  # fmt: skip
    for f in t.flags:
        hyp, ref, wer = judge(t, f, refs)
        verdict = "—" if wer is None else ("WRONG" if wer >= 0.3 else "right")
        if wer is not None:
            judged += 1
            wrong += wer >= 0.3
        print(f"  [{f.start:6.1f}-{f.end:6.1f}] {f.kind:9s} {f.score:.2f} {verdict:5s} "
              f"{'' if wer is None else f'WER {wer:.2f}'} | {f.reason}")  # fmt: skip
        print(f"      hyp: {hyp[:150]}")
        if ref:
            print(f"      ref: {ref[:150]}")
    return {
        "name": label or path.name,
        "seconds": t.duration,
        "flags": len(t.flags),
        "kinds": sorted({f.kind for f in t.flags}),
        "judged": judged,
        "wrong": wrong,
        "fetch_wall": wall,
        "fetch_cpu": cpus,
        "flag_wall": fw,
        "flag_cpu": fc,
    }


def _write(path: Path, samples: np.ndarray) -> Path:
    import wave

    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())
    return path


def babble(data: Path, seconds: float = 25.0) -> np.ndarray:
    """Speech-like noise without words: 8 real clips, reversed or shifted, mixed quietly (the
    same construction, seed and draws as tests/test_quality.py)."""
    jfk = audio.decode(data / "en/jfk.flac")
    fr = audio.decode(data / "fr/picovoice_test_fr.wav")
    rng = np.random.default_rng(0)
    rng.standard_normal(int(20 * SR))
    src = [jfk[::-1], fr[::-1], jfk, fr]
    n = int(seconds * SR)
    out = np.zeros(n, np.float32)
    for i in range(8):
        s = src[i % 4]
        off = int(rng.integers(0, n - len(s)))
        out[off : off + len(s)] += 0.5 * s
    return 0.5 * out


GUARDS_OFF = {"temperature": 0.0, "compression_ratio_threshold": None,
              "log_prob_threshold": None, "no_speech_threshold": None}  # fmt: skip


def built_cases(data: Path, out: Path) -> list[tuple[str, Path, AsrOptions]]:
    """Audio built to fail, with the decoding settings that make it fail, and faster-whisper's
    guards (sequential decoding applies them; the batched pipeline has no temperature
    fallback) to compare."""
    jfk = audio.decode(data / "en/jfk.flac")
    fr = audio.decode(data / "fr/picovoice_test_fr.wav")
    b = _write(out / "jfk_babble_jfk.wav", np.concatenate([jfk, babble(data), jfk]))
    f = _write(out / "fr_babble_fr.wav", np.concatenate([fr, babble(data), fr]))
    s = _write(out / "silence_jfk.wav", np.concatenate([np.zeros(35 * SR, np.float32), jfk]))
    return [
        ("jfk+babble+jfk, defaults (batched)", b, AsrOptions()),
        ("jfk+babble+jfk, sequential (guards active)", b, AsrOptions(batch_size=0)),
        ("jfk+babble+jfk, sequential + hallucination_silence_threshold 2",
         b, AsrOptions(batch_size=0, decode_options={"hallucination_silence_threshold": 2.0})),
        ("fr+babble+fr, beam 1, conditioned, guards off", f,
         AsrOptions(language="fr", beam_size=1, vad=False, batch_size=0,
                    condition_on_previous_text=True, decode_options=GUARDS_OFF)),
        ("fr+babble+fr, beam 1, conditioned, guards on", f,
         AsrOptions(language="fr", beam_size=1, vad=False, batch_size=0,
                    condition_on_previous_text=True)),
        ("silence+jfk, no VAD, no-speech guards off", s,
         AsrOptions(language="en", vad=False, batch_size=0,
                    decode_options={"no_speech_threshold": None, "log_prob_threshold": None})),
        ("silence+jfk, no VAD, guards on", s, AsrOptions(language="en", vad=False, batch_size=0)),
    ]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--built", action="store_true")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    data: Path = args.data
    rows = []
    tr = Transcriber(FetchOptions())
    real = sorted(p for p in data.glob("*/*") if p.suffix in (".wav", ".mp3", ".flac"))
    if args.only:
        real = [p for p in real if args.only in p.name]
    tr.transcribe(local_media(real[0]))  # load the model once, outside the timings
    for p in real:
        rows.append(run_one(tr, p, data))
    if args.built:
        out = Path("/tmp/confindex-quality-bench")
        out.mkdir(exist_ok=True)
        for name, path, asr in built_cases(data, out):
            tb = Transcriber(FetchOptions(asr=asr, diarize=False))
            rows.append(run_one(tb, path, None, name))
    print("\n| recording | s | flags | kinds | judged | really wrong | fetch wall / CPU s | "
          "flags wall / CPU s | share of wall |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['seconds']:.0f} | {r['flags']} | {','.join(r['kinds'])} | "
              f"{r['judged']} | {r['wrong']} | {r['fetch_wall']:.1f} / {r['fetch_cpu']:.1f} | "
              f"{r['flag_wall']:.2f} / {r['flag_cpu']:.2f} | "
              f"{100 * r['flag_wall'] / r['fetch_wall']:.1f}% |")  # fmt: skip
    tw = sum(r["fetch_wall"] for r in rows[: len(real)])
    fw = sum(r["flag_wall"] for r in rows[: len(real)])
    judged = sum(r["judged"] for r in rows[: len(real)])
    wrong = sum(r["wrong"] for r in rows[: len(real)])
    print(
        f"\nreal recordings: flags cost {fw:.2f} s of {tw:.1f} s fetch wall "
        f"({100 * fw / tw:.1f}%); precision {wrong}/{judged} judged flags really wrong"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
