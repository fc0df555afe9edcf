"""Overlapped speech and missed speech, from the segmentation model's own frames (issue 29).

sherpa-onnx's pipeline runs pyannote segmentation-3.0 (a powerset model: for each ~17 ms frame
of a 10 s window, the probability of no speaker, of each of three local speakers alone, and of
each pair) but keeps one speaker per moment. Here the same ONNX model runs again through
onnxruntime, and its frames are read back onto the pipeline's answer:

- where the model hears two people (pair classes, averaged over the windows covering a frame,
  above `overlap_threshold`), a second speaker is added: the global speaker that the frame's
  other local speaker stands for in that window (each local speaker of a window maps to the
  global speaker the pipeline gave most of the frames where it spoke alone);
- where the model hears speech (1 - P(no speaker) above `speech_threshold`) and the pipeline
  gave nobody (its argmax and minimum durations drop quiet or short speech), the frame's
  most likely mapped speaker is added.

Nothing the pipeline said is removed. The pure parts (`reconcile`) take arrays; `segment`
loads and runs the model. onnxruntime is imported inside functions only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from confindex.store.transcript import SpeakerSegment

SAMPLE_RATE = 16000
WINDOW = 160_000  # samples per segmentation window (10 s; model metadata window_size)
FRAME_SHIFT = 270  # samples between output frames (receptive_field_shift)
FRAME_OFFSET = 991 / 2  # samples from a window's start to its first frame's centre
# Powerset classes of segmentation-3.0 (3 speakers, at most 2 at once): {}, {0}, {1}, {2},
# {0,1}, {0,2}, {1,2}.
CLASSES = ((), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2))
# MEMBER[c, k]: whether class c contains local speaker k.
MEMBER = np.array([[k in c for k in range(3)] for c in CLASSES], dtype=np.float64)
PAIR = np.array([len(c) == 2 for c in CLASSES])

_SESSIONS: dict[tuple[str, int], Any] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Frames:
    """The segmentation model's output: window start samples and, per window, the class
    probabilities of each frame (frames x 7)."""

    starts: list[int]
    probs: list[np.ndarray]


def _session(model: Path, threads: int) -> Any:
    import onnxruntime as ort

    key = (str(Path(model).resolve()), threads)
    with _LOCK:
        sess = _SESSIONS.get(key)
        if sess is None:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
            _SESSIONS[key] = sess
    return sess


def window_starts(n_samples: int, step: float) -> list[int]:
    """Start samples of 10 s windows every `step` windows, the last one ending at the end."""
    hop = max(1, int(WINDOW * step))
    starts = list(range(0, max(1, n_samples - WINDOW + 1), hop))
    if n_samples > WINDOW and starts[-1] + WINDOW < n_samples:
        starts.append(n_samples - WINDOW)
    return starts


def segment(audio: np.ndarray, model: Path, step: float, threads: int = 1) -> Frames:
    """Run the segmentation model on `audio` (16 kHz mono float32) in windows every `step`."""
    sess = _session(model, threads)
    name = sess.get_inputs()[0].name
    starts = window_starts(audio.size, step)
    probs = []
    for s in starts:
        x = audio[s : s + WINDOW]
        if x.size < WINDOW:
            x = np.pad(x, (0, WINDOW - x.size))
        y = sess.run(None, {name: x[None, None, :].astype(np.float32, copy=False)})[0][0]
        probs.append(np.exp(y.astype(np.float64)))  # the model outputs log-probabilities
    return Frames(starts, probs)


def _frame_times(n: int) -> np.ndarray:
    return (np.arange(n) * FRAME_SHIFT + FRAME_OFFSET) / SAMPLE_RATE


def _activity(segments: list[SpeakerSegment], labels: list[str], n: int) -> np.ndarray:
    """activity[frame, label] of the global frame grid, from segments."""
    t = _frame_times(n)
    act = np.zeros((n, len(labels)), dtype=bool)
    index = {lab: i for i, lab in enumerate(labels)}
    for s in segments:
        a, b = np.searchsorted(t, [s.start, s.end])
        act[a:b, index[s.speaker]] = True
    return act


def reconcile(
    segments: list[SpeakerSegment],
    frames: Frames,
    n_samples: int,
    overlap_threshold: float,
    speech_threshold: float | None,
    min_added: float = 0.1,
    nearest_threshold: float | None = None,
) -> list[SpeakerSegment]:
    """`segments` (one speaker per moment) with the second speakers of overlapped frames and
    the speakers of missed speech added (see the module docstring). Pure.

    `nearest_threshold`: where the pair classes score above it but no mapped local speaker
    gives a second speaker (the other voice never speaks alone long enough in the window to
    map it), the other speaker whose own speech is nearest in time is added: in a meeting the
    voice heard over a speaker is most often the one who just spoke or speaks next. On the
    shared AMI clips (bench/speakers.py --meetings) 0.3 took the mean DER 0.264 -> 0.251
    (ami_trn08 0.392 -> 0.301: 3.4 s of its overlap had no mapped second speaker), no clip
    worse, and helped at every window step tried (0.1-1.0); 0.2 added 0.19 s of false alarm
    on ami_dev00. Adding a wrong speaker where two people talk costs nothing more (a missed
    second speaker becomes a confused one); it costs only where one person talks."""
    labels = sorted({s.speaker for s in segments})
    if not labels or not frames.starts:
        return segments
    n = int(np.ceil(n_samples / FRAME_SHIFT))
    hyp = _activity(segments, labels, n)
    score = np.zeros((n, len(labels)))  # summed local-speaker probability mapped to a label
    pair = np.zeros(n)
    speech = np.zeros(n)
    cover = np.zeros(n)
    for start, p in zip(frames.starts, frames.probs, strict=True):
        i0 = round(start / FRAME_SHIFT)
        k = min(p.shape[0], n - i0)
        if k <= 0:
            continue
        p = p[:k]
        local = p @ MEMBER  # marginal probability of each local speaker (frames x 3)
        alone = np.zeros_like(local, dtype=bool)
        best = p.argmax(axis=1)
        for c in (1, 2, 3):
            alone[:, c - 1] = best == c
        h = hyp[i0 : i0 + k]
        for j in range(3):
            votes = h[alone[:, j]].sum(axis=0)
            # A local speaker stands for a global one when most of its lone frames (at least
            # 0.2 s of them) are that speaker's.
            if votes.size and votes.max() >= 12 and votes.max() >= 0.5 * alone[:, j].sum():
                score[i0 : i0 + k, int(votes.argmax())] += local[:, j]
        pair[i0 : i0 + k] += p[:, PAIR].sum(axis=1)
        speech[i0 : i0 + k] += 1.0 - p[:, 0]
        cover[i0 : i0 + k] += 1.0
    cover = np.maximum(cover, 1.0)
    pair /= cover
    speech /= cover
    out = hyp.copy()
    want = np.where(pair > overlap_threshold, 2, 0)
    if speech_threshold is not None:
        want = np.maximum(want, np.where(speech > speech_threshold, 1, 0))
    for f in np.nonzero(want > hyp.sum(axis=1))[0]:
        order = np.argsort(-score[f])
        for lab in order:
            if out[f].sum() >= want[f]:
                break
            if score[f, lab] > 0 and not out[f, lab]:
                out[f, lab] = True
    if nearest_threshold is not None and len(labels) > 1:
        short = np.nonzero((pair > nearest_threshold) & (out.sum(axis=1) == 1))[0]
        if short.size:
            dist = _distance(hyp, short)
            dist[out[short]] = np.inf
            ok = np.isfinite(dist.min(axis=1))
            out[short[ok], dist[ok].argmin(axis=1)] = True
    added = out & ~hyp
    # Added pieces shorter than min_added s are noise.
    min_frames = round(min_added * SAMPLE_RATE / FRAME_SHIFT)
    t = _frame_times(n)
    half = FRAME_SHIFT / SAMPLE_RATE / 2
    result = list(segments)
    for j, lab in enumerate(labels):
        col = added[:, j].astype(np.int8)
        edges = np.diff(np.concatenate([[0], col, [0]]))
        for a, b in zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0], strict=True):
            if b - a >= min_frames:
                result.append(
                    SpeakerSegment(
                        float(t[a] - half),
                        float(min(t[b - 1] + half, n_samples / SAMPLE_RATE)),
                        lab,
                    )
                )
    return merge_same(result)


def _distance(act: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """dist[i, j]: frames from frames[i] to the nearest active frame of label j (inf: none)."""
    dist = np.full((frames.size, act.shape[1]), np.inf)
    for j in range(act.shape[1]):
        on = np.nonzero(act[:, j])[0]
        if on.size:
            pos = np.searchsorted(on, frames)
            left = on[np.clip(pos - 1, 0, on.size - 1)]
            right = on[np.clip(pos, 0, on.size - 1)]
            dist[:, j] = np.minimum(np.abs(frames - left), np.abs(right - frames))
    return dist


def add_overlap(
    segments: list[SpeakerSegment], audio: np.ndarray, options: Any, frames: Frames | None = None
) -> list[SpeakerSegment]:
    """`reconcile` with the frames of `audio` (`frames`: `segment`'s, when found already), as
    `options` (a DiarizeOptions) say."""
    if frames is None:
        seg, _ = options.model_paths()
        frames = segment(audio, seg, options.overlap_step, options.threads())
    return reconcile(
        segments,
        frames,
        audio.size,
        options.overlap_threshold,
        options.speech_threshold,
        nearest_threshold=options.overlap_nearest,
    )


def merge_same(segments: list[SpeakerSegment], gap: float = 0.0) -> list[SpeakerSegment]:
    """Each speaker's touching or overlapping segments (or ones `gap` s apart) as one, sorted."""
    by: dict[str, list[tuple[float, float]]] = {}
    for s in segments:
        by.setdefault(s.speaker, []).append((s.start, s.end))
    out = []
    for lab, spans in by.items():
        spans.sort()
        cur = list(spans[0])
        for a, b in spans[1:]:
            if a <= cur[1] + gap + 1e-9:
                cur[1] = max(cur[1], b)
            else:
                out.append(SpeakerSegment(cur[0], cur[1], lab))
                cur = [a, b]
        out.append(SpeakerSegment(cur[0], cur[1], lab))
    return sorted(out, key=lambda s: (s.start, s.end, s.speaker))
