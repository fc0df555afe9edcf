"""confindex: turn recorded conferences, lectures and panels into a searchable, citable archive.

The CLI is a thin layer over this API::

    from confindex import Workspace, fetch_and_transcribe, search
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import ConfindexError
from .transcript import Transcript, Turn, Word
from .workspace import Workspace

__all__ = ["ConfindexError", "Transcript", "Turn", "Word", "Workspace", "__version__"]
