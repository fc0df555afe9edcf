"""`chapters`: a recording's table of contents (issue 32)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from confindex.cli.common import json_option, workspace_option


@click.command()
@click.argument("recording")
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(["text", "vtt", "md", "ohms"]),
    default="text",
    show_default=True,
    help="text; WebVTT chapters (players read them); a Markdown table of contents; an "
    "OHMS-style segment index (XML).",
)
@click.option("--output", "-o", metavar="FILE", help="Write to FILE instead of stdout.")
@click.option(
    "--recompute",
    is_flag=True,
    help="Compute the chapters again and save them (the source's own chapters are kept).",
)
@json_option
@workspace_option
def chapters(
    recording: str, fmt: str, output: str | None, recompute: bool, as_json: bool, ws: Any
) -> None:
    """A recording's chapters: where the topic changes, each with a title, keywords, speakers
    and languages, and a link to its second. Chapters the source gives (YouTube's) are kept
    as they are.

    \b
    Examples:
      confindex chapters 3f2a
      confindex chapters 3f2a --format vtt -o panel.chapters.vtt
      confindex chapters 3f2a --format ohms -o panel.index.xml
    """
    from confindex import sanitize
    from confindex.api import Archive
    from confindex.formats.chapters import render
    from confindex.store.workspace import atomic_write_text

    t = Archive(ws).chapters(recording, recompute=recompute)
    text = render(t, "json" if as_json else fmt)
    if output and output != "-":
        atomic_write_text(Path(output), text)
        click.echo(f"{len(t.chapters)} chapters written to {sanitize.terminal(output)}", err=True)
        return
    if fmt == "text" and not as_json:
        if not t.chapters:
            click.echo("no chapters (the transcript has no words)", err=True)
        text = sanitize.terminal(text, multiline=True)
    click.echo(text, nl=False)
