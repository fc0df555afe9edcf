"""Diarization benchmark: cost next to transcription, DER, and peak memory on a long recording.

    python bench/diarization.py                  # all three measurements
    python bench/diarization.py --minutes 10     # a shorter long-recording test
    python bench/diarization.py --skip-rss --clip ../shared/data/diar/pyannote_sample.wav

Each measurement runs in its own subprocess, so its peak RSS (os.wait4) is its own:
1. share: one clip (default: the bundled samples/panel.ogg), transcribed with confindex.asr
   (embedded Whisper base, CPU int8) and diarized in the same process; model loading is
   reported apart from processing.
2. der: DER (collar 0.25 s and none) and speaker count on ../shared/data/diar/pyannote_sample.wav.
3. rss: a MINUTES-long recording made by looping real clips (the pyannote sample and the
   panel sample, 4 voices in all) with 1 s gaps, diarized; target: peak RSS < 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
PYANNOTE = SHARED / "diar" / "pyannote_sample.wav"
PANEL = REPO / "samples" / "panel.ogg"
SR = 16000


def _diarize_timed(audio, options=None) -> tuple[list, float, float]:
    """(segments, load seconds, processing seconds)."""
    from confindex import diarize as dz

    options = options or dz.DiarizeOptions()
    t0 = time.perf_counter()
    dz._pipeline(options, -1)  # load the models, so processing time is measured alone
    t1 = time.perf_counter()
    segs = dz.diarize(audio, options)
    return segs, t1 - t0, time.perf_counter() - t1


def measure_share(clip: str) -> dict:
    from confindex import asr
    from confindex.audio import decode

    audio = decode(clip)
    duration = len(audio) / SR
    t0 = time.perf_counter()
    loaded = asr.load_model(device="cpu")
    t1, c1 = time.perf_counter(), time.process_time()
    result = asr.transcribe(loaded, audio, asr.AsrOptions())
    t2, c2 = time.perf_counter(), time.process_time()
    segs, d_load, d_proc = _diarize_timed(audio)
    c3 = time.process_time()  # CPU of all threads: comparable even when the cores are shared
    return {
        "clip": clip,
        "duration_s": round(duration, 2),
        "asr_load_s": round(t1 - t0, 2),
        "asr_s": round(t2 - t1, 2),
        "asr_model": loaded.spec.name,
        "asr_segments": len(result.segments),
        "diarize_load_s": round(d_load, 2),
        "diarize_s": round(d_proc, 2),
        "diarize_rtf": round(d_proc / duration, 3),
        "speakers": len({s.speaker for s in segs}),
        "diarize_share_pct": round(100 * d_proc / (d_proc + (t2 - t1)), 1),
        "asr_cpu_s": round(c2 - c1, 1),
        "diarize_cpu_s": round(c3 - c2, 1),  # includes loading the models (~0.3 s)
        "diarize_cpu_share_pct": round(100 * (c3 - c2) / (c3 - c1), 1),
    }


def measure_der() -> dict:
    from confindex.audio import decode
    from confindex.der import der, read_rttm

    audio = decode(PYANNOTE)
    ref = read_rttm(PYANNOTE.with_suffix(".rttm"))
    segs, _load, proc = _diarize_timed(audio)
    return {
        "clip": str(PYANNOTE),
        "der_collar_0.25": round(der(ref, segs, collar=0.25).der, 4),
        "der_no_collar": round(der(ref, segs, collar=0.0).der, 4),
        "speakers": len({s.speaker for s in segs}),
        "reference_speakers": len({s.speaker for s in ref}),
        "diarize_s": round(proc, 2),
    }


def measure_rss(minutes: float) -> dict:
    import numpy as np

    from confindex.audio import decode

    clips = [decode(p) for p in (PYANNOTE, PANEL) if p.exists()]
    # Filled in place: a list + concatenate would double the audio in memory and in the peak.
    audio = np.zeros(int(minutes * 60 * SR), np.float32)
    n = i = 0
    while n < len(audio):
        clip = clips[i % len(clips)][: len(audio) - n]
        audio[n : n + len(clip)] = clip
        n += len(clip) + SR  # 1 s gap
        i += 1
    segs, _load, proc = _diarize_timed(audio)
    return {
        "duration_min": round(len(audio) / SR / 60, 1),
        "clips_looped": i,
        "diarize_s": round(proc, 1),
        "diarize_rtf": round(proc / (len(audio) / SR), 3),
        "speakers": len({s.speaker for s in segs}),
        "segments": len(segs),
    }


def run_child(args: list[str]) -> tuple[dict, float, float]:
    """Run this script in a subprocess; returns its JSON answer, peak RSS (MB) and CPU seconds
    (CPU time stays meaningful when other jobs share the cores and wall times stretch)."""
    proc = subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"measurement {args} failed (exit {proc.returncode})")
    peak_mb = usage.ru_maxrss / 1024  # KiB on Linux
    cpu = usage.ru_utime + usage.ru_stime
    return json.loads(out.strip().splitlines()[-1]), round(peak_mb, 1), round(cpu, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default=str(PANEL), help="clip for the share measurement")
    parser.add_argument("--minutes", type=float, default=30.0, help="long-recording length")
    parser.add_argument("--skip-share", action="store_true")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--measure", choices=["share", "der", "rss"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.measure:  # child process: print one JSON line
        result = {
            "share": lambda: measure_share(args.clip),
            "der": measure_der,
            "rss": lambda: measure_rss(args.minutes),
        }[args.measure]()
        print(json.dumps(result))
        return

    print(f"cpu cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    if not args.skip_share:
        r, peak, cpu = run_child(["--measure", "share", "--clip", args.clip])
        print(
            f"share  {Path(r['clip']).name} ({r['duration_s']} s): transcription {r['asr_s']} s "
            f"(+{r['asr_load_s']} s load), diarization {r['diarize_s']} s "
            f"(+{r['diarize_load_s']} s load, RTF {r['diarize_rtf']}, {r['speakers']} speakers) "
            f"-> diarization is {r['diarize_share_pct']}% of ASR+diarization wall time, "
            f"{r['diarize_cpu_share_pct']}% of CPU time ({r['asr_cpu_s']} s vs "
            f"{r['diarize_cpu_s']} s); "
            f"process: peak RSS {peak} MB, CPU {cpu} s"
        )
    if PYANNOTE.exists():
        r, peak, cpu = run_child(["--measure", "der"])
        print(
            f"der    pyannote_sample: DER {r['der_collar_0.25']} (collar 0.25 s), "
            f"{r['der_no_collar']} (no collar); {r['speakers']} speakers found "
            f"(reference {r['reference_speakers']}); {r['diarize_s']} s; "
            f"process: peak RSS {peak} MB, CPU {cpu} s"
        )
    else:
        print(f"der    skipped: {PYANNOTE} is absent")
    if not args.skip_rss:
        r, peak, cpu = run_child(["--measure", "rss", "--minutes", str(args.minutes)])
        verdict = "OK" if peak < 1536 else "OVER the 1.5 GB target"
        print(
            f"rss    {r['duration_min']} min ({r['clips_looped']} clips looped): "
            f"{r['diarize_s']} s (RTF {r['diarize_rtf']}), {r['speakers']} speakers, "
            f"{r['segments']} segments; process: peak RSS {peak} MB ({verdict}), CPU {cpu} s"
        )


if __name__ == "__main__":
    main()
