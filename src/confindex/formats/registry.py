"""Every export format and citation style, once: the CLI's choices (`export --format`,
`fetch --formats`, `cite --style`), the web and the Store (which files a removal deletes) read
them here. Pure data, cheap to import (the renderers live in export.py, qda.py and cite.py).

Adding an export format: a `Format` here and its renderer in export.py (or qda.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    name: str
    extension: str  # what follows `ID.` in the file name
    binary: bool = False  # bytes, not text (written to a file, never to a terminal)
    beside: bool = False  # written beside the transcript by default (`fetch --formats all`)
    writable: bool = True  # `fetch --formats` may name it (json is the transcript itself)
    analysis: bool = False  # for qualitative-analysis tools (qda.py renders it)


# In the order `export --help` lists them.
_ALL = (
    Format("srt", "srt", beside=True),
    Format("vtt", "vtt", beside=True),
    Format("txt", "txt", beside=True),
    Format("md", "md", beside=True),
    Format("json", "json", writable=False),
    Format("rttm", "rttm", beside=True),
    # The analysis tools' text formats are .txt for their import dialogs; a suffix keeps them
    # apart from the plain `txt` export.
    Format("eaf", "eaf", analysis=True),
    Format("exb", "exb", analysis=True),
    Format("maxqda", "maxqda.txt", analysis=True),
    Format("atlasti", "atlasti.txt", analysis=True),
    Format("nvivo", "nvivo.txt", analysis=True),
    Format("docx", "docx", binary=True, analysis=True),
)
FORMATS: dict[str, Format] = {f.name: f for f in _ALL}

EXPORT_FORMATS = tuple(FORMATS)  # what `export --format` renders
WRITABLE = tuple(f.name for f in _ALL if f.writable)  # what `fetch --formats` may write
WRITTEN_BESIDE = tuple(f.name for f in _ALL if f.beside)  # fetch's default
QDA_FORMATS = tuple(f.name for f in _ALL if f.analysis)
BINARY_FORMATS = tuple(f.name for f in _ALL if f.binary)
EXTENSIONS = {f.name: f.extension for f in _ALL if f.extension != f.name}

# Citation styles, in the order `cite --style all` prints them.
CITATION_STYLES = ("apa", "chicago", "bibtex", "ris", "csl")


def file_name(recording_id: str, fmt: str) -> str:
    """`ID.srt`, `ID.eaf`, `ID.maxqda.txt`: the file an export is written to."""
    return f"{recording_id}.{FORMATS[fmt].extension if fmt in FORMATS else fmt}"
