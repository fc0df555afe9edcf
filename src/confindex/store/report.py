"""Figures about a workspace: the ledger's progress (`status`) and the archive (`stats`).

Plain dictionaries built from the ledger and the index metadata, with no transcript I/O, so
that they stay fast on big archives; `Archive.status()`/`stats()` wrap them in dataclasses.
"""

from __future__ import annotations

import os
import time
from typing import Any


def ledger_status(ws: Any) -> dict[str, Any]:
    """Counts per stage, failures, hours done, throughput and ETA, from the ledger alone."""
    from confindex.store.ledger import ALL_STAGES, TERMINAL, Ledger

    if not ws.ledger_path.exists():
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
    # A read-only archive (a copy on read-only media) still shows its progress.
    read_only = not os.access(ws.state, os.W_OK)
    with Ledger.of(ws, read_only=read_only) as led:
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


def archive_stats(ws: Any) -> dict[str, Any]:
    """Figures of the indexed archive (from the index's recording metadata, no transcript I/O)."""
    from confindex.search import index as ix

    recs = ix.load_recordings(ws)
    speakers = set()
    langs: dict[str, int] = {}
    for r in recs.values():
        for label, name in (r.get("speakers") or {}).items():
            # A renamed speaker is one person across recordings; bare labels are per recording.
            speakers.add(name if name and name != label else f"{r['id']}:{label}")
        for lang in r.get("languages") or ([r["language"]] if r.get("language") else []):
            langs[lang] = langs.get(lang, 0) + 1
    seconds = sum(float(r.get("duration") or 0) for r in recs.values())
    return {
        "workspace": str(ws.root),
        "recordings": len(recs),
        "transcripts": len(ws.transcript_ids()),
        "hours": round(seconds / 3600, 2),
        "audio_seconds": round(seconds, 1),
        "turns": ix.doc_count(ws),
        "speakers": len(speakers),
        "languages": dict(sorted(langs.items(), key=lambda kv: -kv[1])),
        "index_bytes": ix.size_bytes(ws),
        "index_stale": ix.needs_rebuild(ws),
    }
