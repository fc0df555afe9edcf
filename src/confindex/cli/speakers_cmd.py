"""`confindex speakers`: list the speakers of a recording, name them, list names archive-wide."""

from __future__ import annotations

from typing import Any

import click

from ..timefmt import hms
from .common import json_option, print_json, workspace_option


@click.command()
@click.argument("recording", required=False)
@click.argument("action", required=False, type=click.Choice(["rename"]))
@click.argument("rename_args", nargs=-1, metavar="[SPEAKER NAME]")
@click.option("--all", "all_", is_flag=True, help="List the named speakers of the whole archive.")
@json_option
@workspace_option
def speakers(
    recording: str | None,
    action: str | None,
    rename_args: tuple[str, ...],
    all_: bool,
    as_json: bool,
    ws: Any,
) -> None:
    """List or name the speakers of a recording.

    RECORDING is a recording id (or a unique prefix of one), or the URL or file it came from.
    Renaming keeps the SPEAKER_xx labels in the transcript and stores the name beside them;
    exports and the search index are updated. Give the label itself as NAME to clear a name.

    \b
    Examples:
      confindex speakers panel-2024
      confindex speakers panel-2024 rename SPEAKER_01 "Jean-Loup Chrétien"
      confindex speakers --all --json
    """
    from ..api import Archive
    from ..sanitize import terminal
    from .output import console, echo

    archive = Archive(ws)
    if all_:
        if recording or action:
            raise click.UsageError("--all lists the whole archive: give no RECORDING with it")
        named, unnamed = archive.archive_speakers()
        if as_json:
            print_json({"speakers": [a.to_dict() for a in named], "unnamed": unnamed})
            return
        if not named:
            echo("No named speakers yet: name one with `confindex speakers ID rename ...`.")
        width = max((len(terminal(a.name)) for a in named), default=0)
        for a in named:
            n = len(a.recordings)
            echo(  # rich wraps a long list of recordings at the terminal's width
                f"{terminal(a.name):<{width}}  {hms(a.talk_time)}  {a.turns:>4} turns  "
                f"{n} recording{'s' if n != 1 else ''}: {', '.join(a.recordings)}"
            )
        if unnamed:
            echo(f"({unnamed} speaker{'s' if unnamed != 1 else ''} not named yet)")
        return

    if not recording:
        raise click.UsageError("give a RECORDING, or --all")
    if action == "rename":
        if len(rename_args) != 2:
            raise click.UsageError('rename takes a SPEAKER and a NAME: rename SPEAKER_01 "Name"')
        r = archive.rename_speaker(recording, *rename_args)
        if as_json:
            print_json({"recording": r.recording_id, "speakers": [s.to_dict() for s in r.speakers]})
        else:
            what = f"named {terminal(r.name)!r}" if r.name else "back to its label"
            echo(f"{r.label} of {r.recording_id} is {what}; exports and index updated.")
        return
    if rename_args:
        raise click.UsageError(f"unexpected arguments: {' '.join(rename_args)}")

    t = archive.recording(recording)
    infos = archive.speakers(t)
    if as_json:
        print_json(
            {
                "recording": t.id,
                "title": t.recording.title,
                "speakers": [s.to_dict() for s in infos],
            }
        )
        return
    echo(f"{t.id}  {t.recording.title}")
    if not infos:
        echo("No speakers: this recording was transcribed without diarization.")
        return
    lw = max(len(s.label) for s in infos)
    nw = max(len(terminal(s.name or "")) for s in infos)
    width = console().width
    for s in infos:
        name = terminal(s.name or "")
        line = f"{s.label:<{lw}}  {name:<{nw}}  {hms(s.talk_time)}  {s.turns:>4} turns"
        if s.first_quote:  # a preview: cut to the terminal's width rather than wrapped
            room = width - len(line) - 4
            quote = terminal(s.first_quote)
            if room >= 8:
                quote = quote if len(quote) <= room else quote[: room - 1].rstrip() + "…"
                line += f'  "{quote}"'
        echo(line)
