"""Diarization benchmark: cost next to transcription, DER, and peak memory on a long recording.

    python bench/diarization.py                  # all three measurements
    python bench/diarization.py --minutes 10     # a shorter long-recording test
    python bench/diarization.py --skip-rss --clip ../shared/data/diar/pyannote_sample.wav
    python bench/diarization.py --skip-rss --set window_shift=0.1 --set threshold=0.5

Each measurement runs in its own subprocess, so its peak RSS (os.wait4) is its own:
1. share, for each clip (default: the bundled samples/panel.ogg and the pyannote sample), looped
   with 1 s gaps to at least --min-seconds (60 s: the acceptance bar is on a >= 60 s clip):
   decoded, transcribed with confindex.speech.asr (embedded Whisper base, CPU int8) as plain `fetch`
   does, then diarized, in the same process. Reported: how much diarization adds to plain
   transcription (decode + Whisper load + transcription), in wall time and in CPU time (CPU
   time of all the process's threads, which stays meaningful when other jobs share the cores),
   with model loading included and apart; target: adds <= 20%.
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
OPTIONS_ENV = "CONFINDEX_BENCH_DIARIZE"  # how --set reaches the measuring subprocesses


def _options():
    """DiarizeOptions: the defaults, overridden by --set KEY=VALUE (passed on in OPTIONS_ENV)."""
    from dataclasses import fields

    from confindex.speech import diarize as dz

    types = {f.name: f.type for f in fields(dz.DiarizeOptions)}
    kwargs = {}
    for item in filter(None, os.environ.get(OPTIONS_ENV, "").split(",")):
        key, _, value = item.partition("=")
        if key not in types:
            sys.exit(f"--set: unknown diarization option {key!r}")
        kind = types[key]
        kwargs[key] = (
            Path(value) if "Path" in kind else float(value) if "float" in kind else int(value)
        )
    return dz.DiarizeOptions(**kwargs)


def _diarize_timed(audio, options=None) -> tuple[list, float, float]:
    """(segments, load seconds, processing seconds)."""
    from confindex.speech import diarize as dz
    from confindex.speech import sherpa_pass

    options = options or _options()
    t0 = time.perf_counter()
    sherpa_pass.pipeline(options, -1)  # load the models, so processing time is measured alone
    t1 = time.perf_counter()
    segs = dz.diarize(audio, options)
    return segs, t1 - t0, time.perf_counter() - t1


def _loop_to(clip, seconds: float):
    """`clip` repeated with 1 s gaps until it lasts at least `seconds`; (audio, repeats)."""
    import numpy as np

    n = 1
    while (n * len(clip) + (n - 1) * SR) / SR < seconds:
        n += 1
    gap = np.zeros(SR, np.float32)
    parts = [clip]
    for _ in range(n - 1):
        parts += [gap, clip]
    return np.concatenate(parts).astype(np.float32), n


def measure_share(clip: str, min_seconds: float) -> dict:
    """Plain transcription, then diarization, of one clip in this process: wall and CPU."""
    from confindex.speech import asr
    from confindex.speech.audio import decode

    t0, c0 = time.perf_counter(), time.process_time()
    audio, repeats = _loop_to(decode(clip), min_seconds)
    duration = len(audio) / SR
    t1 = time.perf_counter()
    loaded = asr.load_model(device="cpu")
    t2, c2 = time.perf_counter(), time.process_time()
    result = asr.transcribe(loaded, audio, asr.AsrOptions())
    t3, c3 = time.perf_counter(), time.process_time()
    options = _options()
    segs, d_load, d_proc = _diarize_timed(audio, options)
    t4, c4 = time.perf_counter(), time.process_time()
    plain_wall, plain_cpu = t3 - t0, c3 - c0  # decode + Whisper load + transcription
    asr_wall, asr_cpu = t3 - t2, c3 - c2
    d_wall, d_cpu = t4 - t3, c4 - c3  # diarization, model loading included
    return {
        "clip": clip,
        "repeats": repeats,
        "duration_s": round(duration, 2),
        "decode_s": round(t1 - t0, 2),
        "asr_load_s": round(t2 - t1, 2),
        "asr_s": round(asr_wall, 2),
        "asr_cpu_s": round(asr_cpu, 2),
        "asr_cpu_per_audio_s": round(asr_cpu / duration, 3),
        "asr_model": loaded.describe().model,
        "asr_segments": len(result.segments),
        "diarize_load_s": round(d_load, 2),
        "diarize_s": round(d_proc, 2),
        "diarize_cpu_s": round(d_cpu, 2),  # includes loading the models
        "diarize_cpu_per_audio_s": round(d_cpu / duration, 3),
        "speakers": len({s.speaker for s in segs}),
        "threads": options.threads(),
        "window_shift": options.window_shift,
        "threshold": options.threshold,
        # What diarization adds to plain fetch (decode + Whisper load + transcription):
        "adds_wall_pct": round(100 * d_wall / plain_wall, 1),
        "adds_wall_pct_processing": round(100 * d_proc / asr_wall, 1),
        "adds_cpu_pct": round(100 * d_cpu / plain_cpu, 1),
        # Diarization's share of fetch with diarization:
        "share_wall_pct": round(100 * d_wall / (plain_wall + d_wall), 1),
        "share_cpu_pct": round(100 * d_cpu / (plain_cpu + d_cpu), 1),
    }


def measure_der() -> dict:
    from confindex.evaluation.der import der, read_rttm
    from confindex.speech.audio import decode

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

    from confindex.speech.audio import decode

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
    parser.add_argument(
        "--clip",
        action="append",
        help="clip for the share measurement (repeatable; default: panel + pyannote sample)",
    )
    parser.add_argument(
        "--min-seconds", type=float, default=60.0, help="loop each share clip to this length"
    )
    parser.add_argument("--minutes", type=float, default=30.0, help="long-recording length")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a DiarizeOptions default, e.g. window_shift=0.1 (repeatable)",
    )
    parser.add_argument("--skip-share", action="store_true")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--measure", choices=["share", "der", "rss"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    clips = args.clip or [str(p) for p in (PANEL, PYANNOTE) if p.exists()]

    if args.measure:  # child process: print one JSON line
        result = {
            "share": lambda: measure_share(clips[0], args.min_seconds),
            "der": measure_der,
            "rss": lambda: measure_rss(args.minutes),
        }[args.measure]()
        print(json.dumps(result))
        return

    if args.set:
        os.environ[OPTIONS_ENV] = ",".join(args.set)
        _options()  # fail now on a bad --set
    print(f"cpu cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    for clip in [] if args.skip_share else clips:
        r, peak, cpu = run_child(
            ["--measure", "share", "--clip", clip, "--min-seconds", str(args.min_seconds)]
        )
        verdict = "OK" if r["adds_wall_pct"] <= 20 else "OVER the 20% target"
        print(
            f"share  {Path(r['clip']).name} x{r['repeats']} ({r['duration_s']} s), "
            f"diarization threads={r['threads']} window_shift={r['window_shift']} "
            f"threshold={r['threshold']}:\n"
            f"       plain transcription ({r['asr_model']}): {r['asr_s']} s wall "
            f"(+{r['asr_load_s']} s load, +{r['decode_s']} s decode), {r['asr_cpu_s']} CPU s "
            f"= {r['asr_cpu_per_audio_s']} CPU s per audio s\n"
            f"       diarization: {r['diarize_s']} s wall (+{r['diarize_load_s']} s load), "
            f"{r['diarize_cpu_s']} CPU s with loading = {r['diarize_cpu_per_audio_s']} CPU s "
            f"per audio s; {r['speakers']} speakers\n"
            f"       -> diarization adds {r['adds_wall_pct']}% to fetch wall time "
            f"({r['adds_wall_pct_processing']}% without model loading; {verdict}), "
            f"{r['adds_cpu_pct']}% to its CPU time; it is {r['share_wall_pct']}% of the wall "
            f"and {r['share_cpu_pct']}% of the CPU time of fetch with diarization; "
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
