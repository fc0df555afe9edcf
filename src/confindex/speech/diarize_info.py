"""The provenance of a diarization: engine, models and their hashes, options (no model is
loaded). Split from diarize.py, which calls it from `describe`."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any


@functools.lru_cache(maxsize=8)
def _sha256(path: str, mtime_ns: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def describe(options: Any) -> dict[str, Any]:
    """What produced a diarization with `options` (a diarize.DiarizeOptions), for the
    transcript's provenance (no model is loaded)."""
    from importlib.metadata import PackageNotFoundError, version

    seg, emb = options.model_paths()
    try:
        engine_version = version("sherpa-onnx")
    except PackageNotFoundError:
        engine_version = None
    return {
        "engine": "sherpa-onnx",
        "engine_version": engine_version,
        "segmentation": seg.name if options.model_dir is None else str(seg),
        "embedding": emb.name if options.model_dir is None else str(emb),
        "segmentation_sha256": _sha256(str(seg), seg.stat().st_mtime_ns),
        "embedding_sha256": _sha256(str(emb), emb.stat().st_mtime_ns),
        "num_speakers": options.num_speakers,
        "min_speakers": options.min_speakers,
        "max_speakers": options.max_speakers,
        "threshold": options.threshold,
        "window_shift": options.window_shift,
        # issue 29: overlapped speech from the segmentation frames (speech/overlap.py)
        "overlap": options.overlap,
    }
