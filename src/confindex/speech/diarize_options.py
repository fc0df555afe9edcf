"""How to diarize (`DiarizeOptions`) and its one-line error, apart from diarize.py so that the
sherpa-onnx pass (sherpa_pass.py, run in a child process beside other work) needs no more."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from confindex.errors import ConfindexError

MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "diarization"
# File names looked up in DiarizeOptions.model_dir (any sherpa-onnx compatible pair works:
# a pyannote segmentation model, and a 3D-Speaker / WeSpeaker / NeMo embedding model).
SEGMENTATION_FILE = "segmentation.onnx"
EMBEDDING_FILE = "embedding.onnx"
MAX_EMBED_WORKERS = 4


class DiarizationError(ConfindexError):
    """Bad diarization options or models; the message is one line."""


@dataclass(frozen=True)
class DiarizeOptions:
    """How to diarize. Give `num_speakers` when known, else optionally a [min, max] range.

    `threshold` is the cosine distance under which two voices are merged into one speaker:
    lower finds more speakers. `model_dir` is a folder holding `segmentation.onnx` and
    `embedding.onnx` (sherpa-onnx models with their metadata) to use instead of the shipped ones.
    """

    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    # Tuned with window_shift 0.3 (models/diarization/README.md): 0.40-0.55 all find the two
    # speakers of the pyannote sample with the same DER; this is the middle of that band.
    threshold: float = 0.475
    model_dir: Path | None = None
    # None: one thread. ONNX Runtime's worker threads spin while they wait, so 2 threads cost
    # twice the CPU (measured 0.26 vs 0.11 CPU s per audio s) for little gain in wall time,
    # and fetch's Whisper already keeps the cores busy.
    num_threads: int | None = None
    # Re-reading and voiceprints embed many short windows, each an independent CAM++ run that
    # releases the GIL: up to this many run at once (None: one per available core, at most 4).
    # Same embeddings to the last digit, same CPU, less wall time (2-core Intel Xeon): 300
    # windows took 6.5 s one at a time and 3.2 s two at a time; diarizing the 10-min bench
    # file 47.6 -> 37.3 s wall at 47 CPU s (bench/README.md, 2026-12-06 morning).
    embed_workers: int | None = None
    min_duration_on: float = 0.3  # drop speech shorter than this (s)
    min_duration_off: float = 0.5  # bridge same-speaker gaps shorter than this (s)
    # Segmentation windows (10 s) advance by this fraction of a window; segmentation and
    # embedding cost are both inversely proportional to it: 0.3 costs 0.04-0.05 CPU s per
    # audio s, 0.1 costs 0.11-0.13. The clustering threshold must be tuned with it (at 0.25 and
    # threshold 0.5, the two pyannote speakers merge).
    window_shift: float = 0.3
    # Over-counting (issue 13): after sherpa-onnx's clustering, clusters with less speech than
    # `min_cluster_speech` s fold into the most similar large cluster (pyannote's
    # min_cluster_size idea) when their voices are at least `fold_similarity` alike (cosine),
    # then every long turn is re-read in `reseg_window` s windows every `reseg_step` s, and a
    # window moves to another speaker when its voice is closer to that speaker's by more than
    # `reseg_margin`. Measured on the three real multi-speaker clips (bench/speakers.py):
    # ami_dev01 4 -> 2 speakers (2 true), DER 0.364 -> 0.167; ami_dev00 0.272 -> 0.194;
    # pyannote sample 0.017 -> 0.017. Margin 0 gave 0.154 / 0.131 but 0.031 on the pyannote
    # sample; 1.0 s windows 0.138 / 0.187 / 0.062. Off when num_speakers is given (kept exact).
    refine: bool = True
    min_cluster_speech: float = 2.0
    # The folded clusters measured were 0.3-0.4 s long and 0.48-0.49 alike to their nearest
    # cluster: too short for a reliable voice, so the bar is low; a real second voice of
    # >= 2 s is never folded.
    fold_similarity: float = 0.3
    # Counts (issue 29): a small cluster of >= `keep_speech` s less than `keep_distinct` alike
    # to every large one is a person who speaks little, kept: trn00-03 finds its 3rd person;
    # 1.0 s gave trn07 a fragment (bench/README.md, "Speakers on every shared meeting").
    keep_speech: float = 1.4
    keep_distinct: float = 0.6
    reseg_window: float = 1.5
    reseg_step: float = 0.5
    reseg_margin: float = 0.03
    # Two speakers at once (issue 29, speech/overlap.py: speech_threshold None, it added false
    # alarm; overlap_nearest: see overlap.reconcile). overlap=False: one speaker per moment.
    overlap: bool = True
    overlap_step: float = 0.5
    overlap_threshold: float = 0.2
    overlap_nearest: float | None = 0.3
    speech_threshold: float | None = None

    def validate(self) -> None:
        """Raise DiarizationError with a one-line message for impossible options."""
        for flag, value in (
            ("--num-speakers", self.num_speakers),
            ("--min-speakers", self.min_speakers),
            ("--max-speakers", self.max_speakers),
        ):
            if value is not None and value < 1:
                raise DiarizationError(f"{flag} must be at least 1 (got {value})")
        if self.num_speakers is not None and (
            self.min_speakers is not None or self.max_speakers is not None
        ):
            raise DiarizationError("give either --num-speakers or --min/--max-speakers, not both")
        if (
            self.min_speakers is not None
            and self.max_speakers is not None
            and self.min_speakers > self.max_speakers
        ):
            raise DiarizationError(
                f"--min-speakers ({self.min_speakers}) is greater than "
                f"--max-speakers ({self.max_speakers})"
            )
        if not 0 < self.threshold < 2:
            raise DiarizationError(
                f"diarization threshold must be between 0 and 2 (got {self.threshold})"
            )
        if not 0 < self.window_shift <= 1:
            raise DiarizationError(f"window_shift must be in (0, 1] (got {self.window_shift})")
        if self.num_threads is not None and self.num_threads < 1:
            raise DiarizationError(f"num_threads must be at least 1 (got {self.num_threads})")
        if self.embed_workers is not None and self.embed_workers < 1:
            raise DiarizationError(f"embed_workers must be at least 1 (got {self.embed_workers})")

    def model_paths(self) -> tuple[Path, Path]:
        """(segmentation, embedding) model files; DiarizationError if one is missing."""
        folder = Path(self.model_dir).expanduser() if self.model_dir else MODEL_DIR
        paths = (folder / SEGMENTATION_FILE, folder / EMBEDDING_FILE)
        for p in paths:
            if not p.is_file():
                raise DiarizationError(
                    f"diarization model {p} not found (a model folder needs "
                    f"{SEGMENTATION_FILE} and {EMBEDDING_FILE})"
                )
        return paths

    def threads(self) -> int:
        return self.num_threads or 1

    def workers(self) -> int:
        """How many embeddings run at once (see `embed_workers`)."""
        if self.embed_workers is not None:
            return self.embed_workers
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        return max(1, min(cores, MAX_EMBED_WORKERS))
