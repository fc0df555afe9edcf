"""Where `fetch`'s time goes, step by step, on the shared real recordings (issue 33).

One mixed-language file is built from ../shared/data's clips (AMI meetings, a telephone call,
a French radio podcast, JFK, a French and a Russian read sentence; 1 s apart, languages
interleaved). Each variant is the real `confindex fetch` CLI in its own subprocess (CPU s from
os.wait4, wall s, the 1-min load average at start-end), variants interleaved round by round;
each transcript's `provenance.options["stages"]` gives the CPU and wall seconds per step.

    python bench/stages.py                                   # default, --language fr, --no-diarize
    python bench/stages.py --before /tmp/h33/before/src      # the same with another tree
    python bench/stages.py --variant "seq=--sequential" --rounds 2
    python bench/stages.py --bulk 8                          # fetch -a of 8 clips vs one by one
    python bench/stages.py --bare                            # + bare batched faster-whisper

`--bare` adds, after each round's `fetch --no-diarize`, bare faster-whisper (the batched
pipeline, batch 8, beam 5, its own Silero VAD, word times) run on each stretch of the file in
the language that fetch chose there (its turns, consecutive ones of one language joined, each
stretch reaching halfway to its neighbours): acceptance 2's floor, in a subprocess of its own
(model load and audio decoding counted, as in `fetch`).

Rely on CPU seconds on shared cores; wall s means something only on a quiet machine (load < 1.2
on 2 cores): the load is printed beside each run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
from transcription import SHARED, _decode, machine, run_child

SAMPLE_RATE = 16_000
# Every shared clip once (the joins ami_trn07-08 and ami_trn00-03's parts left out: no clip
# twice), languages interleaved as in a multilingual panel: 537 s.
MIXED = [
    "diar/ami_dev00.wav",
    "fr/radiofrance_smartphone.mp3",
    "en/jfk.flac",
    "ru/pisets_mono_sound_ru.wav",
    "diar/ami_trn04.wav",
    "fr/picovoice_test_fr.wav",
    "diar/pyannote_sample.wav",
    "diar/ami_trn05.wav",
    "diar/ami_dev01.wav",
    "diar/ami_trn07.wav",
    "diar/ami_trn08.wav",
    "diar/ami_trn00-03.wav",
]
STEPS = ("download", "hash", "audio", "model", "diarize", "vad", "evidence", "language",
         "decoding", "lost", "loops", "turns", "flags")  # fmt: skip


def build_mixed(out: Path, clips: list[str]) -> float:
    """The clips one after the other, 1 s of silence after each: a 16-bit mono WAV."""
    gap = np.zeros(SAMPLE_RATE, np.float32)
    n = 0
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        for c in clips:
            p = np.concatenate([_decode(SHARED / c), gap])
            w.writeframes(np.clip(p * 32767, -32768, 32767).astype(np.int16).tobytes())
            n += p.size
    return n / SAMPLE_RATE


def fetch(
    sources: list[str], ws: Path, src: str | None, extra: list[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """`confindex fetch SOURCES` in a subprocess: its cost, and each transcript's dict."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    if src:
        env["PYTHONPATH"] = src
    cmd = [sys.executable, "-m", "confindex", "fetch", *sources, "--workspace", str(ws)]
    r = run_child([*cmd, "--quiet", "--json", "--force", "--no-index", *extra], env)
    ts = []
    for rec in r.pop("recordings"):
        path = ws / "transcripts" / f"{rec['recording_id']}.json"
        ts.append(json.loads(path.read_text(encoding="utf-8")))
    r.pop("summary", None)
    return r, ts


def words_and_turns(t: dict[str, Any]) -> list[Any]:
    return [(tn["speaker"], tn["start"], [w["text"] for w in tn["words"]]) for tn in t["turns"]]


def stretches(t: dict[str, Any]) -> list[tuple[float, float, str]]:
    """(start, end, language): the transcript's turns, consecutive ones of one language joined,
    each stretch reaching halfway to its neighbours (the first from 0, the last to the end)."""
    runs: list[list[Any]] = []
    for tn in t["turns"]:
        lang = tn.get("language") or t.get("language") or "en"
        if runs and runs[-1][2] == lang:
            runs[-1][1] = tn["end"]
        else:
            runs.append([tn["start"], tn["end"], lang])
    out = []
    for i, (a, b, lang) in enumerate(runs):
        lo = 0.0 if i == 0 else (runs[i - 1][1] + a) / 2
        hi = float(t["recording"].get("duration") or 1e9) if i == len(runs) - 1 else None
        hi = hi if hi is not None else (b + runs[i + 1][0]) / 2
        out.append((round(lo, 3), round(hi, 3), lang))
    return out


def bare_worker(audio: str, spans_json: str) -> int:
    """Bare batched faster-whisper on each (start, end, language) stretch; prints its words."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    from confindex.speech.model_files import resolve_model

    model = WhisperModel(resolve_model(None).path, device="cpu", compute_type="int8")
    pipe = BatchedInferencePipeline(model=model)
    samples = _decode(Path(audio))
    words = 0
    for a, b, lang in json.loads(Path(spans_json).read_text(encoding="utf-8")):
        piece = samples[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE)]
        segs, _ = pipe.transcribe(
            piece, language=lang, batch_size=8, beam_size=5, vad_filter=True,
            word_timestamps=True, without_timestamps=False,
        )  # fmt: skip
        words += sum(len(s.words or []) for s in segs)
    print(json.dumps({"words_n": words}))
    return 0


def bare(wav: Path, t: dict[str, Any], tmp: Path) -> dict[str, Any]:
    spans = tmp / "stretches.json"
    spans.write_text(json.dumps(stretches(t)), encoding="utf-8")
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    cmd = [sys.executable, __file__, "--bare-worker", str(wav), str(spans)]
    r = run_child(cmd, env)
    r["stretches"] = len(stretches(t))
    return r


def single(args: argparse.Namespace, tmp: Path) -> None:
    clips = [c for c in MIXED if (SHARED / c).exists()]
    wav = tmp / "mixed.wav"
    secs = build_mixed(wav, clips)
    print(f"mixed file: {len(clips)} clips, {secs:.0f} s; {machine()}", file=sys.stderr)
    trees = {"after": args.after} | ({"before": args.before} if args.before else {})
    variants: dict[str, tuple[str | None, list[str]]] = {}
    for label, src in trees.items():
        variants[f"{label}: default"] = (src, [])
        variants[f"{label}: --language fr"] = (src, ["--language", "fr"])
        if not args.no_nodiarize:
            variants[f"{label}: --no-diarize"] = (src, ["--no-diarize"])
    for spec in args.variant or []:
        name, _, opts = spec.partition("=")
        variants[f"after: {name}"] = (args.after, opts.split())
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in variants}
    for rnd in range(args.rounds):
        for name, (src, extra) in list(variants.items()):
            ws = tmp / f"ws-{len(runs[name])}-{abs(hash(name))}"
            r, (t,) = fetch([str(wav)], ws, src, extra)
            r["stages"] = t["provenance"]["options"].get("stages") or {}
            r["turns"] = words_and_turns(t)
            r["words"] = sum(len(x[2]) for x in r["turns"])
            runs[name].append(r)
            print(f"  round {rnd + 1} {name}: {r['cpu_s']} CPU s, {r['wall_s']} wall s, "
                  f"load {r['load']}, {r['words']} words", file=sys.stderr)  # fmt: skip
            if args.bare and extra == ["--no-diarize"]:
                b = bare(wav, t, tmp)
                runs.setdefault(f"bare: {name}", []).append(b)
                print(f"  round {rnd + 1} bare batched, {b['stretches']} stretches as {name}: "
                      f"{b['cpu_s']} CPU s ({r['cpu_s'] / b['cpu_s']:.2f}x), load {b['load']}, "
                      f"{b['words_n']} words", file=sys.stderr)  # fmt: skip
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}; {machine()}; audio {secs:.0f} s")
    print(f"{'variant':28} {'CPU s':>14} {'wall s':>14} {'wall/CPU':>8} {'words':>6}  load")
    for name, rs in runs.items():
        cpu = "/".join(f"{r['cpu_s']:.1f}" for r in rs)
        wall = "/".join(f"{r['wall_s']:.1f}" for r in rs)
        ratio = "/".join(f"{r['wall_s'] / r['cpu_s']:.2f}" for r in rs)
        loads = " ".join(r["load"] for r in rs)
        n = rs[0].get("words", rs[0].get("words_n"))
        print(f"{name:28} {cpu:>14} {wall:>14} {ratio:>8} {n:6}  {loads}")
    for label in trees:
        base = runs.get(f"{label}: default")
        if base:
            same = all(r["turns"] == base[0]["turns"] for r in base)
            print(f"{label}: default runs give the same words and turns: {same}")
    if args.before:
        same = runs["after: default"][0]["turns"] == runs["before: default"][0]["turns"]
        print(f"default, before vs after: same words and turns: {same}")
    print("\nper step, CPU s / wall s (last round; side: on its own thread, with its pools)")
    names = [n for n in runs if not n.startswith("bare")]
    print(f"{'step':10} " + " ".join(f"{n[:22]:>22}" for n in names))
    seen = [s for s in STEPS if any(s in runs[n][-1]["stages"] for n in names)]
    seen += sorted({s for n in names for s in runs[n][-1]["stages"]} - set(seen))
    for step in seen:
        cells = []
        for n in names:
            v = runs[n][-1]["stages"].get(step)
            mark = "*" if v and v.get("side") else " "
            cells.append(f"{v['cpu_s']:9.1f} / {v['wall_s']:8.1f}{mark}" if v else f"{'-':>22}")
        print(f"{step:10} " + " ".join(f"{c:>22}" for c in cells))
    if args.json:
        print(json.dumps({k: [{**r, "turns": None} for r in v] for k, v in runs.items()}))


def bulk(args: argparse.Namespace, tmp: Path) -> None:
    """`fetch -a list.txt` over `args.bulk` clips against the sum of one `fetch` each."""
    clips = [str(SHARED / c) for c in MIXED if (SHARED / c).exists()][: args.bulk]
    listing = tmp / "list.txt"
    listing.write_text("\n".join(clips) + "\n", encoding="utf-8")
    print(f"bulk: {len(clips)} clips; {machine()}", file=sys.stderr)
    for rnd in range(args.rounds):
        walls, cpus, singles = [], [], []
        for i, c in enumerate(clips):
            r, ts = fetch([c], tmp / f"one-{rnd}-{i}", args.after, [])
            walls.append(r["wall_s"])
            cpus.append(r["cpu_s"])
            singles += [words_and_turns(t) for t in ts]
        r, ts = fetch(["-a", str(listing)], tmp / f"bulk-{rnd}", args.after, [])
        by_source = {t["recording"]["source"]: words_and_turns(t) for t in ts}
        same = [by_source.get(str(Path(c).resolve())) for c in clips] == singles
        share = r["wall_s"] / sum(walls)
        print(f"round {rnd + 1}: one by one {sum(walls):.1f} wall s ({sum(cpus):.1f} CPU s); "
              f"fetch -a {r['wall_s']:.1f} wall s ({r['cpu_s']:.1f} CPU s), load {r['load']}: "
              f"{share:.2f} of the sum; same words and turns: {same}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", metavar="SRC", help="another confindex source tree to compare")
    ap.add_argument("--after", metavar="SRC", help="a snapshot of this tree's src (default: it)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--variant", action="append", metavar="NAME=OPTIONS", help="more fetches")
    ap.add_argument("--no-nodiarize", action="store_true", help="leave out --no-diarize")
    ap.add_argument("--bulk", type=int, default=0, metavar="N", help="fetch -a of N clips")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--bare", action="store_true", help="bare faster-whisper after --no-diarize")
    ap.add_argument("--bare-worker", nargs=2, metavar=("AUDIO", "SPANS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.bare_worker:
        return bare_worker(*args.bare_worker)
    if not SHARED.exists():
        sys.exit(f"{SHARED} is missing: the benches need the real recordings")
    args.after = args.after or str(Path(__file__).resolve().parents[1] / "src")
    with tempfile.TemporaryDirectory(prefix="confindex-stages-") as tmp:
        (bulk if args.bulk else single)(args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
