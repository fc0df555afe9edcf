"""`confindex status`, `resume` and `retry-failed`: the job ledger of bulk runs."""

from __future__ import annotations

import time
from typing import Any

import click

from ..errors import ConfindexError
from ..timefmt import hms
from .common import json_option, print_json, workspace_option


def ledger_status(ws: Any) -> dict[str, Any]:
    """Counts per stage, failures, hours done, throughput and ETA, from the ledger alone."""
    from ..ledger import ALL_STAGES, TERMINAL, Ledger

    if not (ws.state / "ledger.sqlite").exists():
        return {
            "workspace": str(ws.root),
            "total": 0,
            "counts": dict.fromkeys(ALL_STAGES, 0),
            "failed": [],
            "active": [],
            "audio_hours_done": 0.0,
            "throughput_realtime": None,
            "eta_seconds": None,
            "last_run": None,
        }
    with Ledger.of(ws) as led:
        rows = led.rows()
        counts = led.counts()
        run = led.last_run()
        live = led.live_owners()
    done = [r for r in rows if r.stage == "indexed"]
    audio_done = sum(r.audio_seconds or 0.0 for r in done)
    # Throughput over the latest run: audio indexed since it started per wall second.
    throughput = None
    if run:
        since = [r for r in done if r.finished_at and r.finished_at >= run["started_at"]]
        if since:
            end = run["finished_at"] or time.time()
            span = max(end, max(r.finished_at or 0 for r in since)) - run["started_at"]
            audio = sum(r.audio_seconds or 0.0 for r in since)
            if span > 0 and audio > 0:
                throughput = audio / span
    pending = [r for r in rows if r.stage not in TERMINAL]
    eta = None
    if pending and throughput:
        # Durations of undownloaded recordings are unknown: assume the mean of the known ones.
        known = [r.audio_seconds for r in rows if r.audio_seconds]
        mean = sum(known) / len(known) if known else 0.0
        remaining = sum(r.audio_seconds or mean for r in pending)
        eta = round(remaining / throughput, 1)
    return {
        "workspace": str(ws.root),
        "total": len(rows),
        "counts": counts,
        "failed": [
            {
                "source": r.source,
                "recording_id": r.recording_id,
                "stage": r.failed_stage,
                "error": r.error,
                "attempts": r.attempts,
            }
            for r in rows
            if r.stage == "failed"
        ],
        "duplicates": [
            {"source": r.source, "duplicate_of": r.duplicate_of}
            for r in rows
            if r.stage == "duplicate"
        ],
        "active": [
            {"source": r.source, "recording_id": r.recording_id, "activity": r.activity}
            for r in rows
            if r.owner in live
        ],
        "audio_hours_done": round(audio_done / 3600, 4),
        "audio_seconds_done": round(audio_done, 3),
        "throughput_realtime": round(throughput, 2) if throughput else None,
        "eta_seconds": eta,
        "last_run": (
            {k: run[k] for k in ("id", "started_at", "finished_at", "summary")} if run else None
        ),
    }


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
    s = ledger_status(ws)
    if as_json:
        print_json(s)
        return
    from .output import echo as out  # sources and errors quote URLs, file names and titles

    if not s["total"]:
        out(f"No recordings in the ledger of {ws.root} yet (confindex fetch …).")
        return
    c = s["counts"]
    order = ("queued", "downloaded", "transcribed", "diarized", "indexed", "duplicate", "failed")
    out(f"{s['total']} recordings: " + ", ".join(f"{c[k]} {k}" for k in order if c.get(k)))
    line = f"{s['audio_hours_done']:.2f} h of audio indexed"
    if s["throughput_realtime"]:
        line += f"; last run {s['throughput_realtime']:.1f}× realtime"
    if s["eta_seconds"] is not None:
        line += f"; ETA {hms(s['eta_seconds'])}"
    out(line)
    for a in s["active"]:
        out(f"  working: {a['recording_id'] or a['source']} ({a['activity'] or 'queued'})")
    for f in s["failed"]:
        out(f"  failed ({f['stage']}, {f['attempts']} attempt(s)): {f['source']}: {f['error']}")


def _resume_options(ws: Any, kw: dict[str, Any]):
    """Transcription options of the latest run, so that `resume` continues like it."""
    from ..bulk import options_from_dict
    from ..ledger import Ledger

    if not (ws.state / "ledger.sqlite").exists():
        raise ConfindexError(f"nothing to resume: no bulk run in {ws.root}")
    with Ledger.of(ws) as led:
        run = led.last_run()
    options = options_from_dict((run or {}).get("options") or {})
    options.force = False
    workers = kw.get("download_workers")
    if workers is None:
        workers = int(((run or {}).get("options") or {}).get("download_workers", 1))
    return options, workers


def _bulk_run_options(f):
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


def _run(ws: Any, keys: list[str] | None, kw: dict[str, Any], as_json: bool, quiet: bool) -> None:
    from ..asr import choose_device
    from ..bulk import BulkOptions
    from .fetch_cmd import run_bulk

    options, workers = _resume_options(ws, kw)
    choose_device(options.device, options.compute_type)
    bulk = BulkOptions(download_workers=workers)
    items = None
    if keys is not None:
        from ..inputs import WorkItem
        from ..ledger import Ledger

        with Ledger.of(ws) as led:
            items = [
                WorkItem(r.key, r.source, r.kind, r.parent, r.recording_id, r.title)
                for r in led.rows(keys)
            ]
    run_bulk(ws, items, options, bulk, quiet=quiet, as_json=as_json, single_error=False)


@click.command()
@_bulk_run_options
def resume(ws, as_json, quiet, **kw):
    """Finish every unfinished recording of the ledger, with the options of the last run.

    \b
    Example (after a crash, a reboot or Ctrl-C):
      confindex resume
    """
    _run(ws, None, kw, as_json, quiet)


@click.command("retry-failed")
@click.option("--requeue-only", is_flag=True, help="Mark failed recordings to retry; run nothing.")
@_bulk_run_options
def retry_failed(ws, as_json, quiet, requeue_only, **kw):
    """Try failed recordings again (a missing input file stays failed until it is fixed).

    \b
    Example:
      confindex retry-failed --download-workers 2
    """
    from ..ledger import Ledger

    if not (ws.state / "ledger.sqlite").exists():
        raise ConfindexError(f"nothing to retry: no bulk run in {ws.root}")
    with Ledger.of(ws) as led:
        keys = led.retry_failed()
    if requeue_only or not keys:
        if as_json:
            print_json({"requeued": keys})
        elif not quiet:
            click.echo(f"{len(keys)} failed recording(s) queued again")
        return
    _run(ws, keys, kw, as_json, quiet)
