"""Corrections (issue 27): the cost of timing an edited turn, and of an edit becoming searchable.

    python bench/edits.py --align        # forced alignment of 30-s stretches of the radio clip
    python bench/edits.py --searchable   # edit -> search on a 1,000-recording workspace

--align: the silver words of 30-s stretches of ../shared/data/fr/radiofrance_smartphone.mp3
are aligned with the embedded base model (loaded once, not counted), variants interleaved:
*one window* (the whole stretch in one encoder pass), *two windows* (window 16 s: the path a
stretch longer than 30 s takes), *edit path* (decode_stretch with PyAV seeking + one window).
CPU s = process time of the alignment alone; error = mean |start - silver start|.

--searchable: N synthetic recordings of T turns (French words), indexed once; then each rep
edits one recording through `Archive.edit` (no media: estimated times; version check, history
copy, transcript, exports, index update) and runs the search that must find the new word and
not the old one. Variants interleaved: *index.add only* (re-indexing one recording) and
*edit -> searchable* (the whole path a user waits for).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RADIO = DATA / "fr" / "radiofrance_smartphone.mp3"


def _timed(fn):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - w0


def bench_align(reps: int) -> None:
    from confindex.speech import align
    from confindex.speech.asr import load_model
    from confindex.speech.audio import decode

    silver = json.loads(RADIO.with_suffix(".silver.words.json").read_text(encoding="utf-8"))
    samples = decode(RADIO)
    fn = align.whisper_alignment(load_model(None))
    stretches = [(s, s + 30.0) for s in (5.0, 60.0, 120.0)]

    def run(variant: str, a: float, b: float):
        words = [w for w in silver if a <= w["start"] and w["end"] <= b]
        texts = [w["text"] for w in words]
        if variant == "edit path":
            piece = align.decode_stretch(RADIO, a, b)
            timed = align.align_words(fn, piece, texts, "fr")
        else:
            piece = samples[int(a * 16000) : int(b * 16000)]
            window = 30.0 if variant == "one window" else 16.0
            timed = align.align_words(fn, piece, texts, "fr", window=window)
        err = [abs(a + x.start - w["start"]) for x, w in zip(timed, words, strict=True)]
        return len(words), statistics.mean(err), max(err)

    fn(samples[:16000], ["warm"], "fr")  # first call pays one-off set-up
    rows: dict[str, list] = {}
    for _ in range(reps):
        for a, b in stretches:
            for variant in ("one window", "two windows", "edit path"):
                (n, mean, worst), cpu, wall = _timed(lambda v=variant, a=a, b=b: run(v, a, b))
                rows.setdefault(variant, []).append((n, mean, worst, cpu, wall))
    print(f"load average {os.getloadavg()[0]:.1f}; {reps} reps x {len(stretches)} stretches")
    print("| variant | words | CPU s (median, max) | wall s (median) | mean err s | max err s |")
    print("|---|---|---|---|---|---|")
    for v, xs in rows.items():
        cpus = [x[3] for x in xs]
        print(
            f"| {v} | {statistics.mean(x[0] for x in xs):.0f} | {statistics.median(cpus):.2f}, "
            f"{max(cpus):.2f} | {statistics.median(x[4] for x in xs):.2f} | "
            f"{statistics.mean(x[1] for x in xs):.3f} | {max(x[2] for x in xs):.2f} |"
        )


def bench_searchable(n: int, turns: int, reps: int) -> None:
    from confindex.api import Archive
    from confindex.search import hits as search_api
    from confindex.search import index as search_index
    from confindex.store import transcript as store
    from confindex.store.transcript import Provenance, Recording, Transcript, Turn, Word
    from confindex.store.workspace import Workspace

    rng = random.Random(7)
    vocab = [
        "le",
        "smartphone",
        "objet",
        "rapport",
        "inédit",
        "dépendance",
        "rejet",
        "téléphone",
        "voiture",
        "écran",
    ]
    root = Path(tempfile.mkdtemp(prefix="bench-edits-"))
    ws = Workspace(root).ensure()
    (root / "confindex.toml").write_text('[export]\nformats = ["srt"]\n')
    ts = []
    for i in range(n):
        tn = []
        for k in range(turns):
            ws_ = [Word(k * 10 + j * 0.4, k * 10 + j * 0.4 + 0.3, " " + rng.choice(vocab))
                   for j in range(20)]  # fmt: skip
            tn.append(Turn(k, ws_[0].start, ws_[-1].end, f"SPEAKER_0{k % 3}",
                           " ".join(w.text.strip() for w in ws_), "fr", ws_))  # fmt: skip
        t = Transcript(Recording(f"rec-{i:04d}", f"Talk {i}", f"/data/{i}.mp3", kind="file"),
                       Provenance("bench"), "fr", turns * 10.0, turns=tn)  # fmt: skip
        store.save(ws, t)
        ts.append(t)
    (_, cpu, wall) = _timed(lambda: search_index.rebuild(ws))
    print(f"{n} recordings x {turns} turns indexed in {wall:.1f} s wall ({cpu:.1f} CPU s)")
    archive = Archive(root)
    rows: dict[str, list] = {"index.add only": [], "edit -> searchable": []}
    for r in range(reps):
        rid = f"rec-{rng.randrange(n):04d}"
        t = store.load(ws, rid)
        (_, cpu, wall) = _timed(lambda t=t: search_index.add(ws, [t]))
        rows["index.add only"].append((cpu, wall))
        new = f"correction{r}"

        def edit_then_search(rid=rid, new=new):
            archive.edit(rid, "10.0-10.5", new, align=False)
            res = search_api.search(ws, new, limit=5)
            assert [h.recording_id for h in res.hits] == [rid], res.hits

        (_, cpu, wall) = _timed(edit_then_search)
        rows["edit -> searchable"].append((cpu, wall))
    print(f"load average {os.getloadavg()[0]:.1f}; {reps} reps")
    print("| variant | CPU s (median, max) | wall s (median, max) |")
    print("|---|---|---|")
    for v, xs in rows.items():
        c, w = [x[0] for x in xs], [x[1] for x in xs]
        print(f"| {v} | {statistics.median(c):.3f}, {max(c):.3f} | "
              f"{statistics.median(w):.3f}, {max(w):.3f} |")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--align", action="store_true")
    p.add_argument("--searchable", action="store_true")
    p.add_argument("--recordings", type=int, default=1000)
    p.add_argument("--turns", type=int, default=20)
    p.add_argument("--reps", type=int, default=3)
    a = p.parse_args()
    if not (a.align or a.searchable):
        p.error("give --align and/or --searchable")
    if a.align:
        bench_align(a.reps)
    if a.searchable:
        bench_searchable(a.recordings, a.turns, max(a.reps, 5))


if __name__ == "__main__":
    main()
