"""Transcription cost: confindex's path vs bare faster-whisper, sequential vs batched.

Every variant runs in its own subprocess on the same ≥ 2-minute audio, so each gets a clean
peak RSS (ru_maxrss of that child, from os.wait4) and CPU time. Printed, from one run:

- overhead ratio: confindex (audio.decode + asr.transcribe) / bare (decode_audio +
  WhisperModel.transcribe), same model, device, compute type and decoding options;
- batched speed-up: confindex sequential / confindex --batch-size N;
- optionally (--e2e) the whole `confindex fetch FILE` CLI: decode, ASR, diarization, index.

    python bench/transcription.py                      # CPU, embedded base, int8
    python bench/transcription.py --device cuda --compute-type float16 --batch-size 16
    python bench/transcription.py --e2e --repeat 2

The audio is built from ../shared/data clips and samples/panel.ogg, repeated to --min-seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
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
    SHARED / "en" / "jfk.flac",
    SHARED / "fr" / "picovoice_test_fr.wav",
    SHARED / "diar" / "pyannote_sample.wav",
    ROOT / "samples" / "panel.ogg",
]


# --- audio ---------------------------------------------------------------------------------


def build_audio(out: Path, min_seconds: float, clips: list[Path] | None = None) -> float:
    """Concatenate the available clips (1 s apart), repeated until `min_seconds`; write a WAV."""
    from faster_whisper.audio import decode_audio

    pieces = [decode_audio(str(p), sampling_rate=SAMPLE_RATE) for p in (clips or CLIPS)
              if p.exists()]  # fmt: skip
    if not pieces:
        sys.exit("no audio clips found (../shared/data and samples/panel.ogg are both missing)")
    gap = np.zeros(SAMPLE_RATE, np.float32)
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        n = 0
        i = 0
        while n < min_seconds * SAMPLE_RATE:
            # Written piece by piece: a 1-hour file never sits in this process's memory.
            p = pieces[i % len(pieces)]
            pcm = np.clip(np.concatenate([p, gap]) * 32767, -32768, 32767).astype(np.int16)
            w.writeframes(pcm.tobytes())
            n += pcm.size
            i += 1
    return n / SAMPLE_RATE


# --- workers (run in a subprocess each) ------------------------------------------------------


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """Load, decode and transcribe once; return timings and what came out."""
    t0 = time.perf_counter()
    if args.worker == "bare":
        from faster_whisper import BatchedInferencePipeline, WhisperModel
        from faster_whisper.audio import decode_audio

        from confindex.asr import resolve_model

        # The same model files confindex loads; only the path lookup comes from confindex.
        path = resolve_model(args.model).path
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        model = WhisperModel(path, device=args.device, compute_type=args.compute_type)
        t_load = time.perf_counter()
        audio = decode_audio(args.audio, sampling_rate=SAMPLE_RATE)
        t_decode = time.perf_counter()
        # confindex's defaults (AsrOptions): beam 5, VAD, word timestamps.
        kwargs = dict(language=args.language, beam_size=args.beam_size, vad_filter=True,
                      word_timestamps=True)  # fmt: skip
        if args.batch_size > 1:
            segs, info = BatchedInferencePipeline(model=model).transcribe(
                audio, batch_size=args.batch_size, without_timestamps=False, **kwargs
            )
        else:
            segs, info = model.transcribe(audio, condition_on_previous_text=True, **kwargs)
        texts = [s.text for s in segs]
        language = info.language
    else:
        from confindex import asr
        from confindex import audio as audio_mod

        loaded = asr.load_model(args.model, args.device, args.compute_type)
        t_load = time.perf_counter()
        audio = audio_mod.decode(args.audio)
        t_decode = time.perf_counter()
        opts = asr.AsrOptions(
            language=args.language, beam_size=args.beam_size, batch_size=args.batch_size
        )
        result = asr.transcribe(loaded, audio, opts)
        texts = [s.text for s in result.segments]
        language = result.language
    t_end = time.perf_counter()
    return {
        "load_s": round(t_load - t0, 3),
        "decode_s": round(t_decode - t_load, 3),
        "transcribe_s": round(t_end - t_decode, 3),
        "segments": len(texts),
        "words": sum(len(t.split()) for t in texts),
        "language": language,
    }


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `cmd`, return its last stdout line as JSON plus wall time, CPU time and peak RSS."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, env=env)
        _, status, ru = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        lines = out.read().decode("utf-8", "replace").strip().splitlines()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:6])}… failed with exit code {proc.returncode}")
    data: dict[str, Any] = {}
    if lines:
        try:
            data = json.loads(lines[-1])
        except ValueError:
            data = {}
    data.update(
        wall_s=round(wall, 3),
        cpu_s=round(ru.ru_utime + ru.ru_stime, 2),
        peak_rss_mb=round(ru.ru_maxrss / 1024, 1),  # Linux: KiB
    )
    return data


def variant_cmd(args: argparse.Namespace, audio: Path, kind: str, batch: int) -> list[str]:
    cmd = [sys.executable, __file__, "--worker", kind, "--audio", str(audio),
           "--device", args.device, "--compute-type", args.compute_type,
           "--beam-size", str(args.beam_size), "--batch-size", str(batch)]  # fmt: skip
    if args.model:
        cmd += ["--model", args.model]
    if args.language:
        cmd += ["--language", args.language]
    return cmd


def e2e_cmd(args: argparse.Namespace, audio: Path, ws: Path) -> list[str]:
    exe = Path(sys.executable).with_name("confindex")
    cmd = [str(exe), "fetch", str(audio), "--workspace", str(ws), "--quiet", "--json",
           "--device", args.device, "--compute-type", args.compute_type,
           "--beam-size", str(args.beam_size)]  # fmt: skip
    if args.model:
        cmd += ["--model", args.model]
    return cmd


# --- report ------------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{os.cpu_count()} cores, {cpu}, load avg {load:.1f} at start"


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of the repeats (the best-behaved statistic on a shared machine)."""
    out = dict(runs[-1])
    for key in ("wall_s", "cpu_s", "transcribe_s", "decode_s", "load_s", "peak_rss_mb"):
        vals = [r[key] for r in runs if key in r]
        if vals:
            out[key] = round(statistics.median(vals), 3)
    out["runs"] = len(runs)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="confindex vs bare faster-whisper transcription")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--model", default=None, help="model name or dir (default: embedded base)")
    ap.add_argument("--compute-type", default=None, help="default: int8 on CPU, float16 on CUDA")
    ap.add_argument("--batch-size", type=int, default=8, help="batched variant (default 8)")
    ap.add_argument("--beam-size", type=int, default=5)
    ap.add_argument("--language", default=None, help="force a language (default: detect)")
    ap.add_argument("--min-seconds", type=float, default=120.0)
    ap.add_argument("--audio", help="use this file instead of building one")
    ap.add_argument("--repeat", type=int, default=1, help="runs per variant (median reported)")
    ap.add_argument("--e2e", action="store_true", help="also time `confindex fetch` on the file")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--worker", choices=["bare", "confindex"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.compute_type = args.compute_type or ("float16" if args.device == "cuda" else "int8")
    if args.worker:
        print(json.dumps(worker(args)))
        return 0

    with tempfile.TemporaryDirectory(prefix="confindex-bench-") as tmp:
        if args.audio:
            audio = Path(args.audio)
            from confindex.audio import decode, duration

            seconds = duration(decode(audio))
        else:
            audio = Path(tmp) / "bench.wav"
            seconds = build_audio(audio, args.min_seconds)
        print(f"audio: {seconds:.1f} s; {machine()}", file=sys.stderr)
        variants = {
            "bare sequential": ("bare", 0),
            "confindex sequential": ("confindex", 0),
            f"confindex batch {args.batch_size}": ("confindex", args.batch_size),
        }
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
        if args.e2e:
            runs["confindex fetch (CLI)"] = []
        # Interleaved repeats: a burst of load from elsewhere hits every variant alike.
        for i in range(args.repeat):
            for name, (kind, batch) in variants.items():
                print(f"  run {i + 1}/{args.repeat}: {name}…", file=sys.stderr)
                runs[name].append(run_child(variant_cmd(args, audio, kind, batch)))
            if args.e2e:
                print(f"  run {i + 1}/{args.repeat}: confindex fetch…", file=sys.stderr)
                ws = Path(tmp) / f"ws{i}"
                runs["confindex fetch (CLI)"].append(run_child(e2e_cmd(args, audio, ws)))
        results = {name: summarise(r) for name, r in runs.items()}

    bare = results["bare sequential"]
    seq = results["confindex sequential"]
    bat = results[f"confindex batch {args.batch_size}"]
    figures = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "audio_seconds": round(seconds, 1),
        "model": args.model or "embedded base",
        "device": args.device,
        "compute_type": args.compute_type,
        "overhead_ratio": round(
            (seq["decode_s"] + seq["transcribe_s"]) / (bare["decode_s"] + bare["transcribe_s"]), 3
        ),
        "overhead_ratio_cpu": round(seq["cpu_s"] / bare["cpu_s"], 3),
        "batch_speedup": round(seq["transcribe_s"] / bat["transcribe_s"], 3),
        "variants": results,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"\n{figures['audio_seconds']} s of audio, {figures['model']}, {args.device} "
          f"{args.compute_type}, beam {args.beam_size}; {figures['machine']}")  # fmt: skip
    print(f"{'variant':26} {'decode+asr s':>12} {'× realtime':>10} {'CPU s':>7} "
          f"{'load s':>7} {'peak RSS MB':>11} {'words':>6}  language")  # fmt: skip
    for name, r in results.items():
        work = r.get("decode_s", 0) + r.get("transcribe_s", r["wall_s"])
        print(f"{name:26} {work:12.1f} {seconds / work:10.1f} {r['cpu_s']:7.1f} "
              f"{r.get('load_s', '-'):>7} {r['peak_rss_mb']:11.0f} "
              f"{r.get('words', '-'):>6}  {r.get('language', '')}")  # fmt: skip
    print(
        f"overhead ratio (confindex / bare, wall): {figures['overhead_ratio']:.2f}; "
        f"CPU time: {figures['overhead_ratio_cpu']:.2f}"
    )
    print(f"batch {args.batch_size} speed-up over sequential: {figures['batch_speedup']:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
