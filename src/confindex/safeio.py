"""Reading the files a workspace holds as untrusted input (issue 30): every file is opened as a
regular file with a size limit, every JSON document has a depth limit, and text comes back as
text a terminal, a JSON encoder and a web page can all write.

Without them a FIFO named `*.json` in transcripts/ (or `confindex.toml`) hung every command, a
symlink to /dev/zero was read until memory ran out, a deeply nested JSON file raised
RecursionError, and a lone surrogate ("\\ud800", valid JSON) made every later write of the text
fail with UnicodeEncodeError (exit 70, HTTP 500).
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from confindex.errors import ConfindexError

MiB = 1 << 20
# A transcript of a 10-hour recording with word times is ~30 MB; nothing we write is bigger.
MAX_JSON_BYTES = 256 * MiB
MAX_CONFIG_BYTES = 1 * MiB
MAX_JSON_DEPTH = 64  # our documents nest 5 deep; json's recursion fails near 1,000


def env_float(name: str, default: float) -> float:
    """A number from the environment variable `name` (an operator's knob such as a timeout),
    or `default` when it is unset, empty or not a number."""
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


class UnreadableFile(ConfindexError):
    """A file that is not a regular file, is too large (`damaged`), or cannot be read (an OS
    error: permission, I/O; not `damaged`, so never replaced by a rebuilt copy)."""

    def __init__(self, message: str, damaged: bool = True) -> None:
        super().__init__(message)
        self.damaged = damaged


def read_regular(path: Path | str, limit: int, what: str = "file") -> bytes:
    """The bytes of `path`, which must be a regular file of at most `limit` bytes. Opened with
    O_NONBLOCK, so a FIFO or device is refused (by fstat) instead of blocking the open or read.
    FileNotFoundError passes through (callers say what is missing); anything else is a
    one-line UnreadableFile."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise UnreadableFile(f"cannot read {what} {path}: {_why(exc)}", damaged=False) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnreadableFile(f"{what} {path} is not a regular file ({_kind(st.st_mode)})")
        if st.st_size > limit:
            raise UnreadableFile(
                f"{what} {path} is too large ({st.st_size:,} bytes; at most {limit:,})"
            )
        chunks, size = [], 0
        while chunk := os.read(fd, min(MiB, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:  # grew while we read it
                raise UnreadableFile(f"{what} {path} is too large (more than {limit:,} bytes)")
        return b"".join(chunks)
    except OSError as exc:
        raise UnreadableFile(f"cannot read {what} {path}: {_why(exc)}", damaged=False) from None
    finally:
        os.close(fd)


def read_text(path: Path | str, limit: int, what: str = "file", encoding: str = "utf-8") -> str:
    """`read_regular` decoded; bytes that are not `encoding` are a one-line error."""
    data = read_regular(path, limit, what)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        raise UnreadableFile(f"{what} {path} is damaged (not UTF-8 text)") from None


_KEEP = b'"[]{}'
_DROP = bytes(c for c in range(256) if c not in _KEEP)
_EMPTY_PAIR = re.compile(rb"\[\]|\{\}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def too_deep(text: str, max_depth: int) -> bool:
    """Whether the arrays and objects of a JSON text nest deeper than `max_depth` (brackets in
    strings skipped). C-speed passes only: a Python loop over the brackets of a 7.5-MB
    transcript cost 1.4 s, a regex dropping its strings 0.6, these 0.3 (at load 10). Escaped
    backslashes and quotes go, then all but quotes and brackets, then strings, then each pass
    peels one level of empty pairs."""
    raw = text.encode("utf-8", "surrogatepass").replace(b"\\\\", b"").replace(b'\\"', b"")
    s = b"".join(raw.translate(None, _DROP).split(b'"')[0::2])  # each quote opens or closes
    for _ in range(max_depth):
        if not s:
            return False
        s = _EMPTY_PAIR.sub(b"", s)
    return bool(s)


def loads_json(text: str | bytes, what: str = "JSON", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """json.loads with a depth limit, and lone surrogates ("\\ud800") replaced by U+FFFD so the
    text can be written anywhere. Bad JSON raises ValueError (json's own), too deep a
    document a ConfindexError."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    try:
        data = json.loads(text)
    except RecursionError:
        data = None
    if (data is None and text.strip() != "null") or too_deep(text, max_depth):
        raise ConfindexError(f"{what} is damaged (nests deeper than {max_depth} levels)")
    if _SURROGATE_ESCAPE.search(text) or _LONE_SURROGATE.search(text):
        data = clean_surrogates(data)
    return data


def clean_surrogates(value: Any) -> Any:
    """`value` with every lone surrogate in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [clean_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {clean_surrogates(k): clean_surrogates(v) for k, v in value.items()}
    return value


def read_json(path: Path | str, what: str = "JSON file", limit: int = MAX_JSON_BYTES) -> Any:
    """A JSON file read by `read_text` and parsed by `loads_json`."""
    return loads_json(read_text(path, limit, what), f"{what} {path}")


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _why(exc: BaseException) -> str:
    return (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).splitlines()[0]
