"""Quality flags (issue 14): how many passages are flagged on every real recording, how many of
those are really wrong against the references, and what the flags cost in `fetch` wall time.

    .venv/bin/python bench/quality.py [--data ../shared/data] [--built] [--only NAME]

For each recording the real job runs (Transcriber: decode, diarization, Whisper, turns, flags),
twice per round: with the flags and without them (the flag step replaced by nothing), in
alternating order (ABBA across recordings and rounds), model loaded once beforehand; wall and
CPU seconds (getrusage of this process, all threads) of each. The flag step itself (a second
Silero VAD + the pure checks + the text-language classifier) is also timed inside the runs
with flags. Cost = (with − without) / without, and the step's own share of the wall time.

Each flag is printed with the transcribed words and the reference words of its time span, and
judged wrong when their word error rate is ≥ 0.3 (references with word or turn times:
picovoice, radiofrance silver words, pyannote STM; JFK's 11 s gold text without times is
compared whole). Recordings without a text reference (AMI, Russian) are counted, not judged.

`--built` adds real speech around audio built to fail (babble, music-like tones, a long
silence; as tests/test_quality.py builds them), decoded with the settings that make Whisper
fail, with the real speech's text as reference and nothing as the reference of what was built:
precision and recall of the flags where the truth is known.
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

from confindex.evaluation.evaluate import normaliser, wer
from confindex.run import job
from confindex.run.fetch import local_media
from confindex.run.pipeline import FetchOptions, Transcriber
from confindex.speech import audio, quality
from confindex.speech.asr import AsrOptions

SR = 16000
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from builtaudio import babble as built_babble  # noqa: E402  (the same built audio as the tests)
from builtaudio import tones  # noqa: E402


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


WINDOW = 10.0


def wrong_windows(t, refs) -> tuple[list, list]:
    """Where the transcript is really wrong though maybe not flagged (the flags' recall): the
    recording cut into WINDOW-second windows; those whose words' WER against the reference
    words (timed references only) is ≥ 0.3, and those of them a flag overlaps."""
    if not refs or len(refs) < 2:
        return [], []
    words = [w for x in t.turns for w in x.words]
    bad, caught = [], []
    a = 0.0
    while a < t.duration:
        b = a + WINDOW
        hyp = " ".join(w.text for w in words if a <= (w.start + w.end) / 2 < b)
        ref = " ".join(x for r0, r1, x in refs if a <= (r0 + r1) / 2 < b)
        if hyp.strip() or ref.strip():
            wer = span_wer(hyp, ref)
            if wer >= 0.3:
                bad.append((a, b, wer))
                if any(f.start < b and f.end > a for f in t.flags):
                    caught.append((a, b, wer))
        a = b
    return bad, caught


def no_flags(*a, **kw):
    return []


def transcribe_timed(tr: Transcriber, path: Path, flags: bool = True):
    """One run of the job on `path`: (transcript, wall s, CPU s, flag step wall s, CPU s)."""
    job.quality_flags = timed_flags if flags else no_flags
    try:
        media = local_media(path)
        TIMES.clear()
        w0, c0 = time.perf_counter(), cpu()
        t = tr.transcribe(media)
        wall, cpus = time.perf_counter() - w0, cpu() - c0
    finally:
        job.quality_flags = timed_flags
    fw, fc = TIMES[-1] if TIMES else (0.0, 0.0)
    return t, wall, cpus, fw, fc


def run_one(tr: Transcriber, path: Path, data: Path | None, label: str | None = None,
            refs: list | None = None) -> dict:  # fmt: skip
    t, wall, cpus, fw, fc = transcribe_timed(tr, path)
    if refs is None and data is not None:
        refs = ref_words(data, path.name)
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
    bad, caught = wrong_windows(t, refs)
    if bad:
        print(f"  really wrong {WINDOW:.0f}-s windows (WER ≥ 0.3 against the reference): "
              f"{len(bad)}, of them flagged: {len(caught)}")  # fmt: skip
        for a, b, w in bad:
            print(f"    [{a:6.1f}-{b:6.1f}] WER {w:.2f}{' flagged' if (a, b, w) in caught else ''}")
    return {
        "name": label or path.name,
        "wrong_windows": len(bad),
        "wrong_windows_flagged": len(caught),
        "transcript": t,
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
    """The tests' babble (tests/builtaudio.py): same clips, seed and draws."""
    jfk = audio.decode(data / "en/jfk.flac")
    fr = audio.decode(data / "fr/picovoice_test_fr.wav")
    return built_babble(jfk, fr, seconds)


GUARDS_OFF = {"temperature": 0.0, "compression_ratio_threshold": None,
              "log_prob_threshold": None, "no_speech_threshold": None}  # fmt: skip


def built_cases(data: Path, out: Path, guards: bool = False) -> list[tuple]:
    """(name, path, decoding options, reference, built region): real speech around audio built
    to fail, with the settings that make Whisper fail; the reference is the real speech's text
    where it was put, nothing over what was built. `guards`: also the sequential decodings with
    faster-whisper's guards (3.5× and 15× the CPU)."""
    jfk = audio.decode(data / "en/jfk.flac")
    fr = audio.decode(data / "fr/picovoice_test_fr.wav")
    jd, fd = len(jfk) / SR, len(fr) / SR
    jref = (data / "en/jfk.ref.txt").read_text()
    fwords = ref_words(data, "picovoice_test_fr.wav")

    def jfk_at(*starts: float) -> list:
        return [(x, x + jd, jref) for x in starts]

    def fr_at(*starts: float) -> list:
        return [(a + x, b + x, w) for x in starts for a, b, w in fwords]

    b = _write(out / "jfk_babble_jfk.wav", np.concatenate([jfk, babble(data), jfk]))
    t = _write(out / "jfk_tones_jfk.wav", np.concatenate([jfk, tones(20), jfk]))
    f = _write(out / "fr_babble_fr.wav", np.concatenate([fr, babble(data), fr]))
    s = _write(out / "silence_jfk.wav", np.concatenate([np.zeros(35 * SR, np.float32), jfk]))
    jb, jt, fb, sj = jfk_at(0, jd + 25), jfk_at(0, jd + 20), fr_at(0, fd + 25), jfk_at(35)
    cases = [
        ("jfk+babble+jfk, defaults (batched)", b, AsrOptions(), jb, (jd, jd + 25)),
        ("jfk+tones+jfk, defaults (batched)", t, AsrOptions(), jt, (jd, jd + 20)),
        ("jfk+tones+jfk, no VAD, guards off", t,
         AsrOptions(vad=False, batch_size=0, decode_options=GUARDS_OFF), jt, (jd, jd + 20)),
        ("fr+babble+fr, beam 1, conditioned, guards off", f,
         AsrOptions(language="fr", beam_size=1, vad=False, batch_size=0,
                    condition_on_previous_text=True, decode_options=GUARDS_OFF), fb, (fd, fd + 25)),
        ("fr+babble+fr, beam 1, conditioned, guards on", f,
         AsrOptions(language="fr", beam_size=1, vad=False, batch_size=0,
                    condition_on_previous_text=True), fb, (fd, fd + 25)),
        ("silence+jfk, no VAD, no-speech guards off", s,
         AsrOptions(language="en", vad=False, batch_size=0,
                    decode_options={"no_speech_threshold": None, "log_prob_threshold": None}),
         sj, (0, 35)),
        ("silence+jfk, no VAD, guards on", s, AsrOptions(language="en", vad=False, batch_size=0),
         sj, (0, 35)),
    ]  # fmt: skip
    if guards:
        cases += [
            ("jfk+babble+jfk, sequential (guards active)", b, AsrOptions(batch_size=0), jb,
             (jd, jd + 25)),
            ("jfk+babble+jfk, sequential + hallucination_silence_threshold 2", b,
             AsrOptions(batch_size=0, decode_options={"hallucination_silence_threshold": 2.0}),
             jb, (jd, jd + 25)),
        ]  # fmt: skip
    return cases


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--rounds", type=int, default=2, help="with/without pairs per recording")
    ap.add_argument("--built", action="store_true")
    ap.add_argument("--guards", action="store_true", help="with --built: the slow guard cases")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    data: Path = args.data
    print(f"load average at start: {os.getloadavg()}, {os.cpu_count()} cores")
    tr = Transcriber(FetchOptions())
    real = sorted(p for p in data.glob("*/*") if p.suffix in (".wav", ".mp3", ".flac"))
    if args.only:
        real = [p for p in real if args.only in p.name]
    tr.transcribe(local_media(real[0]))  # load the model once, outside the timings
    rows: dict[Path, dict] = {}
    timing = {p: {"on": [], "off": [], "step": [], "nflags": set()} for p in real}
    for rnd in range(args.rounds):
        for i, p in enumerate(real):
            # ABBA: which variant goes first alternates between recordings and rounds.
            for on in (True, False) if (rnd + i) % 2 == 0 else (False, True):
                if on and p not in rows:
                    r = rows[p] = run_one(tr, p, data)
                    wall, cpus, fw, fc = (
                        r["fetch_wall"],
                        r["fetch_cpu"],
                        r["flag_wall"],
                        r["flag_cpu"],
                    )
                    nflags = r["flags"]
                else:
                    t, wall, cpus, fw, fc = transcribe_timed(tr, p, on)
                    nflags = len(t.flags)
                timing[p]["on" if on else "off"].append((wall, cpus))
                if on:
                    timing[p]["step"].append((fw, fc))
                    timing[p]["nflags"].add(nflags)
                sys.stdout.flush()
    print(f"\nload average at end: {os.getloadavg()}")
    print("\n| recording | s | flags | kinds | judged | really wrong "
          "| fetch with flags wall / CPU s | without wall / CPU s | flag step wall / CPU s "
          "| step share of wall |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    tot = {"on_w": 0.0, "on_c": 0.0, "off_w": 0.0, "off_c": 0.0, "st_w": 0.0, "st_c": 0.0}
    for p in real:
        r, tm = rows[p], timing[p]
        on_w, on_c = median([x[0] for x in tm["on"]]), median([x[1] for x in tm["on"]])
        off_w, off_c = median([x[0] for x in tm["off"]]), median([x[1] for x in tm["off"]])
        st_w, st_c = median([x[0] for x in tm["step"]]), median([x[1] for x in tm["step"]])
        for k, v in zip(tot, (on_w, on_c, off_w, off_c, st_w, st_c), strict=True):
            tot[k] += v
        same = "" if len(tm["nflags"]) == 1 else f" (varied: {sorted(tm['nflags'])})"
        print(f"| {r['name']} | {r['seconds']:.0f} | {r['flags']}{same} | {','.join(r['kinds'])} "
              f"| {r['judged']} | {r['wrong']} | {on_w:.1f} / {on_c:.1f} "
              f"| {off_w:.1f} / {off_c:.1f} "
              f"| {st_w:.2f} / {st_c:.2f} | {100 * st_w / on_w:.1f}% |")  # fmt: skip
    judged = sum(r["judged"] for r in rows.values())
    wrong = sum(r["wrong"] for r in rows.values())
    print(f"really wrong {WINDOW:.0f}-s windows (timed references): "
          f"{sum(r['wrong_windows'] for r in rows.values())}, flagged: "
          f"{sum(r['wrong_windows_flagged'] for r in rows.values())}")  # fmt: skip
    print(
        f"\nreal recordings ({args.rounds} rounds, medians summed): fetch with flags "
        f"{tot['on_w']:.1f} s wall / {tot['on_c']:.1f} s CPU, without {tot['off_w']:.1f} / "
        f"{tot['off_c']:.1f}: {100 * (tot['on_w'] / tot['off_w'] - 1):+.1f}% wall, "
        f"{100 * (tot['on_c'] / tot['off_c'] - 1):+.1f}% CPU; the flag step itself "
        f"{tot['st_w']:.2f} s wall ({100 * tot['st_w'] / tot['on_w']:.1f}%) / {tot['st_c']:.2f} s "
        f"CPU ({100 * tot['st_c'] / tot['on_c']:.1f}%); {sum(r['flags'] for r in rows.values())} "
        f"flags, {wrong}/{judged} judged ones really wrong"
    )
    # Each round's with/without pair ran back to back: its difference, summed over the
    # recordings, once per round — how far apart rounds are shows the noise of the machine.
    per_round = [
        (sum(timing[p]["on"][k][0] - timing[p]["off"][k][0] for p in real),
         sum(timing[p]["on"][k][1] - timing[p]["off"][k][1] for p in real))
        for k in range(args.rounds)
    ]  # fmt: skip
    print("per round, with − without (wall s, CPU s): "
          + ", ".join(f"{w:+.1f} / {c:+.2f}" for w, c in per_round))  # fmt: skip
    if args.built:
        out = Path("/tmp/confindex-quality-bench")
        out.mkdir(exist_ok=True)
        print("\n| built case | flags | kinds | judged | really wrong | words over the built part "
              "| of them flagged | fetch wall / CPU s |")  # fmt: skip
        lines = []
        for name, path, asr, refs, (b0, b1) in built_cases(data, out, args.guards):
            tb = Transcriber(FetchOptions(asr=asr, diarize=False))
            r = run_one(tb, path, None, name, refs=refs)
            t = r["transcript"]
            built = [
                w for x in t.turns for w in x.words if b0 + 0.5 <= (w.start + w.end) / 2 <= b1 - 0.5
            ]
            flagged = [w for w in built if any(quality._inside(w, f) for f in t.flags)]
            lines.append(f"| {name} | {r['flags']} | {','.join(r['kinds'])} | {r['judged']} | "
                         f"{r['wrong']} | {len(built)} | {len(flagged)} | "
                         f"{r['fetch_wall']:.1f} / {r['fetch_cpu']:.1f} |")  # fmt: skip
        print("\n".join(lines))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
