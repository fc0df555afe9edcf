"""confindex: turn recorded conferences, lectures and panels into a searchable, citable archive.

The CLI is a thin layer over this API::

    from confindex import Archive

    archive = Archive("my-archive")
    archive.fetch("talk.mp4")
    for hit in archive.search("cold war"):
        print(hit.title, hit.time, hit.snippet)

See docs/python-api.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from confindex.errors import ConfindexError
from confindex.store.transcript import Transcript, Turn, Word
from confindex.store.workspace import Workspace

if TYPE_CHECKING:
    from confindex.api import Archive

__all__ = ["Archive", "ConfindexError", "Transcript", "Turn", "Word", "Workspace", "__version__"]


def __getattr__(name: str) -> Any:
    # Archive is imported on first use, so that `import confindex` (and `confindex search`)
    # does not pay for the transcription modules.
    if name == "Archive":
        from confindex.api import Archive

        return Archive
    raise AttributeError(f"module 'confindex' has no attribute {name!r}")
