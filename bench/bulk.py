"""Bulk-run benchmark: realtime factor of `fetch` with download/transcription pipelining on vs off.

Builds N clips (default 10 × 62 s ≈ 10 min) by looping the real recordings in ../shared/data,
serves them on 127.0.0.1 over HTTP, and runs the real bulk runner (yt-dlp, Whisper, index) twice
in fresh workspaces with the same loaded model:

    off: --download-workers 0   (download, then transcribe, one recording at a time)
    on:  --download-workers 1   (the next download overlaps the current transcription)

`--limit-rate` throttles yt-dlp (default 300K/s), standing in for a real site: over bare
loopback a download takes milliseconds and there is nothing to overlap. Use `--limit-rate 0`
to measure the pipelining overhead alone.

    python bench/bulk.py [--clips 10] [--clip-seconds 62] [--limit-rate 300K] [--beam-size 5]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
SOURCES = ["en/jfk.flac", "fr/picovoice_test_fr.wav", "diar/pyannote_sample.wav"]


def build_clips(folder: Path, n: int, seconds: float) -> list[Path]:
    """n FLAC clips of `seconds` each, every one a different arrangement of the real clips."""
    import av
    from faster_whisper.audio import decode_audio

    pieces = [decode_audio(str(DATA / s), 16000) for s in SOURCES if (DATA / s).exists()]
    if not pieces:
        sys.exit(f"no recordings under {DATA}")
    gap = np.zeros(8000, dtype=np.float32)  # 0.5 s of silence between pieces
    loop = np.concatenate([x for p in pieces for x in (p, gap)])
    need = int(seconds * 16000)
    out = []
    for i in range(n):
        # Each clip starts at another point of the loop and has its own gain, so that no two
        # are byte-identical (the bulk runner would rightly skip them as duplicates).
        start = int(i * 7.3 * 16000) % loop.size
        reps = (start + need) // loop.size + 1
        samples = np.tile(loop, reps)[start : start + need] * (0.9 - 0.02 * i)
        path = folder / f"talk-{i:02d}.flac"
        pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)[None, :]
        with av.open(str(path), "w", format="flac") as c:
            stream = c.add_stream("flac", rate=16000)
            stream.layout = "mono"
            frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            frame.sample_rate = 16000
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                c.mux(packet)
        out.append(path)
    return out


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address) -> None:
            pass  # yt-dlp closes its probe requests early: broken pipes are expected

    server = Server(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=10)
    ap.add_argument("--clip-seconds", type=float, default=62.0)
    ap.add_argument("--limit-rate", default="300K", help="yt-dlp rate limit; 0 = none")
    ap.add_argument("--beam-size", type=int, default=5)
    ap.add_argument("--diarize", action="store_true", help="Also diarize (slower).")
    ap.add_argument("--order", default="off,on", help="Which modes to run, in this order.")
    args = ap.parse_args()

    from yt_dlp.utils import parse_bytes

    from confindex.run.bulk import BulkOptions, BulkRunner
    from confindex.run.inputs import url_item
    from confindex.run.pipeline import FetchOptions, Transcriber
    from confindex.speech.asr import AsrOptions
    from confindex.store.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="confindex-bench-bulk-") as tmp:
        root = Path(tmp)
        (root / "www").mkdir()
        t0 = time.perf_counter()
        clips = build_clips(root / "www", args.clips, args.clip_seconds)
        size = sum(p.stat().st_size for p in clips)
        audio = args.clips * args.clip_seconds
        print(
            f"{len(clips)} clips, {audio / 60:.1f} min of audio, {size / 1e6:.1f} MB "
            f"(built in {time.perf_counter() - t0:.1f} s); limit-rate {args.limit_rate}",
            flush=True,
        )
        server, base = serve(root / "www")
        options = FetchOptions(
            asr=AsrOptions(beam_size=args.beam_size), diarize=args.diarize, device="cpu"
        )
        transcriber = Transcriber(options)
        t0 = time.perf_counter()
        model = transcriber.model  # loaded once, outside both timings
        name = model.describe().model
        print(f"model {name} loaded in {time.perf_counter() - t0:.1f} s", flush=True)
        rate = parse_bytes(args.limit_rate) if args.limit_rate not in ("0", "") else None
        extra = {"ratelimit": rate} if rate else {}
        results = {}
        for mode in args.order.split(","):
            ws = Workspace(root / f"ws-{mode}")
            items = [url_item(f"{base}/{p.name}") for p in clips]
            bulk = BulkOptions(download_workers=1 if mode == "on" else 0, ydl_extra=extra)
            summary = BulkRunner(ws, options, bulk, transcriber=transcriber).run(items)
            d = summary.to_dict()
            results[mode] = d
            print(
                f"pipelining {mode:>3}: {d['done']} done, {d['failed']} failed, "
                f"{d['audio_seconds']:.0f} s of audio in {d['wall_seconds']:.1f} s wall → "
                f"{d['realtime_factor']}× realtime",
                flush=True,
            )
            if d["failed"] or d["done"] != len(clips):
                sys.exit(f"bench run {mode} did not finish every clip: {d}")
        server.shutdown()
        if "on" in results and "off" in results:
            on, off = results["on"]["realtime_factor"], results["off"]["realtime_factor"]
            print(f"overall realtime factor: pipelining on {on}×, off {off}× ({on / off:.2f}×)")
        print(json.dumps({"bench": "bulk", "args": vars(args), "results": results}))


if __name__ == "__main__":
    main()
