"""Peak memory against recording length: does a 1-hour file cost more than a 10-minute one?

Builds a short and a long recording from the same clips (../shared/data + samples/panel.ogg,
repeated), then, each in its own subprocess so ru_maxrss is that step's alone:

- decode: confindex.speech.audio.decode only (1 h of float32 at 16 kHz is 230 MB by itself);
- transcribe: audio.decode + asr.transcribe, as `confindex fetch` runs them;
- with --e2e, the whole `confindex fetch FILE` CLI (adds diarization and indexing).

    python bench/memory_long.py                          # 10 min vs 60 min, beam 1
    python bench/memory_long.py --cap 60 --language en   # quicker: see below
    python bench/memory_long.py --short 5 --long 90 --beam-size 5 --e2e

Beam 1 by default to keep the hour short on a small CPU: this measures memory, and the beam
adds only a few MB of decoder state. On a slow or busy CPU, --cap ends each transcription that
many seconds after its first segment: everything that scales with the duration (decoded
samples, VAD, language voting, the speech-only copy and the mel features of the whole file) is
allocated before the first segment is decoded, and after it only the segment list grows
(about 1 kB per segment), so the peak is already reached.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transcription import build_audio, machine, run_child


def worker(args: argparse.Namespace) -> dict[str, Any]:
    from confindex.speech import asr, audio

    t0 = time.perf_counter()
    samples = audio.decode(args.audio)
    out: dict[str, Any] = {
        "decode_s": round(time.perf_counter() - t0, 2),
        "samples_mb": round(samples.nbytes / 1e6, 1),
    }
    if args.worker == "transcribe":
        loaded = asr.load_model(args.model, args.device, args.compute_type)

        def progress(done: float, total: float) -> None:
            # Read by run_capped in the parent: the first line marks the first decoded segment.
            print(f"progress {done:.1f}", flush=True)

        opts = asr.AsrOptions(
            beam_size=args.beam_size, language=args.language, batch_size=args.batch_size
        )
        result = asr.transcribe(loaded, samples, opts, progress=progress)
        out["transcribe_s"] = round(result.seconds, 1)
        out["segments"] = len(result.segments)
        out["words"] = sum(len(s.words) for s in result.segments)
    return out


def _vm_hwm_mb(pid: int) -> float | None:
    """Peak resident set so far of a live process (VmHWM), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def run_capped(cmd: list[str], cap: float) -> dict[str, Any]:
    """Like run_child, but stop the child `cap` s after its first progress line (cap > 0)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    first = threading.Event()
    state: dict[str, Any] = {"done": 0.0, "last": ""}

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("progress "):
                state["done"] = float(line.split()[1])
                first.set()
            elif line.strip():
                state["last"] = line.strip()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    first_at = None
    capped, hwm = False, None
    # Reap with wait4 only (not Popen.poll), so that the child's rusage is ours to read.
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if first_at is None and first.is_set():
            first_at = time.perf_counter()
        if first_at is not None and time.perf_counter() - first_at > cap:
            hwm = _vm_hwm_mb(proc.pid)
            capped = True
            os.kill(proc.pid, signal.SIGTERM)
            _, status, ru = os.wait4(proc.pid, 0)
            break
        time.sleep(0.2)
    thread.join(timeout=5)
    out: dict[str, Any] = json.loads(state["last"]) if not capped and state["last"] else {}
    if not capped and os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd[:4])}… failed")
    out.update(
        wall_s=round(time.perf_counter() - t0, 3),
        cpu_s=round(ru.ru_utime + ru.ru_stime, 2),
        peak_rss_mb=round(hwm if hwm is not None else ru.ru_maxrss / 1024, 1),
        capped=capped,
        audio_done_s=round(state["done"], 1),
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="peak RSS, short vs long recording")
    ap.add_argument("--short", type=float, default=10.0, help="minutes (default 10)")
    ap.add_argument("--long", type=float, default=60.0, help="minutes (default 60)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--model", default=None)
    ap.add_argument("--compute-type", default=None)
    ap.add_argument("--beam-size", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=0, help="batched inference (0: sequential)")
    ap.add_argument(
        "--language",
        default=None,
        help="force a language: skips per-window language voting on the mixed FR/EN input "
        "(a time cost, not a memory one)",
    )
    ap.add_argument("--e2e", action="store_true", help="also run `confindex fetch` on both")
    ap.add_argument("--decode-only", action="store_true", help="skip transcription")
    ap.add_argument(
        "--cap",
        type=float,
        default=0,
        metavar="S",
        help="stop each transcription S seconds after its first segment (0: run to the end)",
    )
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--worker", choices=["decode", "transcribe"], help=argparse.SUPPRESS)
    ap.add_argument("--audio", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.compute_type = args.compute_type or ("float16" if args.device == "cuda" else "int8")
    if args.worker:
        print(json.dumps(worker(args)))
        return 0

    steps = ["decode"] + ([] if args.decode_only else ["transcribe"])
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="confindex-mem-") as tmp:
        files = {}
        for label, minutes in (("short", args.short), ("long", args.long)):
            path = Path(tmp) / f"{label}.wav"
            files[label] = (path, build_audio(path, minutes * 60))
        print(f"{machine()}", file=sys.stderr)
        for label, (path, seconds) in files.items():
            for step in steps:
                print(f"  {label} ({seconds / 60:.1f} min): {step}…", file=sys.stderr)
                cmd = [sys.executable, __file__, "--worker", step, "--audio", str(path),
                       "--device", args.device, "--compute-type", args.compute_type,
                       "--beam-size", str(args.beam_size),
                       "--batch-size", str(args.batch_size)]  # fmt: skip
                if args.model:
                    cmd += ["--model", args.model]
                if args.language:
                    cmd += ["--language", args.language]
                run = (
                    run_capped(cmd, args.cap)
                    if step == "transcribe" and args.cap
                    else run_child(cmd)
                )
                results[f"{label} {step}"] = {"minutes": round(seconds / 60, 1), **run}
            if args.e2e:
                print(f"  {label}: confindex fetch…", file=sys.stderr)
                exe = Path(sys.executable).with_name("confindex")
                cmd = [str(exe), "fetch", str(path), "-w", str(Path(tmp) / f"ws-{label}"),
                       "--quiet", "--device", args.device, "--compute-type", args.compute_type,
                       "--beam-size", str(args.beam_size)]  # fmt: skip
                results[f"{label} fetch"] = {"minutes": round(seconds / 60, 1), **run_child(cmd)}

    growth = {
        step: round(
            results[f"long {step}"]["peak_rss_mb"] - results[f"short {step}"]["peak_rss_mb"]
        )
        for step in steps + (["fetch"] if args.e2e else [])
    }
    figures = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "beam_size": args.beam_size,
        "batch_size": args.batch_size,
        "language": args.language,
        "cap_s": args.cap,
        "results": results,
        "rss_growth_mb": growth,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"\n{figures['machine']}; {args.device} {args.compute_type}, beam {args.beam_size}, "
          f"batch {args.batch_size}, language {args.language or 'detected'}")  # fmt: skip
    print(f"{'run':22} {'minutes':>7} {'wall s':>8} {'CPU s':>8} {'peak RSS MB':>11} "
          f"{'samples MB':>10}  note")  # fmt: skip
    for name, r in results.items():
        note = f"stopped after {r['audio_done_s']:.0f} s of audio" if r.get("capped") else ""
        print(f"{name:22} {r['minutes']:7.1f} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} "
              f"{r['peak_rss_mb']:11.0f} {r.get('samples_mb', '-'):>10}  {note}")  # fmt: skip
    ratio = files["long"][1] / files["short"][1]
    for step, mb in growth.items():
        print(f"{step}: long − short peak RSS = {mb:+d} MB for {ratio:.0f}× the duration")
    return 0


if __name__ == "__main__":
    sys.exit(main())
