"""What chapters cost beside `fetch` (issue 32: ≤ 3% of the default fetch's CPU).

One real-speech file built from ../shared/data clips (bench/transcription.py's `build_audio`:
AMI meetings, a phone call, French radio, JFK, French and Russian read sentences), fetched once
with the real `confindex fetch` CLI (its defaults; chapters are computed inside it, at
publish). Then the chapters of the transcript it made are computed again, alone, each run in
its own process (CPU = user + system from os.wait4, the embedder's model load and the imports
included), `--rounds` times; the median is compared with the whole fetch.

    python bench/chapters.py                 # 10-min file
    python bench/chapters.py --minutes 5 --rounds 3
    python bench/chapters.py --transcript ws/transcripts/ID.json   # chapters only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transcription import build_audio, run_child


def chapters_worker(path: str) -> None:
    """In a child: compute the transcript's chapters; what each step cost (CPU s, in-process)."""
    import time

    t0 = time.process_time()
    from confindex.search import topics
    from confindex.store.transcript import load_path

    t = load_path(Path(path))
    t1 = time.process_time()
    sents = topics.units(t)
    vectors = topics.embed_texts([s.text for s in sents])  # the vector store's, shared
    t2 = time.process_time()
    starts = topics.passages(sents)
    grouped = topics.group_vectors(sents, starts, vectors)
    duration = max(t.duration, sents[-1].end) if sents else t.duration
    chapters = topics.split(
        sents, topics.boundaries(sents, starts, grouped, duration=duration), duration
    )
    t3 = time.process_time()
    out = {
        "sentences": len(sents),
        "passages": len(starts),
        "words": sum(len(s.text.split()) for s in sents),
        "chapters": len(chapters),
        "import_load_cpu_s": round(t1 - t0, 2),
        "passages_embed_cpu_s": round(t2 - t1, 2),
        "split_keywords_cpu_s": round(t3 - t2, 2),
        "starts": [c.start for c in chapters],
        "titles": [c.title for c in chapters],
    }
    print(json.dumps(out, ensure_ascii=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--transcript", help="skip the fetch: chapters of this transcript only")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        chapters_worker(args.worker)
        return
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    fetched: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="bench-chapters-") as tmp:
        if args.transcript:
            transcript = Path(args.transcript)
        else:
            audio = Path(tmp) / "talk.wav"
            seconds = build_audio(audio, args.minutes * 60)
            ws = Path(tmp) / "ws"
            cmd = [sys.executable, "-m", "confindex", "fetch", str(audio), "-w", str(ws)]
            fetched = run_child(cmd, env)
            fetched["audio_s"] = round(seconds, 1)
            (transcript,) = (ws / "transcripts").glob("*.json")
            print(f"fetch: {json.dumps(fetched)}", flush=True)
        rounds = []
        for _ in range(args.rounds):
            cmd = [sys.executable, __file__, "--worker", str(transcript)]
            rounds.append(run_child(cmd, env))
            print(f"chapters: {json.dumps(rounds[-1], ensure_ascii=False)}", flush=True)
        cpu = statistics.median(r["cpu_s"] for r in rounds)
        wall = statistics.median(r["wall_s"] for r in rounds)
        last = rounds[-1]
        print(
            f"\nchapters of {last['words']} words ({last['passages']} passages): "
            f"{last['chapters']} chapters, {cpu:.2f} CPU s / {wall:.2f} s wall (median of "
            f"{len(rounds)}, process with imports and model load; in-process: load "
            f"{last['import_load_cpu_s']}, passages + embedding (shared with the vector store) "
            f"{last['passages_embed_cpu_s']}, boundaries + keywords "
            f"{last['split_keywords_cpu_s']} CPU s)"
        )
        if fetched:
            share = 100 * cpu / fetched["cpu_s"]
            print(
                f"fetch of {fetched['audio_s']:.0f} s of audio: {fetched['cpu_s']:.1f} CPU s, "
                f"{fetched['wall_s']:.0f} s wall (load {fetched['load']}); "
                f"chapters = {share:.1f}% of fetch CPU"
            )


if __name__ == "__main__":
    main()
