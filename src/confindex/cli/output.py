"""The one terminal layer: every command prints through rich consoles made here.

- Colour: `--color auto|always|never` (or $CONFINDEX_COLOR); `NO_COLOR` (any value) turns it
  off in auto mode, as https://no-color.org asks; rich reads `COLUMNS`/`LINES` for the width.
- Width: not on a terminal, lines fit 80 columns (rich's default), so pipes and logs read well.
- Untrusted text (titles, names, transcribed words) goes through `sanitize.terminal` and is
  wrapped in `rich.text.Text`, which rich never parses as markup; strings that *are* markup
  use `sanitize.rich` (terminal + `rich.markup.escape`) for their untrusted parts.
- Progress goes to stderr whenever stderr is a terminal, `--json` or not: stdout stays data.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

COLOR_CHOICES = ("auto", "always", "never")
ENV_COLOR = "CONFINDEX_COLOR"

_color: str | None = None  # set by the global --color option


def set_color(mode: str | None) -> None:
    global _color
    _color = mode


def color_mode() -> str:
    mode = _color or os.environ.get(ENV_COLOR, "auto").lower()
    return mode if mode in COLOR_CHOICES else "auto"


def console(*, stderr: bool = False, width: int | None = None) -> Any:
    """A rich Console on stdout (or stderr) following the colour policy."""
    from rich.console import Console

    mode = color_mode()
    kw: dict[str, Any] = {"stderr": stderr, "highlight": False, "emoji": False}
    if width:
        kw["width"] = width
    if mode == "always":
        kw["force_terminal"] = True
        kw["no_color"] = False
        if os.environ.get("NO_COLOR"):
            # --color always beats NO_COLOR (an explicit flag wins over the environment)
            kw["color_system"] = "standard"
    elif mode == "never":
        kw["no_color"] = True
        kw["color_system"] = None
    return Console(**kw)


def stderr_console() -> Any:
    return console(stderr=True)


def text(value: object, style: str = "") -> Any:
    """Untrusted text as a rich Text: escape sequences neutralised, never read as markup."""
    from rich.text import Text

    from confindex.sanitize import terminal

    return Text(terminal(value), style=style)


def table(
    columns: Sequence[str | tuple[str, dict[str, Any]]],
    rows: Iterable[Sequence[object]],
    *,
    title: str | None = None,
) -> Any:
    """A table without borders (a bold header, two spaces between columns) that fits the
    console width: long cells wrap at spaces (fold only a word longer than its column)."""
    from rich.table import Table

    t = Table(
        box=None,
        title=title,
        expand=False,
        pad_edge=False,
        padding=(0, 1),
        header_style="bold",
    )
    for col in columns:
        name, opts = (col, {}) if isinstance(col, str) else col
        t.add_column(name, overflow="fold", **opts)
    for row in rows:
        t.add_row(*(c if hasattr(c, "__rich__") or _is_renderable(c) else text(c) for c in row))
    return t


def _is_renderable(obj: object) -> bool:
    from rich.text import Text

    return isinstance(obj, Text)


def echo(value: object = "", *, stderr: bool = False, style: str = "") -> None:
    """Print one line (untrusted text allowed) through the colour policy, soft-wrapped."""
    console(stderr=stderr).print(text(value, style) if isinstance(value, str) else value)


def hanging(
    value: object, *, indent: int = 2, hang: int = 4, stderr: bool = False, out: Any = None
) -> None:
    """Untrusted text (or a rich Text) word-wrapped to the width, its first line indented
    `indent` columns and the lines after it `hang`, so a long reason reads as one item."""
    from rich.text import Text

    out = out or console(stderr=stderr)
    t = text(value) if isinstance(value, str) else value
    for i, line in enumerate(t.wrap(out, max(10, out.width - hang))):
        line.rstrip()
        out.print(Text(" " * (indent if i == 0 else hang)) + line, no_wrap=True, crop=True)


def progress(*, transient: bool = True) -> Any:
    """A rich Progress on stderr (shown only when stderr is a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    return Progress(
        TextColumn("{task.description}", style="bold"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        console=stderr_console(),
        transient=transient,
    )


def plural(n: int, word: str, many: str | None = None) -> str:
    """`1 recording`, `2 recordings`, `1 turn` (never `1 recordings` or `recording(s)`)."""
    return f"{n} {word if n == 1 else many or word + 's'}"
