"""`confindex edit`, `history`, `undo`, `meta`: correct a transcript by hand (issue 27)."""

from __future__ import annotations

from typing import Any

import click

from confindex.cli.common import json_option, print_json, workspace_option


@click.command()
@click.argument("recording")
@click.option("--span", required=True, metavar="START-END", help="The words starting here.")
@click.option("--text", required=True, metavar="WORDS", help="What was said instead.")
@click.option(
    "--no-align",
    is_flag=True,
    help="Do not time the new words against the audio: spread them over the span (estimated).",
)
@click.option("--model", "-m", default=None, metavar="NAME|DIR", help="Whisper model to align.")
@json_option
@workspace_option
def edit(
    recording: str, span: str, text: str, no_align: bool, model: str | None, as_json: bool, ws: Any
) -> None:
    """Replace the words that start in a span by the words that were said.

    The new words are timed by forced alignment on that stretch of the audio with the Whisper
    model (no download); without the media they are spread over the span and marked
    estimated. Unchanged words keep their times; corrected words are marked verified, kept
    by later re-transcriptions (unless --discard-edits) and searchable at once.

    \b
    Examples:
      confindex edit radio --span 34.6-34.9 --text "touffu"
      confindex edit radio --span 2:25.2-2:25.3 --text "pacemaker"
      confindex history radio
      confindex undo radio
    """
    from confindex.api import Archive

    saved = Archive(ws).edit(recording, span, text, model=model, align=not no_align)
    _report(saved, as_json)


def _report(saved: Any, as_json: bool) -> None:
    from confindex.cli.output import echo
    from confindex.sanitize import terminal

    t = saved.transcript
    if as_json:
        print_json({"recording": t.id, "version": saved.version, "change": _change(saved.change)})
        return
    echo(f"{t.id}: {terminal(saved.change.summary)}; exports and index updated.")


def _change(c: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(c)


@click.command()
@click.argument("recording")
@json_option
@workspace_option
def history(recording: str, as_json: bool, ws: Any) -> None:
    """List every change of a recording (edit, rename, merge, assign, meta, transcribe) with
    its time and a one-line diff, oldest first; `confindex undo` undoes the last one."""
    from confindex.api import Archive
    from confindex.cli.output import echo
    from confindex.sanitize import terminal

    archive = Archive(ws)
    t = archive.recording(recording)
    items = archive.changes(t.id)
    if as_json:
        print_json({"recording": t.id, "changes": [_change(c) for c in items]})
        return
    if not items:
        echo(f"{t.id}: no changes yet.")
        return
    for c in items:  # one line each, not wrapped: `history | grep` works
        click.echo(f"{c.at}  {c.kind:<8}  {terminal(c.summary)}")


@click.command()
@click.argument("recording")
@json_option
@workspace_option
def undo(recording: str, as_json: bool, ws: Any) -> None:
    """Undo the last change of a recording (an edit, merge, rename, re-transcription…):
    the version before it comes back; exports and index follow. Repeat to go further back."""
    from confindex.api import Archive
    from confindex.cli.output import echo

    t = Archive(ws).undo(recording)
    if as_json:
        print_json({"recording": t.id, "restored": True, "changes": len(t.changes)})
        return
    echo(f"{t.id}: last change undone; exports and index updated.")


@click.command()
@click.argument("recording")
@click.option("--title", default=None)
@click.option("--date", default=None, metavar="YYYY[-MM[-DD]]")
@click.option("--channel", default=None, help="Publisher, channel or programme.")
@click.option("--url", default=None, help="Public URL of the recording (citations link to it).")
@click.option("--doi", default=None)
@click.option(
    "--author", "authors", multiple=True, help="An author (repeat for several; '' clears)."
)
@json_option
@workspace_option
def meta(
    recording: str,
    title: str | None,
    date: str | None,
    channel: str | None,
    url: str | None,
    doi: str | None,
    authors: tuple[str, ...],
    as_json: bool,
    ws: Any,
) -> None:
    """Set what citations say about a recording: title, date, channel, public URL, DOI,
    authors; without options print them. Kept across re-transcription and re-fetch.

    \b
    Examples:
      confindex meta radio --title "Smartphones : éloge de la réparation" --date 2022-03-14
      confindex meta radio --channel "France Culture" --author "Nicolas Nova"
      confindex meta radio
    """
    from confindex.api import Archive
    from confindex.cli.output import echo
    from confindex.sanitize import terminal

    archive = Archive(ws)
    given = {"title": title, "date": date, "channel": channel, "url": url, "doi": doi}
    values: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if authors:
        values["authors"] = [a for a in authors if a.strip()]
    if values:
        saved = archive.set_meta(recording, **values)
        t = saved.transcript
    else:
        t = archive.recording(recording)
    shown = archive.meta(t.id)
    if as_json:
        print_json({"recording": t.id, "meta": shown})
        return
    for key, value in shown.items():
        if isinstance(value, list):
            value = "; ".join(value)
        echo(f"{key:<8} {terminal(str(value)) if value else '-'}")
