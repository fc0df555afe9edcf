"""`review`: the few passages of a recording that are likely wrong, to check by ear."""

from __future__ import annotations

from typing import Any

import click

from confindex.cli.common import json_option, print_json, workspace_option
from confindex.sanitize import terminal, url
from confindex.timefmt import hms

KIND_CHOICES = ["loop", "nonspeech", "lowconf", "language", "undecoded", "missed"]


@click.command()
@click.argument("recording")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(KIND_CHOICES),
    help="Only these kinds of flag (repeatable).",
)
@click.option(
    "--min-score", default=0.0, type=click.FloatRange(0, 1), help="Only flags this sure (0–1)."
)
@json_option
@workspace_option
def review(
    recording: str, kinds: tuple[str, ...], min_score: float, as_json: bool, ws: Any
) -> None:
    """List the passages flagged as likely wrong, with time, reason, words and a link.

    Flags: loop (a phrase repeated back to back), nonspeech (text where the VAD hears no
    speech), lowconf (a span of low word probability), language (text in another language
    than decoded, or a doubtful detection), missed (speech the decoder's VAD heard but no
    word came out). Re-decode one with `confindex transcribe REC
    --span START-END` and other options.

    \b
    Examples:
      confindex review panel
      confindex review panel --kind loop --kind nonspeech --json
    """
    from confindex.api import Archive

    archive = Archive(ws)
    t = archive.recording(recording)
    rows = archive.review(t, kinds=kinds, min_score=min_score)
    from confindex.store.edits import verified_fraction

    verified = verified_fraction(t)  # words a user corrected (`confindex edit`)
    if as_json:
        print_json({"recording_id": t.id, "title": t.recording.title, "verified": verified,
                    "flags": len(t.flags), "passages": [p.to_dict() for p in rows]})  # fmt: skip
        return
    title = terminal(t.recording.title)
    if verified:
        click.echo(f"{title}: {verified:.0%} of the words verified by a user")
    if not rows:
        click.echo(f"{title}: nothing flagged" + (" with these filters" if t.flags else "") + ".")
        return
    n = len(rows)
    click.echo(f"{title}: {n} passage{'s' if n != 1 else ''} to check")
    for p in rows:
        click.echo()
        who = f" {terminal(p.speaker)}" if p.speaker else ""
        click.echo(f"[{hms(p.start)}–{hms(p.end)}] {p.kind} {p.score:.2f}{who}: "
                   f"{terminal(p.reason)}")  # fmt: skip
        if p.text:
            words = terminal(p.text)
            click.echo(f"    “{words if len(words) <= 160 else words[:159] + '…'}”")
        click.echo(f"    {url(p.link)}")
