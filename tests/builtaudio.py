"""Audio built for tests and benches: sounds that make Whisper invent text (issue 14).

Shared by tests/test_quality.py and bench/quality.py so the bench measures the very cases the
tests assert on.
"""

from __future__ import annotations

import numpy as np

SR = 16000


def tones(seconds: float, seed: int = 0) -> np.ndarray:
    """Music-like tones: a melody of plucked major chords (3 harmonics each) on a C-major scale,
    notes of 0.25–0.75 s with a fast attack and an exponential decay."""
    rng = np.random.default_rng(seed)
    scale = 220.0 * 2 ** (np.array([0, 2, 4, 5, 7, 9, 11, 12]) / 12)
    notes, n = [], 0
    while n < seconds * SR:
        k = int(float(rng.choice([0.25, 0.5, 0.75])) * SR)
        tt = np.arange(k) / SR
        f = float(rng.choice(scale))
        chord = sum(
            np.sin(2 * np.pi * f * m * h * tt) / h for m in (1, 1.26, 1.5) for h in (1, 2, 3)
        )
        notes.append((0.08 * chord * np.minimum(1, tt / 0.02) * np.exp(-3 * tt)).astype(np.float32))
        n += k
    return np.concatenate(notes)[: int(seconds * SR)]


def babble(jfk: np.ndarray, fr: np.ndarray, seconds: float, seed: int = 0) -> np.ndarray:
    """Speech-like noise with no words: 8 real clips (JFK, picovoice French), reversed or
    shifted, mixed quietly."""
    rng = np.random.default_rng(seed)
    rng.standard_normal(20 * SR)  # the draws the calibration run (bench/quality.py) made first
    src = [jfk[::-1], fr[::-1], jfk, fr]
    n = int(seconds * SR)
    out = np.zeros(n, np.float32)
    for i in range(8):
        s = src[i % 4]
        off = int(rng.integers(0, n - len(s)))
        out[off : off + len(s)] += 0.5 * s
    return 0.5 * out
