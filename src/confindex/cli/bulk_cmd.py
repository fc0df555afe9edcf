"""`confindex status`, `resume` and `retry-failed`: the job ledger of bulk runs."""

from __future__ import annotations

from typing import Any

import click

from confindex.api import Archive
from confindex.cli.common import json_option, print_json, workspace_option
from confindex.cli.output import plural
from confindex.timefmt import hms


@click.command()
@json_option
@workspace_option
def status(ws, as_json):
    """Progress of bulk fetches: recordings per stage, failures, hours done, throughput, ETA.

    \b
    Examples:
      confindex status
      confindex status --json | jq .counts
    """
    s = Archive(ws.root).status().to_dict()
    if as_json:
        print_json(s)
        return
    from confindex.cli.output import (
        echo as out,  # sources and errors quote URLs, file names and titles
    )

    if not s["total"]:
        out(f"No recordings in the ledger of {ws.root} yet (confindex fetch …).")
        return
    c = s["counts"]
    order = ("queued", "downloaded", "transcribed", "diarized", "indexed", "duplicate", "failed")
    out(
        f"{plural(s['total'], 'recording')}: " + ", ".join(f"{c[k]} {k}" for k in order if c.get(k))
    )
    line = f"{s['audio_hours_done']:.2f} h of audio indexed"
    if s["throughput_realtime"]:
        line += f"; last run {s['throughput_realtime']:.1f}× realtime"
    if s["eta_seconds"] is not None:
        line += f"; ETA {hms(s['eta_seconds'])}"
    out(line)
    from confindex.cli.output import hanging

    for a in s["active"]:
        hanging(f"working: {a['recording_id'] or a['source']} ({a['activity'] or 'queued'})")
    for f in s["failed"]:
        tries = plural(f["attempts"], "attempt")
        hanging(f"failed ({f['stage']}, {tries}): {f['source']}: {f['error']}")


def _bulk_run_options(f):
    from confindex.cli.fetch_cmd import executor_options

    f = executor_options(f)
    opts = [
        click.option(
            "--download-workers",
            type=click.IntRange(min=0),
            default=None,
            help="Downloads running ahead of transcription (default: as the last run).",
        ),
        click.option("--quiet", "-q", is_flag=True, help="No progress output."),
        json_option,
        workspace_option,
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _run(ws: Any, run, as_json: bool, quiet: bool) -> None:
    from confindex.cli.fetch_cmd import run_bulk

    run_bulk(ws, run, quiet=quiet, as_json=as_json, single_error=False)


@click.command()
@_bulk_run_options
def resume(ws, as_json, quiet, **kw):
    """Finish every unfinished recording of the ledger, with the options of the last run.

    \b
    Example (after a crash, a reboot or Ctrl-C):
      confindex resume
    """
    from confindex.cli.fetch_cmd import executor_from

    archive = Archive(ws)
    workers, ex = kw.get("download_workers"), executor_from(kw)
    _run(
        ws,
        lambda r: archive.resume(download_workers=workers, executor=ex, reporter=r),
        as_json,
        quiet,
    )


@click.command("retry-failed")
@click.option("--requeue-only", is_flag=True, help="Mark failed recordings to retry; run nothing.")
@_bulk_run_options
def retry_failed(ws, as_json, quiet, requeue_only, **kw):
    """Try failed recordings again (a missing input file stays failed until it is fixed).

    \b
    Example:
      confindex retry-failed --download-workers 2
    """
    archive = Archive(ws)
    keys = archive.retry_failed(requeue_only=True)
    if requeue_only or not keys:
        if as_json:
            print_json({"requeued": keys})
        elif not quiet:
            click.echo(f"{plural(len(keys), 'failed recording')} queued again")
        return
    from confindex.cli.fetch_cmd import executor_from

    workers, ex = kw.get("download_workers"), executor_from(kw)
    _run(
        ws,
        lambda r: archive.rerun(keys, download_workers=workers, executor=ex, reporter=r),
        as_json,
        quiet,
    )
