"""Saving a user's change to a transcript: version check, kept history, exports, index.

A transcript's version is its etag: the sha256 of the file's bytes (16 hex digits), so that
every writer (an edit, a rename, a re-transcription) changes it without cooperating. A save
names the version it was made from; when the file changed since, it is a conflict
(ConflictError), never a silent overwrite. Order of writes as in publish.py: the previous
version into the history, the transcript (atomic: a kill -9 leaves the old file or the new
one), then exports and the index, which `confindex index` rebuilds from transcripts (the
index notices a transcript newer than its entry by size and mtime).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from confindex.errors import ConflictError, NotFoundError
from confindex.store import transcript as store
from confindex.store.transcript import Change, Transcript
from confindex.store.workspace import Workspace

log = logging.getLogger(__name__)


def etag_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def etag(ws: Workspace, recording_id: str) -> str:
    """The version of a recording's transcript as saved now."""
    try:
        return etag_bytes(ws.transcript_path(recording_id).read_bytes())
    except FileNotFoundError:
        raise NotFoundError(f"no recording {recording_id!r} in {ws.transcripts}") from None


def load_versioned(ws: Workspace, ref: str) -> tuple[Transcript, str]:
    """A recording's transcript and its version, read from the same bytes."""
    rid = store.resolve_recording(ws, ref).id
    path = ws.transcript_path(rid)
    data = path.read_bytes()
    return store.Transcript.from_json(data.decode("utf-8")), etag_bytes(data)


@dataclass
class Saved:
    transcript: Transcript
    change: Change
    version: str  # the new etag
    indexed: bool


def commit(store_: Any, t: Transcript, *, expect: str, index: bool = True) -> str:
    """`Store.save_change`: under the recording's lock, check the version, keep the previous
    one in the history, write the transcript (atomically), then its exports and index
    documents (only this recording's: not a rebuild). Returns the new version."""
    ws = store_.ws
    with ws.lock(f"transcript-{t.id}", timeout=30):
        now = etag(ws, t.id)
        if now != expect:
            raise ConflictError(
                f"{t.id} was changed by someone else since you opened it (version {expect}, "
                f"now {now}): reload it and make your change again; nothing was saved"
            )
        store_.keep_previous(t.id)
        path = store.save(ws, t)
        version = etag_bytes(path.read_bytes())
    store_.write_exports(t)
    if index:
        store_.index([t])
    return version


def changes(ws: Workspace, ref: str) -> list[Change]:
    """Every change of a recording's transcript, oldest first (undone ones are gone)."""
    return list(store.resolve_recording(ws, ref).changes)
