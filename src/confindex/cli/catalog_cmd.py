"""`confindex list` and `confindex rm`: the recordings of a workspace."""

from __future__ import annotations

from typing import Any

import click

from confindex.cli.common import json_option, print_json, workspace_option
from confindex.cli.output import plural
from confindex.timefmt import hms


def _print_jsonl(items: list[dict[str, Any]]) -> None:
    import json

    from confindex.sanitize import json_text

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
    from confindex.api import Archive
    from confindex.cli.output import console, text

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
    _print_recordings(out, got)
    total = hms(sum(e.duration for e in got))
    out.print(text(f"{len(got)} recording{'s' if len(got) != 1 else ''}, {total} of audio"))


# A table only when every id, date, duration and language list fits whole on its line and the
# title and speakers still get this many columns to wrap in; else one block per recording, so
# a narrow terminal never loses a column nor splits an id. The widths are set here: rich's own
# sharing cut the last column ("en, fr, la" → "en, fr,") to keep a long title wide.
_TITLE_MIN, _SPEAKERS_MIN = 24, 14


def _print_recordings(out: Any, got: list[Any]) -> None:
    from rich.text import Text

    from confindex.cli.output import table, text

    titles = [" ".join(e.title.split()) for e in got]
    langs = [", ".join(e.languages) or "-" for e in got]
    speakers = [", ".join(e.speakers) or "-" for e in got]

    def widest(name: str, cells: list[str]) -> int:
        return max(len(x) for x in [name, *cells])

    fixed = {
        "id": widest("id", [e.id for e in got]),
        "date": widest("date", [e.date or "-" for e in got]),
        "duration": widest("duration", [hms(e.duration) for e in got]),
        "lang": widest("lang", langs),
    }
    room = out.width - sum(fixed.values()) - 2 * 5  # two spaces between the six columns
    if room >= _TITLE_MIN + _SPEAKERS_MIN:
        speakers_w = min(widest("speakers", speakers), max(_SPEAKERS_MIN, room * 2 // 5))
        title_w = min(widest("title", titles), room - speakers_w)
        widths = {**fixed, "title": title_w, "speakers": speakers_w}
        order = ("id", "title", "date", "duration", "speakers", "lang")
        rows = [
            (text(e.id, "bold"), text(ti), e.date or "-", hms(e.duration), text(sp), lg)
            for e, ti, sp, lg in zip(got, titles, speakers, langs, strict=True)
        ]
        out.print(table([(name, {"width": widths[name]}) for name in order], rows))
        return
    for e, ti, sp, lg in zip(got, titles, speakers, langs, strict=True):
        out.print(text(e.id, "bold") + text(f"  {e.date or '-'}  {hms(e.duration)}  {lg}"))
        for para in (text(ti), text(f"speakers: {sp}", "dim")):
            for line in para.wrap(out, max(10, out.width - 2)):  # wrapped lines indented too
                line.rstrip()
                out.print(Text("  ") + line, no_wrap=True, crop=True)


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
    from confindex.api import Archive
    from confindex.cli.output import console, text

    done = Archive(ws).remove(*refs, media=media)
    if as_json:
        print_json({"removed": [r.to_dict() for r in done]})
        return
    out = console()
    for r in done:
        out.print(
            text(
                f"removed {r.id}: {plural(len(r.files), 'file')}, "
                f"{plural(r.index_docs, 'index turn')}, {plural(r.ledger_rows, 'ledger row')}"
            )
        )
