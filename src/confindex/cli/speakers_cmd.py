"""`confindex speakers`: list the speakers of a recording, name them, list names archive-wide.

A click group: `speakers REC rename SPEAKER NAME` (the recording first, as users type it) is
read as the subcommand `rename REC SPEAKER NAME`; `speakers REC` is `show REC`; `speakers --all`
is `all`. Adding an action is one subcommand here.
"""

from __future__ import annotations

from typing import Any

import click

from confindex.cli.common import json_option, print_json, workspace_option
from confindex.cli.output import plural
from confindex.timefmt import hms

COMMANDS = ("review", "identify")
ACTIONS = ("rename", "confirm", "reject", "merge", "assign")
_VALUED = ("-w", "--workspace", "--span")  # options that take a value (the next argument)


class SpeakersGroup(click.Group):
    """Reads `speakers REC ACTION ARGS…` as `speakers ACTION REC ARGS…` (and `speakers REC` as
    `show REC`, `speakers --all` as `all`), with the one-line usage errors of before."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if any(a in ("--help", "-h") for a in args[:1]):
            return super().parse_args(ctx, args)
        pos = _positions(args)
        words = [args[i] for i in pos]
        has_all = "--all" in args
        if words and words[0] in (*COMMANDS, "all", "show", *ACTIONS):
            if has_all and words[0] in COMMANDS:
                raise click.UsageError(f"--all does not go with {words[0]}", ctx=ctx)
            return super().parse_args(ctx, args)
        if has_all:
            if words:
                raise click.UsageError(
                    "--all lists the whole archive: give no RECORDING with it", ctx=ctx
                )
            return super().parse_args(ctx, ["all", *(a for a in args if a != "--all")])
        if not words:
            if any(a in ("--help", "-h") for a in args):
                return super().parse_args(ctx, args)
            raise click.UsageError("give a RECORDING, or --all", ctx=ctx)
        action = words[1] if len(words) > 1 else None
        if action is None:
            if "--no-enroll" in args:
                raise click.UsageError("--no-enroll goes with rename", ctx=ctx)
            return super().parse_args(ctx, ["show", *args])
        if action not in ACTIONS:
            raise click.UsageError(
                f"unknown action {action!r}: use one of {', '.join(ACTIONS)} "
                f"(or `confindex speakers {'|'.join(COMMANDS)}`)",
                ctx=ctx,
            )
        if "--no-enroll" in args and action != "rename":
            raise click.UsageError("--no-enroll goes with rename", ctx=ctx)
        rest = [a for i, a in enumerate(args) if i != pos[1]]
        return super().parse_args(ctx, [action, *rest])


def _positions(args: list[str]) -> list[int]:
    """Indexes of the positional arguments (options and their values skipped)."""
    out, skip = [], False
    for i, a in enumerate(args):
        if skip:
            skip = False
        elif a == "--":
            out += range(i + 1, len(args))
            break
        elif a.startswith("-") and a != "-":
            skip = a in _VALUED
        else:
            out.append(i)
    return out


@click.group(cls=SpeakersGroup, invoke_without_command=False)
def speakers() -> None:
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


def _archive(ws: Any) -> Any:
    from confindex.api import Archive

    return Archive(ws)


def _print_speakers(r: Any) -> None:
    print_json({"recording": r.recording_id, "speakers": [s.to_dict() for s in r.speakers]})


@speakers.command("all")
@json_option
@workspace_option
def all_(as_json: bool, ws: Any) -> None:
    """The people of the whole archive (`speakers --all`)."""
    from confindex.cli.output import echo
    from confindex.sanitize import terminal

    named, unnamed = _archive(ws).archive_speakers()
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
            f"{terminal(a.name):<{width}}  {hms(a.talk_time)}  "
            f"{plural(a.turns, 'turn'):>10}{when}  "
            f"{n} recording{'s' if n != 1 else ''}{auto}: {', '.join(a.recordings)}"
        )
    if unnamed:
        echo(f"({unnamed} speaker{'s' if unnamed != 1 else ''} not named yet)")


@speakers.command("show")
@click.argument("recording")
@json_option
@workspace_option
def show(recording: str, as_json: bool, ws: Any) -> None:
    """The speakers of RECORDING: talk time, turns, a first quote (`speakers RECORDING`)."""
    from confindex.cli.output import console, echo
    from confindex.sanitize import terminal

    archive = _archive(ws)
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
        turns = plural(s.turns, "turn")
        line = f"{s.label:<{lw}}  {name:<{nw}}{auto}  {hms(s.talk_time)}  {turns:>10}"
        if s.first_quote:  # a preview: cut to the terminal's width rather than wrapped
            room = width - len(line) - 4
            quote = terminal(s.first_quote)
            if room >= 8:
                line += f'  "{_cut(quote, room)}"'
        echo(line)


@speakers.command("rename")
@click.argument("recording")
@click.argument("args", nargs=-1, metavar="SPEAKER NAME")
@click.option(
    "--no-enroll",
    is_flag=True,
    help="Do not add this voice to the voice library (the name stays in this recording).",
)
@json_option
@workspace_option
def rename(recording: str, args: tuple[str, ...], no_enroll: bool, as_json: bool, ws: Any) -> None:
    """Name SPEAKER of RECORDING (`speakers RECORDING rename SPEAKER NAME`)."""
    from confindex.cli.output import echo
    from confindex.sanitize import terminal

    if len(args) != 2:
        raise click.UsageError('rename takes a SPEAKER and a NAME: rename SPEAKER_01 "Name"')
    r = _archive(ws).rename_speaker(recording, *args, enroll=not no_enroll)
    if as_json:
        _print_speakers(r)
    else:
        what = f"named {terminal(r.name)!r}" if r.name else "back to its label"
        echo(f"{r.label} of {r.recording_id} is {what}; exports and index updated.")


def _one_speaker(action: str, args: tuple[str, ...]) -> str:
    if len(args) != 1:
        raise click.UsageError(f"{action} takes a SPEAKER: {action} SPEAKER_01")
    return args[0]


@speakers.command("confirm")
@click.argument("recording")
@click.argument("args", nargs=-1, metavar="SPEAKER")
@json_option
@workspace_option
def confirm(recording: str, args: tuple[str, ...], as_json: bool, ws: Any) -> None:
    """Keep the automatic name of SPEAKER (it becomes a user's and is enrolled)."""
    from confindex.cli.output import echo
    from confindex.sanitize import terminal

    r = _archive(ws).confirm_speaker(recording, _one_speaker("confirm", args))
    if as_json:
        _print_speakers(r)
    else:
        echo(
            f"{r.label} of {r.recording_id} is {terminal(r.name or '')!r}, confirmed and enrolled."
        )


@speakers.command("reject")
@click.argument("recording")
@click.argument("args", nargs=-1, metavar="SPEAKER")
@json_option
@workspace_option
def reject(recording: str, args: tuple[str, ...], as_json: bool, ws: Any) -> None:
    """Take back the automatic name of SPEAKER (never suggested again for RECORDING)."""
    from confindex.cli.output import echo
    from confindex.sanitize import terminal

    r = _archive(ws).reject_speaker(recording, _one_speaker("reject", args))
    if as_json:
        _print_speakers(r)
    else:
        echo(
            f"{r.label} of {r.recording_id} is no longer {terminal(r.name or '')!r} "
            "(not suggested again for this recording); exports and index updated."
        )


def _changed(saved: Any, archive: Any, as_json: bool) -> None:
    from confindex.cli.output import echo
    from confindex.sanitize import terminal

    t = saved.transcript
    if as_json:
        speakers_ = [s.to_dict() for s in archive.speakers(t)]
        print_json({"recording": t.id, "version": saved.version,
                    "change": saved.change.summary, "speakers": speakers_})  # fmt: skip
    else:
        echo(f"{t.id}: {terminal(saved.change.summary)}; exports and index updated.")


@speakers.command("merge")
@click.argument("recording")
@click.argument("labels", nargs=-1, metavar="LABEL OTHER…")
@json_option
@workspace_option
def merge(recording: str, labels: tuple[str, ...], as_json: bool, ws: Any) -> None:
    """The OTHER speakers become LABEL everywhere: turns, colours, exports (RTTM, ELAN tiers,
    subtitles), voiceprint and voice library (one person given several labels)."""
    if len(labels) < 2:
        raise click.UsageError("merge takes a LABEL and the labels to merge into it")
    archive = _archive(ws)
    _changed(archive.merge_speakers(recording, *labels), archive, as_json)


@speakers.command("assign")
@click.argument("recording")
@click.argument("labels", nargs=-1, metavar="LABEL")
@click.option("--span", required=True, metavar="START-END", help="The words starting here.")
@json_option
@workspace_option
def assign(recording: str, labels: tuple[str, ...], span: str, as_json: bool, ws: Any) -> None:
    """The words starting in --span are said by LABEL (a new label if it does not exist):
    turns are split at those word boundaries."""
    if len(labels) != 1:
        raise click.UsageError("assign takes --span START-END and one LABEL")
    archive = _archive(ws)
    _changed(archive.assign_speaker(recording, span, labels[0]), archive, as_json)


@speakers.command("review")
@click.argument("recordings", nargs=-1)
@json_option
@workspace_option
def review(recordings: tuple[str, ...], as_json: bool, ws: Any) -> None:
    """Automatic names waiting for a confirmation (of these recordings, else all)."""
    _review(_archive(ws), list(recordings), as_json)


@speakers.command("identify")
@click.argument("recordings", nargs=-1)
@json_option
@workspace_option
def identify(recordings: tuple[str, ...], as_json: bool, ws: Any) -> None:
    """Recognise the library's voices again (in these recordings, else all)."""
    _identify(_archive(ws), list(recordings), as_json)


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
    echo(f"{plural(len(results), 'recording')} checked, {plural(changed, 'name')} changed.")
