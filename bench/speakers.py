"""Speakers benchmark (issue 13): speaker counts and DER before/after cluster folding and
re-segmentation, voice similarities, and what recognition adds to `fetch`. One run, variants
interleaved, CPU seconds (all threads, `time.process_time`) beside wall seconds.

    python bench/speakers.py                # everything
    python bench/speakers.py --rounds 1     # one fetch per variant
    python bench/speakers.py --composite 10 # only: cheaper diarizations on the 10-min file
    python bench/speakers.py --composite 5,10,15 --rounds 1  # ... at three lengths

1. diarization: every real multi-speaker clip of ../shared/data (pyannote sample, ami_dev00,
   ami_dev01 with RTTM references; the Radio France podcast without one: count only), diarized
   with refine=False ("before": sherpa-onnx's clustering as shipped until now) and refine=True
   ("after"), alternately. DER with collar 0.25 s.
2. similarities: cosine of the voiceprints of every speaker of every clip (what THRESHOLD and
   MARGIN in confindex/voices.py are calibrated on), named by reference overlap.
3. fetch: ami_dev00 + 1 s + ami_dev01 (60 s of a real meeting) through the real pipeline
   (decode, Whisper base, diarization, turns, publish: transcript, exports, index), the Whisper
   model loaded once beforehand, in three variants interleaved per round:
   - before: refine off, no voiceprints, empty library (the pipeline as it was);
   - refine: folding + re-segmentation, no voiceprints;
   - recognition: refine + voiceprints + recognition against a library holding the two
     meeting speakers (from another recording) and 200 other enrollments.
   Recognition's share = (recognition - refine) / refine, in wall and CPU time.

--composite MINUTES[,MINUTES…]: the real-speech file of bench/transcription.py (its clips end
to end, repeated to each length), diarized by each variant below, rounds interleaved, median
CPU and wall time. DER is scored where a reference exists (every placed copy of ami_dev00,
ami_dev01 and the pyannote sample; the same AMI person is one speaker across copies: 4 true
speakers) with ONE mapping over the whole file, so a person split into two labels between
copies counts as confusion, as it would in search. `der_merged`: the same after merging labels
whose voiceprints the voice library would call one person (>= voices.THRESHOLD alike; not done
by the product).
DER moves by 0.1 or more between lengths of the same clips: judge a change at several.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
DIAR = SHARED / "diar"
CLIPS = [
    ("pyannote_sample", DIAR / "pyannote_sample.wav", DIAR / "pyannote_sample.rttm"),
    ("ami_dev00", DIAR / "ami_dev00.wav", DIAR / "ami_dev00.rttm"),
    ("ami_dev01", DIAR / "ami_dev01.wav", DIAR / "ami_dev01.rttm"),
    ("radiofrance (no ref)", SHARED / "fr" / "radiofrance_smartphone.mp3", None),
]


# Every shared meeting with a reference (issue 29): tune on all of them at once.
MEETINGS = [
    "ami_dev00",
    "ami_dev01",
    "ami_trn00-03",
    "ami_trn04",
    "ami_trn05",
    "ami_trn07-08",
    "ami_trn07",
    "ami_trn08",
    "pyannote_sample",
]


def true_speakers(reference: list, min_speech: float = 2.0) -> int:
    """People who speak at least `min_speech` s (their segments' union) in `reference`."""
    from confindex.evaluation import der

    talk: dict[str, float] = {}
    for label, ivs in der._by_speaker(der._as_segments(reference)).items():
        talk[label] = sum(b - a for a, b in ivs)
    return sum(1 for t in talk.values() if t >= min_speech)


def bench_meetings(variants: dict[str, dict], rounds: int = 1) -> dict:
    """Per meeting and variant: DER (collar 0.25, overlap counted), its three parts, overlap-only
    DER, speakers found vs people speaking >= 2 s, CPU/wall s; then the mean over AMI clips."""
    from confindex.evaluation import der
    from confindex.speech import audio, diarize

    clips = [(n, DIAR / f"{n}.wav", DIAR / f"{n}.rttm") for n in MEETINGS]
    clips = [c for c in clips if c[1].exists()]
    data = {n: (audio.decode(w), der.read_rttm(r)) for n, w, r in clips}
    rows: dict[str, dict[str, dict]] = {v: {} for v in variants}
    for _ in range(rounds):
        for name, (samples, ref) in data.items():
            for variant, kw in variants.items():
                res, wall, cpu = timed(
                    diarize.diarize_with_voices, samples, diarize.DiarizeOptions(**kw)
                )
                r = der.der(ref, res.segments)
                rows[variant][name] = {
                    "der": round(r.der, 3),
                    "missed": round(r.missed, 2),
                    "false_alarm": round(r.false_alarm, 2),
                    "confusion": round(r.confusion, 2),
                    "total": round(r.total, 2),
                    "overlap_der": round(r.overlap_der, 3),
                    "found": len({s.speaker for s in res.segments}),
                    "true": true_speakers(ref),
                    "cpu_s": round(cpu, 2),
                    "wall_s": round(wall, 2),
                }
    summary = {}
    for variant, per in rows.items():
        for name, row in per.items():
            print(f"{variant:<14} {name:<16} {json.dumps(row)}", flush=True)
        ami = [row for name, row in per.items() if name.startswith("ami")]
        summary[variant] = {
            "mean_der_ami": round(statistics.mean(r["der"] for r in ami), 3),
            "mean_der_all": round(statistics.mean(r["der"] for r in per.values()), 3),
            "counts_within_1": sum(abs(r["found"] - r["true"]) <= 1 for r in per.values()),
            "clips": len(per),
            "cpu_s": round(sum(r["cpu_s"] for r in per.values()), 2),
        }
        print(f"{variant:<14} {'mean':<16} {json.dumps(summary[variant])}", flush=True)
    return {"clips": rows, "summary": summary}


def timed(fn, *args, **kw):
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kw)
    return out, time.perf_counter() - w, time.process_time() - c


def bench_diarization() -> dict:
    from confindex.evaluation import der
    from confindex.speech import audio, diarize

    rows = {}
    for name, wav, rttm in CLIPS:
        if not wav.exists():
            continue
        samples = audio.decode(wav)
        ref = der.read_rttm(rttm) if rttm else None
        row = {"seconds": round(len(samples) / 16000, 1)}
        for variant, refine in (("before", False), ("after", True)):
            res, wall, cpu = timed(
                diarize.diarize_with_voices, samples, diarize.DiarizeOptions(refine=refine)
            )
            row[variant] = {
                "speakers": len({s.speaker for s in res.segments}),
                "der": round(der.der(ref, res.segments).der, 3) if ref else None,
                "wall_s": round(wall, 2),
                "cpu_s": round(cpu, 2),
            }
        rows[name] = row
        print(name, json.dumps(row), flush=True)
    return rows


def bench_similarities() -> dict:
    from confindex.evaluation import der
    from confindex.speech import audio, diarize

    prints = {}
    for name, wav, rttm in [*CLIPS[:3], ("jfk", SHARED / "en" / "jfk.flac", None)]:
        if not wav.exists():
            continue
        res = diarize.diarize_with_voices(audio.decode(wav))
        mapping = der.der(der.read_rttm(rttm), res.segments).mapping if rttm else {}
        for label, vp in res.voiceprints.items():
            prints[f"{name}:{mapping.get(label, label)}"] = np.asarray(vp.vector)
    names = list(prints)
    matrix = {a: {b: round(float(prints[a] @ prints[b]), 2) for b in names} for a in names}
    for a in names:
        print(f"{a:28s}", " ".join(f"{matrix[a][b]:.2f}" for b in names), flush=True)
    return matrix


def bench_fetch(rounds: int) -> dict:
    from confindex.run import pipeline
    from confindex.speech import audio, diarize, voices
    from confindex.store.store import Store
    from confindex.store.transcript import Voiceprint
    from confindex.store.workspace import Workspace

    tmp = Path(tempfile.mkdtemp(prefix="bench-speakers-"))
    import wave

    a = audio.decode(DIAR / "ami_dev00.wav")
    b = audio.decode(DIAR / "ami_dev01.wav")
    joined = np.concatenate([a, np.zeros(16000, np.float32), b])
    clip = tmp / "meeting.wav"
    with wave.open(str(clip), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(joined, -1, 1) * 32767).astype("<i2").tobytes())

    # The library: both meeting speakers enrolled from another recording, + 200 random voices.
    rng = np.random.default_rng(0)
    lib = voices.Library()
    for label, vp in diarize.diarize_with_voices(a).voiceprints.items():
        lib.enroll(f"person {label}", "elsewhere", label, vp)
    for i in range(200):
        v = rng.normal(size=192)
        lib.enroll(
            f"other {i}", f"rec{i}", "SPEAKER_00", Voiceprint(list(v / np.linalg.norm(v)), 9)
        )

    options = pipeline.FetchOptions()
    tr = pipeline.Transcriber(options)
    _ = tr.model  # Whisper loaded once, outside the timings
    base = tr.diarize_options
    real_voiceprints = diarize.voiceprints
    real_recognise = Store.recognise
    parts = {"wall": 0.0, "cpu": 0.0}  # voiceprints + recognise, in the current fetch

    def counted(fn):
        def wrapper(*a, **k):
            out, wall, cpu = timed(fn, *a, **k)
            parts["wall"] += wall
            parts["cpu"] += cpu
            return out

        return wrapper

    results: dict[str, list[tuple[float, float]]] = {"before": [], "refine": [], "recognition": []}
    shares: list[tuple[float, float]] = []  # (wall share, cpu share) of recognition's parts
    names: dict[str, dict] = {}
    for r in range(rounds):
        for variant in results:
            ws = Workspace(tmp / f"ws-{variant}-{r}")
            ws.root.mkdir()
            if variant == "recognition":
                Store(ws).save_voices(lib)
                diarize.voiceprints = counted(real_voiceprints)
                Store.recognise = counted(real_recognise)
            else:
                diarize.voiceprints = lambda *a, **k: {}
                Store.recognise = real_recognise
            parts["wall"] = parts["cpu"] = 0.0
            tr.diarize_options = replace(base, refine=variant != "before")
            media = pipeline.local_media(clip)

            def fetch(ws=ws, media=media):
                t = tr.transcribe(media)
                pipeline.publish(ws, t)
                return t

            t, wall, cpu = timed(fetch)
            results[variant].append((wall, cpu))
            names[variant] = dict(t.speakers)
            extra = ""
            if variant == "recognition":
                shares.append((parts["wall"] / wall, parts["cpu"] / cpu))
                w, c = parts["wall"], parts["cpu"]
                extra = f"  (voiceprints + naming: {w:.2f} s wall, {c:.2f} s cpu)"
            print(
                f"round {r} {variant:12s} wall {wall:6.2f} s  cpu {cpu:6.2f} s{extra}", flush=True
            )
    diarize.voiceprints = real_voiceprints
    Store.recognise = real_recognise
    shutil.rmtree(tmp, ignore_errors=True)

    def med(v, i):
        return statistics.median(x[i] for x in results[v])

    out = {v: {"wall_s": round(med(v, 0), 2), "cpu_s": round(med(v, 1), 2)} for v in results}
    for what, i in (("wall", 0), ("cpu", 1)):
        out[f"recognition_adds_{what}"] = round(
            (med("recognition", i) - med("refine", i)) / med("refine", i), 4
        )
        out[f"refine_adds_{what}"] = round(
            (med("refine", i) - med("before", i)) / med("before", i), 4
        )
    out["recognition_parts_share_wall"] = round(statistics.median(x[0] for x in shares), 4)
    out["recognition_parts_share_cpu"] = round(statistics.median(x[1] for x in shares), 4)
    out["names_given"] = names["recognition"]
    out["audio_s"] = round(len(joined) / 16000, 1)
    print(json.dumps(out, indent=1), flush=True)
    return out


def bench_recognition_parts() -> dict:
    """The two parts of recognition alone: voiceprints of a recording, and library matching."""
    from confindex.speech import audio, diarize, voices
    from confindex.store.transcript import Voiceprint

    samples = audio.decode(DIAR / "ami_dev01.wav")
    res = diarize.diarize_with_voices(samples)
    _, wall_vp, cpu_vp = timed(diarize.compute_voiceprints, samples, res.segments)
    rng = np.random.default_rng(0)
    lib = voices.Library()
    for i in range(1000):
        v = rng.normal(size=192)
        lib.enroll(
            f"p{i // 3}", f"rec{i}", "SPEAKER_00", Voiceprint(list(v / np.linalg.norm(v)), 9)
        )
    vp = next(iter(res.voiceprints.values()))
    _, wall_m, cpu_m = timed(lambda: [voices.best_match(lib.scores(vp.vector)) for _ in range(10)])
    out = {
        "voiceprints_30s_clip": {"wall_s": round(wall_vp, 3), "cpu_s": round(cpu_vp, 3)},
        "match_one_speaker_1000_enrollments": {
            "wall_s": round(wall_m / 10, 4),
            "cpu_s": round(cpu_m / 10, 4),
        },
    }
    print(json.dumps(out), flush=True)
    return out


# Cheaper diarizations tried against the default (issue 10: fetch's CPU budget).
COMPOSITE_VARIANTS = {
    "default": {},
    # the windows of re-reading and voiceprints embedded one at a time (as before 2026-12-06)
    "one-worker": {"embed_workers": 1},
    "refine-off": {"refine": False},
    # one speaker per moment, small distinct clusters folded (as before issue 29)
    "before-29": {"overlap": False, "keep_speech": 1e9},
    "reseg-2/2": {"reseg_window": 2.0, "reseg_step": 2.0},
    "reseg-1.5/0.75": {"reseg_step": 0.75},
    "shift-0.6-thr-0.4": {"window_shift": 0.6, "threshold": 0.4},
    # Each second embedded about once: 10-s windows end to end, re-read in 1.5-s tiles.
    "shift-1.0-thr-0.4-tiles": {"window_shift": 1.0, "threshold": 0.4, "reseg_step": 1.5},
    "shift-1.0-thr-0.45-tiles": {"window_shift": 1.0, "threshold": 0.45, "reseg_step": 1.5},
}


def merge_alike(res, threshold: float) -> list:
    """`res.segments` with labels whose voiceprints are at least `threshold` alike merged
    (closest pair first, voiceprints pooled by seconds): what the voice library would call
    one person."""
    from confindex.store.transcript import SpeakerSegment

    vec = {k: np.asarray(v.vector) * v.seconds for k, v in res.voiceprints.items()}
    into = {k: k for k in vec}
    while len(vec) > 1:
        keys = list(vec)
        pairs = [(a, b) for i, a in enumerate(keys) for b in keys[i + 1 :]]

        def cos(pair):
            a, b = vec[pair[0]], vec[pair[1]]
            return float(a @ b) / float(np.linalg.norm(a) * np.linalg.norm(b))

        a, b = max(pairs, key=cos)
        if cos((a, b)) < threshold:
            break
        vec[a] = vec[a] + vec.pop(b)
        into = {k: a if v == b else v for k, v in into.items()}
    return [SpeakerSegment(s.start, s.end, into.get(s.speaker, s.speaker)) for s in res.segments]


def _composite(minutes: float, seed: int | None) -> tuple[np.ndarray, list, list]:
    """(samples, reference, scored spans) of a file of real clips `minutes` long: the clips of
    bench/transcription.py end to end (1 s apart), repeated; in their fixed order (seed None:
    the very 16-bit WAV every earlier figure used) or shuffled anew each cycle by `seed`."""
    import random

    from confindex.evaluation import der

    sys.path.insert(0, str(REPO / "bench"))
    from transcription import CLIPS, _decode, build_audio

    layout: list[tuple[float, float, str]] = []
    if seed is None:
        with tempfile.TemporaryDirectory(prefix="bench-composite-") as tmp:
            build_audio(Path(tmp) / "long.wav", minutes * 60, layout)
            samples = _decode(Path(tmp) / "long.wav")
    else:
        names = [c for c in CLIPS if (SHARED / c).exists()]
        audio = {c: _decode(SHARED / c) for c in names}
        rng = random.Random(seed)
        gap = np.zeros(16000, np.float32)
        parts: list[np.ndarray] = []
        n = 0
        while n < minutes * 60 * 16000:
            order = names[:]
            rng.shuffle(order)
            for clip in order:
                layout.append((n / 16000, (n + audio[clip].size) / 16000, clip))
                parts += [audio[clip], gap]
                n += audio[clip].size + gap.size
        # as 16-bit samples, like the WAV of the fixed order
        pcm = np.clip(np.concatenate(parts) * 32767, -32768, 32767).astype(np.int16)
        samples = (pcm / 32768.0).astype(np.float32)
    refs = {
        clip: der.read_rttm(SHARED / Path(clip).with_suffix(".rttm"))
        for clip in {c for _, _, c in layout}
        if clip.startswith("diar/") and (SHARED / Path(clip).with_suffix(".rttm")).exists()
    }
    spans = [(a, b) for a, b, clip in layout if clip in refs]
    ref = [
        replace(x, start=x.start + a, end=x.end + a)
        for a, _, clip in layout
        if clip in refs
        for x in refs[clip]
    ]
    return samples, ref, spans


def bench_composite(minutes: float, rounds: int, seed: int | None, variants: list[str]) -> dict:
    from confindex.evaluation import der
    from confindex.speech import diarize, voices

    samples, ref, spans = _composite(minutes, seed)

    def inside(segments: list) -> list:
        return [
            replace(s, start=max(s.start, a), end=min(s.end, b))
            for s in segments
            for a, b in spans
            if s.start < b and s.end > a
        ]

    cpu: dict[str, list[float]] = {v: [] for v in variants}
    walls: dict[str, list[float]] = {v: [] for v in variants}
    rows: dict[str, dict] = {}
    for _ in range(rounds):
        for name in variants:
            options = diarize.DiarizeOptions(**COMPOSITE_VARIANTS[name])
            res, wall, c = timed(diarize.diarize_with_voices, samples, options)
            cpu[name].append(c)
            walls[name].append(wall)
            merged = merge_alike(res, voices.THRESHOLD)
            rows[name] = {
                "der": round(der.der(ref, inside(res.segments)).der, 3),
                "speakers": len({s.speaker for s in res.segments}),
                # labels the voice library would call one person, merged (not in the product)
                "der_merged": round(der.der(ref, inside(merged)).der, 3),
            }
    label = f"{minutes:g} min" + ("" if seed is None else f", order {seed}")
    for name in rows:
        rows[name]["wall_s"] = round(statistics.median(walls[name]), 1)
        rows[name]["cpu_s"] = round(statistics.median(cpu[name]), 1)
        print(f"{label:<16} {name:<26} {json.dumps(rows[name])}", flush=True)
    return {"seconds": round(len(samples) / 16000, 1), "seed": seed, "variants": rows}


def summarise(files: list[dict]) -> dict:
    """Per variant over all composite files: mean DER and CPU s per audio minute."""
    out = {}
    minutes = sum(f["seconds"] for f in files) / 60
    for name in files[0]["variants"]:
        ders = [f["variants"][name]["der"] for f in files]
        cpu = sum(f["variants"][name]["cpu_s"] for f in files)
        out[name] = {
            "mean_der": round(statistics.mean(ders), 3),
            "worst_der": max(ders),
            "cpu_s_per_audio_min": round(cpu / minutes, 2),
        }
        print(f"{'all files':<16} {name:<26} {json.dumps(out[name])}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-fetch", action="store_true")
    ap.add_argument(
        "--composite",
        metavar="MINUTES[,MINUTES…]",
        help="only the composite file, at each of these lengths (DER moves with it: try several)",
    )
    ap.add_argument(
        "--shuffled",
        type=int,
        metavar="N",
        help="only N composite files, 5, 7, 9… min long, the clips in a random order (seeded)",
    )
    ap.add_argument(
        "--variants",
        help="for --composite/--shuffled, comma-separated (default: all of "
        + ", ".join(COMPOSITE_VARIANTS)
        + ")",
    )
    ap.add_argument(
        "--meetings",
        action="store_true",
        help="only: every shared meeting with a reference, per clip and mean (issue 29)",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="VARIANT:KEY=VALUE[,KEY=VALUE]",
        help="for --meetings: a variant of DiarizeOptions (repeatable; 'default' always runs)",
    )
    args = ap.parse_args()
    if not DIAR.exists():
        sys.exit(f"{DIAR} is not available")
    if args.meetings:
        variants: dict[str, dict] = {"default": {}}
        for spec in args.set:
            name, _, kvs = spec.partition(":")
            variants[name] = {
                k: json.loads(v) for k, v in (kv.split("=", 1) for kv in kvs.split(",") if kv)
            }
        print(json.dumps(bench_meetings(variants, args.rounds)))
        return
    if args.composite or args.shuffled:
        variants = args.variants.split(",") if args.variants else list(COMPOSITE_VARIANTS)
        if unknown := [v for v in variants if v not in COMPOSITE_VARIANTS]:
            sys.exit(f"--variants: unknown {', '.join(unknown)}")
        files = [
            (float(m), None) for m in (args.composite.split(",") if args.composite else [])
        ] + [(5.0 + 2 * seed, seed) for seed in range(args.shuffled or 0)]
        report = [bench_composite(m, args.rounds, seed, variants) for m, seed in files]
        print(json.dumps({"composite": report, "summary": summarise(report)}))
        return
    report = {
        "diarization": bench_diarization(),
        "similarities": bench_similarities(),
        "recognition_parts": bench_recognition_parts(),
    }
    if not args.skip_fetch:
        report["fetch"] = bench_fetch(args.rounds)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
