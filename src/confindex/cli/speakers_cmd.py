"""`confindex speakers`: list the speakers of a recording, name them, list names archive-wide."""

from __future__ import annotations

from typing import Any

import click

from confindex.cli.common import json_option, print_json, workspace_option
from confindex.timefmt import hms

COMMANDS = ("review", "identify")
ACTIONS = ("rename", "confirm", "reject", "merge", "assign")


@click.command()
@click.argument("recording", required=False)
@click.argument("action", required=False)
@click.argument("rename_args", nargs=-1, metavar="[SPEAKER [NAME]]")
@click.option("--all", "all_", is_flag=True, help="List the people of the whole archive.")
@click.option(
    "--no-enroll",
    is_flag=True,
    help="rename: do not add this voice to the voice library (the name stays in this recording).",
)
@click.option("--span", metavar="START-END", help="assign: the words starting in this span.")
@json_option
@workspace_option
def speakers(
    recording: str | None,
    action: str | None,
    rename_args: tuple[str, ...],
    all_: bool,
    no_enroll: bool,
    span: str | None,
    as_json: bool,
    ws: Any,
) -> None:
    """List, name and recognise the speakers of recordings.

    RECORDING is a recording id (or a unique prefix of one), or the URL or file it came from.
    Renaming keeps the SPEAKER_xx labels in the transcript and stores the name beside them;
    exports and the search index are updated. Give the label itself as NAME to clear a name.

    Naming a speaker also enrolls their voice in the workspace's voice library (voices.json;
    --no-enroll to opt out): new recordings then name that person automatically, marked
    "auto" with a similarity score until confirmed. `review` lists automatic names; `confirm`
    keeps one, `reject` reverts it for good in that recording. `identify` recognises voices
    again in existing recordings (all when none given) after the library grew.

    `merge LABEL OTHER…` makes the other labels LABEL everywhere (one person given two
    labels); `assign --span A-B LABEL` gives the words starting in A-B to LABEL (a new label
    if it does not exist), splitting turns at word boundaries. `confindex undo` undoes either.

    \b
    Examples:
      confindex speakers panel-2024
      confindex speakers panel-2024 rename SPEAKER_01 "Jean-Loup Chrétien"
      confindex speakers review
      confindex speakers panel-2025 confirm SPEAKER_00
      confindex speakers panel-2025 reject SPEAKER_02
      confindex speakers identify
      confindex speakers --all --json
      confindex speakers panel-2024 merge SPEAKER_00 SPEAKER_03
      confindex speakers panel-2024 assign --span 57.9-61.2 SPEAKER_01
    """
    from confindex.api import Archive
    from confindex.cli.output import console, echo
    from confindex.sanitize import terminal

    archive = Archive(ws)
    if recording in COMMANDS:
        if all_:
            raise click.UsageError(f"--all does not go with {recording}")
        refs = [r for r in (action, *rename_args) if r]
        if recording == "review":
            _review(archive, refs, as_json)
        else:
            _identify(archive, refs, as_json)
        return
    if action is not None and action not in ACTIONS:
        raise click.UsageError(
            f"unknown action {action!r}: use one of {', '.join(ACTIONS)} "
            f"(or `confindex speakers {'|'.join(COMMANDS)}`)"
        )

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
            when = f"  {a.first}..{a.last}" if a.first else ""
            auto = f" ({a.automatic} automatic)" if a.automatic else ""
            echo(  # rich wraps a long list of recordings at the terminal's width
                f"{terminal(a.name):<{width}}  {hms(a.talk_time)}  {a.turns:>4} turns{when}  "
                f"{n} recording{'s' if n != 1 else ''}{auto}: {', '.join(a.recordings)}"
            )
        if unnamed:
            echo(f"({unnamed} speaker{'s' if unnamed != 1 else ''} not named yet)")
        return

    if not recording:
        raise click.UsageError("give a RECORDING, or --all")
    if no_enroll and action != "rename":
        raise click.UsageError("--no-enroll goes with rename")
    if span is not None and action != "assign":
        raise click.UsageError("--span goes with assign")
    if action in ("merge", "assign"):
        _merge_assign(archive, recording, action, rename_args, span, as_json)
        return
    if action in ("confirm", "reject"):
        if len(rename_args) != 1:
            raise click.UsageError(f"{action} takes a SPEAKER: {action} SPEAKER_01")
        if action == "confirm":
            r = archive.confirm_speaker(recording, rename_args[0])
        else:
            r = archive.reject_speaker(recording, rename_args[0])
        if as_json:
            print_json({"recording": r.recording_id, "speakers": [s.to_dict() for s in r.speakers]})
        elif action == "confirm":
            name = terminal(r.name or "")
            echo(f"{r.label} of {r.recording_id} is {name!r}, confirmed and enrolled.")
        else:
            echo(
                f"{r.label} of {r.recording_id} is no longer {terminal(r.name or '')!r} "
                "(not suggested again for this recording); exports and index updated."
            )
        return
    if action == "rename":
        if len(rename_args) != 2:
            raise click.UsageError('rename takes a SPEAKER and a NAME: rename SPEAKER_01 "Name"')
        r = archive.rename_speaker(recording, *rename_args, enroll=not no_enroll)
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
    width = console().width
    # One line per speaker: a long name (a full title and affiliation) is cut to a third of the
    # terminal, not wrapped; --json and `speakers --all` show it whole.
    cap = max(12, width // 3)
    names = [_cut(terminal(s.name or ""), cap) for s in infos]
    nw = max(len(n) for n in names)
    aw = 12 if any(s.automatic for s in infos) else 0
    for s, name in zip(infos, names, strict=True):
        auto = f"auto {s.score:.2f}" if s.automatic and s.score is not None else ""
        auto = f"  {auto:<{aw - 2}}" if aw else ""
        line = f"{s.label:<{lw}}  {name:<{nw}}{auto}  {hms(s.talk_time)}  {s.turns:>4} turns"
        if s.first_quote:  # a preview: cut to the terminal's width rather than wrapped
            room = width - len(line) - 4
            quote = terminal(s.first_quote)
            if room >= 8:
                line += f'  "{_cut(quote, room)}"'
        echo(line)


def _cut(text: str, room: int) -> str:
    return text if len(text) <= room else text[: room - 1].rstrip() + "…"


def _review(archive: Any, refs: list[str], as_json: bool) -> None:
    from confindex.cli.output import echo
    from confindex.sanitize import terminal

    items = archive.pending_names(*refs)
    if as_json:
        print_json({"pending": [r.to_dict() for r in items]})
        return
    if not items:
        echo("No automatic names to review.")
        return
    for r in items:
        margin = f", margin {r.margin:.2f}" if r.margin is not None else ""
        q = f'  "{terminal(r.first_quote)}"' if r.first_quote else ""
        echo(
            f"{r.recording}  {r.label}  {terminal(r.name)!r}  score {r.score:.2f}{margin}  "
            f"{hms(r.talk_time)}{q}"
        )
    echo(
        "Confirm with `confindex speakers REC confirm LABEL`, "
        "reject with `confindex speakers REC reject LABEL`."
    )


def _identify(archive: Any, refs: list[str], as_json: bool) -> None:
    from confindex.cli.output import echo
    from confindex.sanitize import terminal

    results = archive.identify_speakers(*refs)
    if as_json:
        print_json({"recordings": [r.to_dict() for r in results]})
        return
    changed = 0
    for r in results:
        if not r.voiceprints:
            echo(f"{r.recording}: no voiceprints (not diarized, or its media is gone)")
        for c in r.changes:
            changed += 1
            if c.new:
                echo(f"{r.recording}  {c.label}  → {terminal(c.new)!r} ({c.score:.2f})")
            else:
                echo(f"{r.recording}  {c.label}  no longer {terminal(c.old or '')!r}")
    echo(f"{len(results)} recording(s) checked, {changed} name(s) changed.")


def _merge_assign(
    archive: Any, recording: str, action: str, args: tuple[str, ...], span: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    from confindex.cli.output import echo
    from confindex.sanitize import terminal

    if action == "merge":
        if len(args) < 2:
            raise click.UsageError("merge takes a LABEL and the labels to merge into it")
        saved = archive.merge_speakers(recording, *args)
    else:
        if span is None or len(args) != 1:
            raise click.UsageError("assign takes --span START-END and one LABEL")
        saved = archive.assign_speaker(recording, span, args[0])
    t = saved.transcript
    if as_json:
        print_json(
            {
                "recording": t.id,
                "version": saved.version,
                "change": saved.change.summary,
                "speakers": [s.to_dict() for s in archive.speakers(t)],
            }
        )
        return
    echo(f"{t.id}: {terminal(saved.change.summary)}; exports and index updated.")
