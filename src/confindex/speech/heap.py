"""Keep the memory CTranslate2 frees, so that the next batch reuses it instead of the kernel
zeroing fresh pages.

Whisper's encoder on CPU allocates its attention scores afresh in every layer of every batch
(batch 8 × 8 heads × 1500² float32: 576 MB for base) and frees them at once. glibc hands
blocks that large to mmap and back to the kernel on free, and CTranslate2's worker thread has
its own arena, whose heaps also go back; every batch then page-faults its buffers in again:
3.0–3.4 million minor faults and 7.1–9.9 system CPU s for the 177-s French radio clip
(`fetch --no-diarize`), a fifth of the whole fetch's CPU. With one arena, no mmap and no
trimming, the same fetch faulted 0.26 million times for 2.0–3.2 system s: CPU −15 to −23 %,
wall −12 to −21 %; 18 min of audio −21 % CPU; a bulk run of 8 clips −11 %; the same words
(bench/heap.py, bench/README.md "glibc's heap"). The price: memory freed after the peak stays
with the process until it exits (the peak itself moved −7 to +4 %).

mallopt is read when arenas and blocks are made, so this is set before any thread starts
(Archive.fetch) and again, for library users who load a model themselves, at load_model.
glibc only; a user's own MALLOC_* or GLIBC_TUNABLES malloc settings win.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
from collections.abc import Mapping
from functools import cache

log = logging.getLogger("confindex")

# <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8

SETTINGS = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1))
_ENV = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")


def glibc() -> bool:
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def user_settings(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the user tuned glibc's allocator through the environment."""
    return any(k in env for k in _ENV) or "glibc.malloc." in env.get("GLIBC_TUNABLES", "")


@cache  # once per process (a second call from a racing thread sets the same values again)
def keep_freed_memory() -> bool:
    """Set glibc's allocator to keep freed memory; whether it is set."""
    if not glibc() or user_settings():
        return False
    try:
        libc = ctypes.CDLL(None)
        ok = all(libc.mallopt(param, value) == 1 for param, value in SETTINGS)
    except (OSError, AttributeError):  # a libc without mallopt: nothing to tune
        return False
    log.debug("glibc's heap keeps freed memory (one arena, no mmap, no trim): %s", ok)
    return ok
