"""`index` and `stats`: maintain the search index and describe the archive."""

from __future__ import annotations

from typing import Any

import click

from confindex.cli.common import json_option, print_json, workspace_option
from confindex.cli.output import plural
from confindex.sanitize import terminal
from confindex.timefmt import hms


def _log(msg: str) -> None:
    click.echo(terminal(msg), err=True)


@click.command()
@click.option("--rebuild", is_flag=True, help="Rebuild the whole index from transcripts/.")
@click.option("--optimize", is_flag=True, help="Merge index segments (minutes on a big index).")
@json_option
@workspace_option
def index(rebuild: bool, optimize: bool, as_json: bool, ws: Any) -> None:
    """Bring the search index up to date with transcripts/: new, changed and deleted ones.

    \b
    Examples:
      confindex index
      confindex index --rebuild
      confindex index --optimize
      confindex index --json
    """
    from confindex.api import Archive
    from confindex.store.workspace import make_dir

    archive = Archive(ws)
    make_dir(ws.index_dir)  # a file in its place is an error before any progress is drawn
    if rebuild:
        from confindex.cli.output import progress as make_progress

        with make_progress() as bar:
            task = bar.add_task("indexing", total=max(1, len(ws.transcript_ids())))

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=max(1, total))

            r = archive.index(rebuild=True, optimize=optimize, progress=progress)
    else:
        r = archive.index(optimize=optimize, log_fn=_log)
    if as_json:  # what changed, and what could not be read (then the exit code is 1 too)
        print_json(r.to_dict())
    elif rebuild:
        click.echo(f"rebuilt the index: {plural(r.turns, 'turn')} in {r.seconds:.1f} s")
    else:
        if r.up_to_date:
            click.echo("the index is up to date")
        else:
            kinds = ((r.added, "added"), (r.changed, "changed"), (r.removed, "removed"))
            parts = [f"{len(ids)} {what}" for ids, what in kinds if ids]
            n = sum(len(ids) for ids, _ in kinds)
            rec = "recording" if n == 1 else "recordings"
            click.echo(f"indexed: {', '.join(parts)} {rec}, {plural(r.turns, 'turn')} written")
    if r.exports_repaired and not as_json:
        click.echo(f"rewrote {len(r.exports_repaired)} export(s) older than their transcript")
    v = r.vectors
    if not as_json and (v.get("added") or v.get("removed") or (rebuild and v)):
        click.echo(
            f"semantic vectors: {v['passages']} passages of {len(v['added'])} recording(s), "
            f"{v['embedded']} embedded ({v['embed_seconds']:.1f} CPU s), {v['reused']} reused"
            + (f", {len(v['removed'])} recording(s) removed" if v.get("removed") else "")
        )
    if r.skipped:
        # Never silently: a recording left out of the index would vanish from search.
        for rid, why in r.skipped:
            _log(f"not indexed: {rid}: {why}")
        from confindex.errors import ConfindexError

        s = "s" if len(r.skipped) != 1 else ""
        raise ConfindexError(
            f"{len(r.skipped)} transcript{s} in {ws.transcripts} could not be read "
            "and are not searchable (listed above); fix or remove them, then rerun"
        )
    if r.optimize_seconds is not None and not as_json:
        click.echo(f"optimized in {r.optimize_seconds:.1f} s")


@click.command()
@json_option
@workspace_option
def stats(as_json: bool, ws: Any) -> None:
    """Describe the archive: recordings, hours, turns, speakers, languages, index size.

    \b
    Example:
      confindex stats --json
    """
    from confindex.api import Archive

    s = Archive(ws.root).stats().to_dict()
    if as_json:
        print_json(s)
        return
    langs = ", ".join(f"{k} ({v})" for k, v in s["languages"].items()) or "-"
    rows = [
        ("recordings", f"{s['recordings']} indexed of {s['transcripts']} transcripts"),
        # hh:mm:ss beside the hours: a small archive is not "0.0"
        ("hours", f"{s['hours']:.1f} ({hms(s['audio_seconds'])} of audio)"),
        ("turns", str(s["turns"])),
        ("speakers", str(s["speakers"])),
        ("languages", langs),
        ("index size", f"{s['index_bytes'] / 1e6:.1f} MB"),
    ]
    from rich.text import Text

    from confindex.cli.output import console, echo, text

    out = console()
    kw = max(len(k) for k, _ in rows) + 2
    for k, v in rows:  # a long value wraps under itself; no trailing blanks (rich's grid pads)
        for i, line in enumerate(text(v).wrap(out, max(10, out.width - kw))):
            line.rstrip()
            out.print(Text(f"{k if i == 0 else '':<{kw}}") + line, no_wrap=True, crop=True)
    if s["index_stale"]:
        echo("the index was built by another version: run confindex index --rebuild")
    elif s["recordings"] != s["transcripts"]:
        echo("the index differs from transcripts/: run confindex index")
