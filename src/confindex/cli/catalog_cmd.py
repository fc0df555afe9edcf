"""`confindex list` and `confindex rm`: the recordings of a workspace."""

from __future__ import annotations

from typing import Any

import click

from ..timefmt import hms
from .common import json_option, print_json, workspace_option


def _print_jsonl(items: list[dict[str, Any]]) -> None:
    import json

    from ..sanitize import json_text

    for item in items:
        click.echo(json_text(json.dumps(item, ensure_ascii=False, default=str)))


@click.command("list")
@click.option("--title", metavar="TEXT", help="Only titles (or ids) containing TEXT.")
@click.option("--speaker", metavar="NAME", help="Only recordings where NAME speaks.")
@click.option("--channel", metavar="TEXT", help="Only this channel or uploader.")
@click.option("--lang", metavar="CODE", help="Only recordings with turns in this language.")
@click.option("--since", metavar="YYYY[-MM[-DD]]", help="Only recordings dated on/after this.")
@click.option("--until", metavar="YYYY[-MM[-DD]]", help="Only recordings dated on/before this.")
@click.option("--jsonl", is_flag=True, help="One JSON object per line.")
@json_option
@workspace_option
def list_recordings(
    title: str | None,
    speaker: str | None,
    channel: str | None,
    lang: str | None,
    since: str | None,
    until: str | None,
    jsonl: bool,
    as_json: bool,
    ws: Any,
) -> None:
    """List the recordings: id, title, date, duration, speakers, languages (newest first).

    \b
    Examples:
      confindex list
      confindex list --speaker "Maya Brooks" --lang en
      confindex list --since 2024-01 --json
    """
    from ..api import Archive
    from .output import console, table, text

    got = Archive(ws).list_recordings(
        title=title, speaker=speaker, channel=channel, lang=lang, since=since, until=until
    )
    if as_json:
        print_json({"workspace": str(ws.root), "recordings": [e.to_dict() for e in got]})
        return
    if jsonl:
        _print_jsonl([e.to_dict() for e in got])
        return
    out = console()
    if not got:
        out.print(text(f"No recordings in {ws.root}" + (" match" if since or title else "")))
        return
    rows = [
        (
            text(e.id, "bold"),
            text(e.title),
            e.date or "-",
            hms(e.duration),
            text(", ".join(e.speakers) or "-"),
            ", ".join(e.languages) or "-",
        )
        for e in got
    ]
    out.print(
        table(
            [
                ("id", {"no_wrap": True}),
                ("title", {"ratio": 2}),
                "date",
                ("duration", {"no_wrap": True}),
                ("speakers", {"ratio": 1}),
                "lang",
            ],
            rows,
        )
    )
    hours = sum(e.duration for e in got) / 3600
    out.print(text(f"{len(got)} recording{'s' if len(got) != 1 else ''}, {hours:.1f} h"))


@click.command()
@click.argument("refs", nargs=-1, required=True, metavar="ID...")
@click.option("--media", is_flag=True, help="Also delete downloaded media under media/.")
@json_option
@workspace_option
def rm(refs: tuple[str, ...], media: bool, as_json: bool, ws: Any) -> None:
    """Remove recordings: transcript, exports, index documents, ledger row (and media).

    IDs are recording ids, unique id prefixes, or the URL/path a recording came from. All are
    checked before anything is deleted. Media files you fetched from your own disk are never
    deleted; `--media` deletes downloads under the workspace's media/.

    \b
    Examples:
      confindex rm youtube-u2SCITorY2A
      confindex rm panel --media
    """
    from ..api import Archive
    from .output import console, text

    done = Archive(ws).remove(*refs, media=media)
    if as_json:
        print_json({"removed": [r.to_dict() for r in done]})
        return
    out = console()
    for r in done:
        out.print(
            text(
                f"removed {r.id}: {len(r.files)} file(s), {r.index_docs} index turn(s), "
                f"{r.ledger_rows} ledger row(s)"
            )
        )
