"""The names older code and scripts import for publishing: the `Store` (store.py) does the
work, carry.py holds the pure name-carrying functions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from confindex.store.carry import carry_labels, carry_names, carry_voice_marks
from confindex.store.store import Published, Store
from confindex.store.transcript import Transcript
from confindex.store.workspace import HISTORY, Workspace

__all__ = [
    "HISTORY",
    "Published",
    "carry_labels",
    "carry_names",
    "carry_voice_marks",
    "history",
    "history_dir",
    "publish",
    "undo",
]


# What older code and scripts import from here: the Store does the work.


def history_dir(ws: Workspace, recording_id: str) -> Path:
    return ws.history_dir(recording_id)


def history(ws: Workspace, recording_id: str) -> list[Path]:
    """Kept versions of a recording's transcript, oldest first."""
    return Store(ws).history(recording_id)


def publish(ws: Workspace, t: Transcript, **kw: Any) -> Published:
    """See `Store.publish`."""
    return Store(ws).publish(t, **kw)


def undo(ws: Workspace, recording_id: str, *, index: bool = True) -> Transcript:
    """See `Store.undo`."""
    return Store(ws).undo(recording_id, index=index)
