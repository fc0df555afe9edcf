"""`related`: the passages across the archive closest in meaning to a moment of a recording."""

from __future__ import annotations

from typing import Any

import click

from confindex import sanitize
from confindex.cli.common import json_option, print_json, workspace_option
from confindex.timefmt import hms


def _log(msg: str) -> None:
    click.echo(sanitize.terminal(msg), err=True)


@click.command()
@click.argument("recording")
@click.option("--at", "at", required=True, metavar="TIME", help="The moment (12:34, 754, 12m34s).")
@click.option("--limit", "-n", default=10, show_default=True, type=click.IntRange(1, 200))
@json_option
@workspace_option
def related(recording: str, at: str, limit: int, as_json: bool, ws: Any) -> None:
    """Passages in other recordings closest in meaning to what is said at --at, in any
    language; each cited at its first word.

    \b
    Examples:
      confindex related my-talk --at 12:34
      confindex related my-talk --at 754 --limit 5 --json
    """
    from confindex.api import Archive
    from confindex.timefmt import parse_time

    seconds = parse_time(at)  # a bad time is a one-line error before any work
    archive = Archive(ws)
    here, hits = archive.related(recording, seconds, limit=limit, log_fn=_log)
    if as_json:
        print_json({"passage": here.to_dict(), "related": [h.to_dict() for h in hits]})
        return
    from rich.text import Text

    from confindex.cli.output import console, text

    out = console()
    out.print(
        Text(f"[{hms(here.time)}] ")
        + text(here.speaker_name or "?", "bold")
        + Text(": ")
        + text(here.snippet),
        soft_wrap=True,
    )
    if not hits:
        click.echo("No related passages in other recordings.")
        return
    for h in hits:
        out.print()
        head = Text(f"{h.rank:>2}. {h.similarity:.2f} [{hms(h.time)}] ", style="bold")
        head.append_text(text(h.speaker_name or "?", "bold"))
        head.append_text(text(" · " + " · ".join(x for x in (h.title, h.date) if x)))
        out.print(head, no_wrap=True, overflow="ellipsis", crop=True)
        out.print(Text("    ") + text(h.snippet), soft_wrap=True)
        out.print(Text("    ") + Text(sanitize.url(h.link), style="blue"), soft_wrap=True)
