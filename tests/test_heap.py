"""speech/heap.py: glibc keeps the memory a thread frees, so the next block of that size is not
page-faulted in again (the decoder's per-layer attention scores: see heap.py's docstring).

Each case runs in a fresh interpreter: mallopt settings last for the process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from confindex.speech import heap

pytestmark = pytest.mark.skipif(not heap.glibc(), reason="glibc only")

# A worker thread allocates, fills and frees 64 MB ten times, as CTranslate2's thread does with
# its attention scores; the minor page faults of rounds 2-10 are counted.
PROBE = r"""
import ctypes, json, resource, sys, threading
from confindex.speech import heap

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
SIZE = 64 * 1024 * 1024

kept = heap.keep_freed_memory() if sys.argv[1] == "keep" else None
faults = []

def work():
    for i in range(10):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = libc.malloc(SIZE)  # not numpy: it asks for huge pages, C++ code does not
        ctypes.memset(block, 1, SIZE)
        libc.free(block)
        if i:
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)

t = threading.Thread(target=work)
t.start()
t.join()
print(json.dumps({"kept": kept, "faults": sum(faults)}))
"""


def probe(mode: str, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not heap.user_settings({k: v})}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def test_freed_memory_is_reused_without_page_faults():
    plain = probe("plain")
    kept = probe("keep")
    assert kept["kept"] is True
    # 9 rounds x 64 MB = 147,456 pages of 4 KiB faulted in again without it.
    assert plain["faults"] > 100_000
    assert kept["faults"] < plain["faults"] / 20


def test_a_users_own_malloc_settings_win():
    user = probe("keep", MALLOC_ARENA_MAX="4")
    assert user["kept"] is False
    assert user["faults"] > 100_000
    assert probe("keep", GLIBC_TUNABLES="glibc.malloc.trim_threshold=1")["kept"] is False


def test_user_settings():
    assert not heap.user_settings({})
    assert not heap.user_settings({"GLIBC_TUNABLES": "glibc.cpu.x86_shstk=off"})
    assert heap.user_settings({"MALLOC_MMAP_THRESHOLD_": "1"})
    assert heap.user_settings({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"})
