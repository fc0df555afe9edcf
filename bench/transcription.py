"""Transcription cost and accuracy: confindex's default `fetch` against bare faster-whisper.

Every variant runs in its own subprocess on the same audio, interleaved with the others (a
burst of load from elsewhere hits every variant alike); each reports its CPU seconds (user +
system, from os.wait4) beside its wall time and peak RSS. Rely on CPU seconds on shared cores.

Cost (`python bench/transcription.py`): a real-speech file built from ../shared/data clips
(AMI meeting excerpts, a telephone call, a French radio podcast, JFK, a French and a Russian
read sentence: French, English and some Russian), at --minutes (default 10) and at half that:

- bare batched: faster-whisper's BatchedInferencePipeline (batch 8, beam 5, Silero VAD, word
  timestamps), language forced — the floor;
- bare sequential (with --ladder): WhisperModel.transcribe, language forced, conditioning on;
- fetch: the whole `confindex fetch FILE` CLI with its defaults (diarization, a language per
  speaker turn), twice on the long file to check that both runs give the same words;
- fetch before (with --before SRC): the same CLI from another source tree (e.g. main before a
  change: `git archive COMMIT src | tar -x -C /tmp/before`), same venv.

Accuracy (`--wer`): default `fetch` on every real clip with a reference (gold or silver), WER
per clip, for this tree and --before. `--wer-file`: the same clips as placed inside the
--minutes file (in context, after other speakers and languages), each copy and pooled.

    git archive main src | tar -x -C /tmp/before        # the tree to compare with
    python bench/transcription.py --before /tmp/before/src --ladder
    python bench/transcription.py --wer --before /tmp/before/src
    python bench/transcription.py --wer --variant "seq=--batch-size 0"   # + fetch options
    python bench/transcription.py --wer-file --before /tmp/before/src    # clips in the long file
    python bench/transcription.py --vad      # speech recall of VAD settings on real clips
    python bench/transcription.py --detect   # units given the right language, per MIN_DETECT
    python bench/transcription.py --token-cap   # a looping short stretch, capped or not
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SAMPLE_RATE = 16_000
CLIPS = [
    "diar/ami_dev00.wav",
    "en/jfk.flac",
    "fr/radiofrance_smartphone.mp3",
    "diar/pyannote_sample.wav",
    "ru/pisets_mono_sound_ru.wav",
    "diar/ami_dev01.wav",
    "fr/picovoice_test_fr.wav",
]
# The language spoken in each clip (the truth for --detect).
CLIP_LANGUAGE = {"diar/ami_dev00.wav": "en", "en/jfk.flac": "en", "diar/pyannote_sample.wav": "en",
                 "fr/radiofrance_smartphone.mp3": "fr", "fr/picovoice_test_fr.wav": "fr",
                 "ru/pisets_mono_sound_ru.wav": "ru", "diar/ami_dev01.wav": "en"}  # fmt: skip
# Clips with a reference text: (audio, reference, kind).
REFERENCES = [
    ("en/jfk.flac", "en/jfk.ref.txt", "gold"),
    ("fr/picovoice_test_fr.wav", "fr/picovoice_test_fr.ref.txt", "gold"),
    ("fr/radiofrance_smartphone.mp3", "fr/radiofrance_smartphone.silver.txt", "silver"),
    ("diar/pyannote_sample.wav", "diar/pyannote_sample.stm", "gold"),
]


def _decode(path: Path) -> np.ndarray:
    from faster_whisper.audio import decode_audio

    return decode_audio(str(path), sampling_rate=SAMPLE_RATE)


def build_audio(out: Path, seconds: float, layout: list | None = None) -> float:
    """The clips one after the other (1 s apart), repeated until `seconds`; a 16-bit WAV.
    `layout`, when given, receives (start s, end s, clip) for each clip placed."""
    names = [c for c in CLIPS if (SHARED / c).exists()]
    pieces = [_decode(SHARED / c) for c in names]
    if not pieces:
        sys.exit(f"no audio clips in {SHARED}")
    gap = np.zeros(SAMPLE_RATE, np.float32)
    n = i = 0
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        while n < seconds * SAMPLE_RATE:
            p = np.concatenate([pieces[i % len(pieces)], gap])
            if layout is not None:
                size = pieces[i % len(pieces)].size
                layout.append((n / SAMPLE_RATE, (n + size) / SAMPLE_RATE, names[i % len(names)]))
            w.writeframes(np.clip(p * 32767, -32768, 32767).astype(np.int16).tobytes())
            n += p.size
            i += 1
    return n / SAMPLE_RATE


# --- workers -------------------------------------------------------------------------------------


def bare_worker(args: argparse.Namespace) -> dict[str, Any]:
    """Bare faster-whisper on the file, language forced; prints its words."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    from confindex.speech.model_files import resolve_model

    model = WhisperModel(resolve_model(None).path, device="cpu", compute_type="int8")
    audio = _decode(Path(args.audio))
    kwargs = dict(language=args.language, beam_size=5, vad_filter=True, word_timestamps=True)
    if args.worker == "bare-batched":
        segs, _ = BatchedInferencePipeline(model=model).transcribe(
            audio, batch_size=8, without_timestamps=False, **kwargs
        )
    else:
        segs, _ = model.transcribe(audio, condition_on_previous_text=True, **kwargs)
    return {"words": [w.word.strip() for s in segs for w in (s.words or [])]}


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `cmd`; its last stdout line as JSON, plus wall time, CPU time, peak RSS and the
    machine's 1-min load average at its start and end (shared cores: the load is the context)."""
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        out.seek(0)
        stdout = out.read().decode("utf-8", "replace").strip()
        lines = stdout.splitlines()
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            tail = err.read().decode("utf-8", "replace").strip().splitlines()[-1:]
            raise SystemExit(f"{' '.join(cmd[:5])}… failed: {tail}")
    data: dict[str, Any] = {}
    for candidate in (stdout, lines[-1] if lines else ""):  # `fetch --json` is indented
        with contextlib.suppress(ValueError):
            data = json.loads(candidate)
            break
    data.update(
        wall_s=round(wall, 2),
        cpu_s=round(ru.ru_utime + ru.ru_stime, 2),
        sys_s=round(ru.ru_stime, 2),
        minflt=ru.ru_minflt,
        peak_rss_mb=round(ru.ru_maxrss / 1024),
        load=f"{load0:.1f}-{os.getloadavg()[0]:.1f}",
    )
    return data


def fetch(audio: Path, ws: Path, src: str | None = None, extra: list[str] = ()) -> dict[str, Any]:
    """The real `confindex fetch` CLI with default options; returns its cost and its words."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    if src:
        env["PYTHONPATH"] = src
    cmd = [sys.executable, "-m", "confindex", "fetch", str(audio), "--workspace", str(ws)]
    r = run_child([*cmd, "--quiet", "--json", "--force", "--no-index", *extra], env)
    rid = r.pop("recordings")[0]["recording_id"]
    t = json.loads((ws / "transcripts" / f"{rid}.json").read_text(encoding="utf-8"))
    r.pop("summary", None)
    r["words"] = [w["text"] for turn in t["turns"] for w in turn["words"]]
    r["text"] = " ".join(turn["text"] for turn in t["turns"])
    langs = t["provenance"]["options"]
    r["languages"] = langs.get("language_seconds") or langs.get("languages")
    r["detect_s"] = langs.get("language_detect_seconds")
    r["diarize_s"] = t["provenance"].get("diarize_seconds")
    r["asr_s"] = t["provenance"].get("transcribe_seconds")
    return r


# --- cost ----------------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} cores, {cpu}, load avg {os.getloadavg()[0]:.1f}"


def cost(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    long_s = args.minutes * 60
    files = {"long": tmp / "long.wav", "short": tmp / "short.wav"}
    secs = {
        "long": build_audio(files["long"], long_s),
        "short": build_audio(files["short"], long_s / 2),
    }
    print(f"audio {secs['long']:.0f} s and {secs['short']:.0f} s; {machine()}", file=sys.stderr)
    me = [sys.executable, __file__, "--language", args.language]
    variants: dict[str, Any] = {
        "bare batched 8, forced": lambda f: run_child(
            [*me, "--worker", "bare-batched", "--audio", str(f)]
        ),
    }
    if args.ladder:
        variants["bare sequential, forced"] = lambda f: run_child(
            [*me, "--worker", "bare-sequential", "--audio", str(f)]
        )
        variants["fetch sequential (--batch-size 0)"] = lambda f: fetch(
            f, tmp / f"seq-{f.stem}", args.after, ["--batch-size", "0"]
        )
    if args.before:
        variants["fetch before (default)"] = lambda f: fetch(
            f, tmp / f"before-{f.stem}", args.before
        )
    variants["fetch (default)"] = lambda f: fetch(f, tmp / f"ws-{f.stem}", args.after)
    variants["fetch again (default)"] = lambda f: fetch(f, tmp / f"again-{f.stem}", args.after)
    results: dict[str, dict[str, Any]] = {}
    sizes = ("short",) if args.short_only else ("long", "short")
    for size in sizes:
        for name, fn in variants.items():
            if size != sizes[0] and name == "fetch again (default)":
                continue
            print(f"  {size}: {name}…", file=sys.stderr)
            r = results[f"{name} [{size}]"] = fn(files[size]) | {"audio_s": round(secs[size], 1)}
            brief = {k: v for k, v in r.items() if k not in ("words", "text")}
            print(f"    {json.dumps(brief)} words={len(r['words'])}", file=sys.stderr)
    first = sizes[0]
    floor = results[f"bare batched 8, forced [{first}]"]["cpu_s"]
    f_first = results[f"fetch (default) [{first}]"]
    figures = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "fetch_cpu_over_bare_batched": round(f_first["cpu_s"] / floor, 3),
        "repeatable": f_first["words"] == results[f"fetch again (default) [{first}]"]["words"],
        "variants": {k: {x: y for x, y in v.items() if x != "text"} for k, v in results.items()},
    }
    if len(sizes) == 2:
        f_short = results["fetch (default) [short]"]
        figures["cpu_per_min_long_over_short"] = round(
            (f_first["cpu_s"] / secs["long"]) / (f_short["cpu_s"] / secs["short"]), 3
        )
    return figures


def print_cost(figures: dict[str, Any]) -> None:
    print(f"\n{figures['date']}; {figures['machine']}")
    print(f"{'variant':38} {'audio s':>7} {'CPU s':>7} {'wall s':>7} {'CPU s/min':>9} "
          f"{'RSS MB':>6} {'words':>6} {'load':>9}  languages (s)")  # fmt: skip
    for name, r in figures["variants"].items():
        print(f"{name:38} {r['audio_s']:7.0f} {r['cpu_s']:7.1f} {r['wall_s']:7.1f} "
              f"{r['cpu_s'] / r['audio_s'] * 60:9.2f} {r['peak_rss_mb']:6} {len(r['words']):6} "
              f"{r.get('load', ''):>9}  {r.get('languages') or ''}")  # fmt: skip
    print(f"fetch CPU / bare batched CPU: {figures['fetch_cpu_over_bare_batched']:.2f}")
    if "cpu_per_min_long_over_short" in figures:
        ratio = figures["cpu_per_min_long_over_short"]
        print(f"fetch CPU per audio minute, long / short: {ratio:.2f}")
    print(f"two fetch runs give the same words: {figures['repeatable']}")


# --- accuracy ------------------------------------------------------------------------------------


def reference_text(path: Path) -> str:
    if path.suffix == ".stm":  # "file channel speaker start end text"
        return " ".join(
            line.split(maxsplit=5)[5] for line in path.read_text().splitlines() if line.strip()
        )
    return path.read_text(encoding="utf-8")


def compared_trees(args: argparse.Namespace) -> dict[str, tuple[str | None, list[str]]]:
    """What --wer and --wer-file compare: label -> (source tree, extra `fetch` options)."""
    trees = {"after": (args.after, [])} | ({"before": (args.before, [])} if args.before else {})
    for spec in args.variant or []:  # NAME=fetch options, on this tree
        name, _, opts = spec.partition("=")
        trees[name] = (args.after, opts.split())
    return trees


def accuracy(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    from confindex.evaluation.evaluate import normaliser, wer

    rows = []
    trees = compared_trees(args)
    for audio, ref, kind in REFERENCES:
        if not (SHARED / audio).exists():
            continue
        reference = reference_text(SHARED / ref)
        norm = normaliser("auto", CLIP_LANGUAGE[audio])
        row: dict[str, Any] = {"clip": audio, "reference": kind}
        for label, (src, extra) in trees.items():
            print(f"  {audio}: {label}…", file=sys.stderr)
            r = fetch(SHARED / audio, tmp / f"wer-{label}", src, extra)
            row[label] = {"wer": round(wer(reference, r["text"], norm), 4), "cpu_s": r["cpu_s"],
                          "wall_s": r["wall_s"], "languages": r["languages"],
                          "load": r["load"]}  # fmt: skip
        rows.append(row)
    return rows


def accuracy_in_file(args: argparse.Namespace, tmp: Path) -> dict[str, dict[str, Any]]:
    """WER of each clip with a reference as placed inside the --minutes bench file (words
    starting within 0.5 s of its span), and pooled over them (errors / reference words): the
    clips in context, packed with other speakers and languages, as a long recording has them."""
    from confindex.evaluation.evaluate import normaliser, wer

    audio, layout = tmp / "long.wav", []
    build_audio(audio, args.minutes * 60, layout)
    refs = {a: reference_text(SHARED / r) for a, r, _ in REFERENCES if (SHARED / r).exists()}
    out: dict[str, dict[str, Any]] = {}
    for label, (src, extra) in compared_trees(args).items():
        print(f"  {label}…", file=sys.stderr)
        ws = tmp / f"file-{label}"
        r = fetch(audio, ws, src, extra)
        t = json.loads(next((ws / "transcripts").glob("*.json")).read_text(encoding="utf-8"))
        words = [(w["start"], w["text"]) for turn in t["turns"] for w in turn["words"]]
        row: dict[str, Any] = {"cpu_s": r["cpu_s"], "wall_s": r["wall_s"], "load": r["load"]}
        errors = total = 0.0
        for a, b, clip in layout:
            if clip not in refs:
                continue
            reference, norm = refs[clip], normaliser("auto", CLIP_LANGUAGE[clip])
            said = " ".join(x for at, x in words if a - 0.5 <= at < b + 0.5)
            row[f"{clip} at {a:.0f} s"] = w = round(wer(reference, said, norm), 4)
            n = len(norm(reference).split())
            errors, total = errors + w * n, total + n
        row["pooled"] = round(errors / max(total, 1), 4)
        out[label] = row
    return out


def print_accuracy(rows: list[dict[str, Any]]) -> None:
    """One line per clip and variant: WER / CPU s / wall s (load)."""
    print(f"\n{'clip':34} {'ref':6} {'variant':24} WER / CPU s / wall s (load)")
    for r in rows:
        for k, v in r.items():
            if isinstance(v, dict):
                print(
                    f"{r['clip']:34} {r['reference']:6} {k:24} "
                    f"{v['wer']:.3f} / {v['cpu_s']:5.1f} / {v['wall_s']:5.1f} ({v['load']})"
                )


# --- VAD -----------------------------------------------------------------------------------------


def read_rttm(path: Path) -> list[tuple[float, float]]:
    out = []
    for line in path.read_text().splitlines():
        f = line.split()
        if f and f[0] == "SPEAKER":
            out.append((float(f[3]), float(f[3]) + float(f[4])))
    return out


def coverage(
    ref: list[tuple[float, float]], hyp: list[tuple[float, float]], total: float
) -> tuple[float, float]:
    """(recall of reference speech, share of the audio kept), on a 10-ms grid."""
    grid = np.zeros((2, int(total * 100) + 1), bool)
    for row, spans in ((0, ref), (1, hyp)):
        for a, b in spans:
            grid[row, int(a * 100) : int(b * 100)] = True
    return float((grid[0] & grid[1]).sum() / max(grid[0].sum(), 1)), float(grid[1].mean())


def vad_sweep() -> list[dict[str, Any]]:
    """Speech recall of VAD settings on the real clips with RTTM turns, and on a French
    sentence said twice around 30 s of silence (the isolated utterance must survive)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    clips = [
        (_decode(p), read_rttm(p.with_suffix(".rttm")))
        for p in sorted((SHARED / "diar").glob("*.wav"))
    ]
    fr = _decode(SHARED / "fr" / "picovoice_test_fr.wav")
    n = len(fr) / SAMPLE_RATE
    clips.append(
        (
            np.concatenate([fr, np.zeros(30 * SAMPLE_RATE, np.float32), fr]),
            [(0.9, n - 0.5), (30 + n + 0.9, 30 + 2 * n - 0.5)],
        )
    )
    rows = []
    for threshold in (0.5, 0.35):
        for silence in (2000, 500, 160):
            for pad in (400, 200):
                opts = VadOptions(
                    threshold=threshold,
                    min_silence_duration_ms=silence,
                    speech_pad_ms=pad,
                    max_speech_duration_s=30,
                )
                rec, kept = [], []
                for audio, ref in clips:
                    hyp = [
                        (c["start"] / SAMPLE_RATE, c["end"] / SAMPLE_RATE)
                        for c in get_speech_timestamps(audio, opts)
                    ]
                    r, k = coverage(ref, hyp, len(audio) / SAMPLE_RATE)
                    rec.append(r)
                    kept.append(k)
                rows.append({"threshold": threshold, "min_silence_ms": silence, "pad_ms": pad,
                             "recall_min": round(min(rec), 4),
                             "recall_mean": round(float(np.mean(rec)), 4),
                             "kept_mean": round(float(np.mean(kept)), 4)})  # fmt: skip
    return rows


def detect_sweep(minutes: float, rounds: int = 2) -> list[dict[str, Any]]:
    """Language detection on the long bench file, diarized once as `fetch` does: per value of
    language.MIN_DETECT (units shorter than it take a neighbour's language instead of an
    encoder pass), and at the default one piece per pass (DETECT_BATCH 1), the units and
    seconds of speech given the language of their clip, the pieces encoded and the CPU seconds
    of detection (values interleaved, median of rounds; wall s of the last round)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from confindex.speech import asr, decoder, language
    from confindex.speech import units as speech_units
    from confindex.speech.diarize import diarize_with_voices

    layout: list[tuple[float, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="confindex-bench-") as tmp:
        wav = Path(tmp) / "long.wav"
        build_audio(wav, minutes * 60, layout)
        audio = _decode(wav)
    loaded = asr.load_model()
    units = speech_units.speech_units(
        asr.vad_chunks(audio, asr.AsrOptions(), loaded), diarize_with_voices(audio).segments
    )

    def truth(u: speech_units.Unit) -> str | None:
        mid = (u.start + u.end) / 2
        return next((CLIP_LANGUAGE[c] for a, b, c in layout if a <= mid <= b), None)

    judged = [(u, truth(u)) for u in units]
    judged = [(u, t) for u, t in judged if t]
    units = [u for u, _ in judged]
    # (MIN_DETECT, DETECT_BATCH): the thresholds at the default batch, and the default
    # threshold one piece per encoder pass (as before pieces of one length were batched)
    values = [(v, decoder.DETECT_BATCH) for v in (1.0, 1.5, 2.0)] + [(language.MIN_DETECT, 1)]
    cpu: dict[tuple[float, int], list[float]] = {v: [] for v in values}
    rows: dict[tuple[float, int], dict[str, Any]] = {}
    default = language.MIN_DETECT, decoder.DETECT_BATCH
    try:
        for _ in range(rounds):
            for v in values:
                language.MIN_DETECT, decoder.DETECT_BATCH = v
                t0 = time.process_time()
                w0 = time.perf_counter()
                probs = language.detect_languages(loaded, audio, units)
                langs = language.choose_languages(probs, units)
                cpu[v].append(time.process_time() - t0)
                wall = time.perf_counter() - w0
                right = [lg == t for lg, (_, t) in zip(langs, judged, strict=True)]
                rows[v] = {
                    "min_detect": v[0],
                    "batch": v[1],
                    "units": len(units),
                    "right": sum(right),
                    "speech_s": round(sum(u.duration for u in units), 1),
                    "wrong_s": round(
                        sum(u.duration for u, ok in zip(units, right, strict=True) if not ok), 1
                    ),
                    "pieces": sum(p is not None for p in probs),
                    "wall_s": round(wall, 2),
                }
    finally:
        language.MIN_DETECT, decoder.DETECT_BATCH = default
    for v in values:
        rows[v]["cpu_s"] = round(float(np.median(cpu[v])), 2)
    return list(rows.values())


def token_cap_bench(rounds: int = 3) -> list[dict[str, Any]]:
    """A short stretch that loops, decoded alone as `fetch` decodes a lost stretch, with
    `decoder.token_cap`'s budget and without it (Whisper's 448 tokens): CPU s (median of rounds,
    variants interleaved), words and compression ratio. The stretch is the 6.5 s of the French
    radio clip that a batched chunk once lost (tests/test_asr_languages.py): decoded alone at
    temperature 0 it loops on the AMD EPYC measured; another CPU's int8 kernels may not loop
    there, and then the two variants cost the same."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from confindex.speech import asr
    from confindex.speech.quality import compression_ratio

    audio = _decode(SHARED / "fr/radiofrance_smartphone.mp3")
    loaded = asr.load_model()
    stretch = [[asr.Unit(64.808, 71.371, "A")]]
    # Loops left as decoded: this measures the first reading, not the repair.
    base = {"compression_ratio_threshold": None}
    variants = {"capped": base, "uncapped": {**base, "max_new_tokens": None}}
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    rows: dict[str, dict[str, Any]] = {}
    for _ in range(rounds):
        for name, decode_options in variants.items():
            opts = asr.AsrOptions(decode_options=decode_options)
            t0 = time.process_time()
            segs = asr._decode(loaded, audio, stretch, "fr", opts)
            cpu[name].append(time.process_time() - t0)
            text = " ".join(s.text for s in segs)
            rows[name] = {
                "variant": name,
                "words": len(text.split()),
                "ratio": round(compression_ratio(text), 1),
                "text": text[:70],
            }
    for name in rows:
        rows[name]["cpu_s"] = round(float(np.median(cpu[name])), 2)
    return list(rows.values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="long file (the short is half)")
    ap.add_argument("--language", default="fr", help="language forced on bare faster-whisper")
    ap.add_argument("--before", metavar="SRC", help="another confindex source tree to compare")
    ap.add_argument("--after", metavar="SRC", help="a snapshot of this tree's src (default: it)")
    ap.add_argument(
        "--ladder", action="store_true", help="also sequential decoding, bare and in fetch"
    )
    ap.add_argument("--short-only", action="store_true", help="only the half-length file")
    ap.add_argument("--wer", action="store_true", help="WER per real clip instead of cost")
    ap.add_argument(
        "--wer-file", action="store_true", help="WER of the clips inside the --minutes file"
    )
    ap.add_argument(
        "--variant",
        action="append",
        metavar="NAME=OPTIONS",
        help='--wer, --wer-file: also fetch with these options, e.g. "seq=--batch-size 0"',
    )
    ap.add_argument("--vad", action="store_true", help="VAD settings' speech recall instead")
    ap.add_argument("--detect", action="store_true", help="language detection per MIN_DETECT")
    ap.add_argument(
        "--token-cap", action="store_true", help="a looping short stretch, capped or not"
    )
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--worker", choices=["bare-batched", "bare-sequential"], help=argparse.SUPPRESS)
    ap.add_argument("--audio", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(bare_worker(args)))
        return 0
    if not SHARED.exists():
        sys.exit(f"{SHARED} is missing: the benches need the real recordings")
    if args.vad or args.detect or args.token_cap:
        if args.token_cap:
            rows = token_cap_bench()
        else:
            rows = detect_sweep(args.minutes) if args.detect else vad_sweep()
        if args.json:
            print(json.dumps(rows, indent=1))
        for r in rows:
            print(r)
        return 0
    with tempfile.TemporaryDirectory(prefix="confindex-bench-") as tmp:
        if args.wer_file:
            table = accuracy_in_file(args, Path(tmp))
            if args.json:
                print(json.dumps(table, indent=1))
                return 0
            for label, row in table.items():
                print(f"{label:10} " + "  ".join(f"{k}: {v}" for k, v in row.items()))
            return 0
        if args.wer:
            rows = accuracy(args, Path(tmp))
            print(json.dumps(rows, indent=1)) if args.json else print_accuracy(rows)
            return 0
        figures = cost(args, Path(tmp))
    if args.json:
        for v in figures["variants"].values():
            v["words"] = len(v["words"])
        print(json.dumps(figures, indent=1))
    else:
        print_cost(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
