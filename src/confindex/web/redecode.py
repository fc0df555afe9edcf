"""Decode a flagged passage again from the recording page (`transcribe --span`, issue 31):
POST /api/recordings/ID/redecode {"start", "end", "hotwords", "beam_size", "language"} runs the
span re-decode and answers what the passage now reads and which flags are left there. Like a
rename, it changes the archive: only from the server's own page (Origin + token)."""

from __future__ import annotations

import math
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from confindex import sanitize
from confindex.errors import ConfindexError, InputError, NotFoundError
from confindex.store.workspace import is_recording_id
from confindex.web import security

MAX_SPAN = 300.0  # s: one re-decode from the page (the CLI takes any span)


def redecode(lib: Any, rid: str, start: float, end: float, options: dict[str, Any]) -> dict:
    """Decode [start, end] again (`transcribe --span`) and say what it now reads."""
    span = f"{start:.3f}-{end:.3f}"
    lib.locked(lib.archive.transcribe_span, rid, span, **options)
    t = lib.transcript(rid)
    words = [
        w.text.strip()
        for turn in t.turns
        for w in turn.words
        if start <= (w.start + w.end) / 2 <= end and w.text.strip()
    ]
    flags = [f for f in t.flags if f.end > start and f.start < end]
    return {
        "recording": rid,
        "start": start,
        "end": end,
        "text": " ".join(words),
        "flags": [{"kind": f.kind, "reason": f.reason, "score": f.score} for f in flags],
    }


def routes(lib: Any, token: str, json_response: Any) -> list[Route]:
    async def api_redecode(request: Request) -> Response:
        if not security.origin_allowed(
            request.headers.get("origin"), request.headers.get("host")
        ) or not security.token_ok(request.headers.get("x-confindex-token"), token):
            return json_response({"error": "forbidden: not from this server's own page"}, 403)
        from confindex.safeio import loads_json

        raw = await request.body()
        try:  # size and depth limits, as for a rename
            body = loads_json(raw, "request body", max_depth=8) if len(raw) <= 65536 else None
        except (ValueError, ConfindexError):
            body = None
        rid = request.path_params["rid"]
        if not is_recording_id(rid) or not lib.ws.transcript_path(rid).exists():
            raise NotFoundError("no such recording")
        start, end, options = redecode_request(body)
        done = await run_in_threadpool(redecode, lib, rid, start, end, options)
        return json_response(done)

    return [Route("/api/recordings/{rid}/redecode", api_redecode, methods=["POST"])]


def redecode_request(body: Any) -> tuple[float, float, dict[str, Any]]:
    """(start, end, options) of a "decode again" request, checked (InputError otherwise)."""
    if not isinstance(body, dict):
        raise InputError('send JSON: {"start": S, "end": S, "hotwords": "…", "beam_size": 5}')
    try:
        start, end = float(body.get("start")), float(body.get("end"))
    except (TypeError, ValueError):
        raise InputError("start and end must be seconds") from None
    if not (math.isfinite(start) and math.isfinite(end)) or not 0 <= start < end:
        raise InputError("give a span: 0 <= start < end")
    if end - start > MAX_SPAN:
        raise InputError(f"decode at most {MAX_SPAN:.0f} s at once from the page")
    options: dict[str, Any] = {}
    hot = body.get("hotwords")
    if hot not in (None, ""):
        if not isinstance(hot, str) or len(hot) > 500:
            raise InputError("hotwords must be text (at most 500 characters)")
        options["hotwords"] = " ".join(sanitize.terminal(hot).split())
    beam = body.get("beam_size")
    if beam not in (None, ""):
        try:
            beam = int(beam)
        except (TypeError, ValueError):
            raise InputError("beam_size must be a whole number") from None
        if not 1 <= beam <= 20:
            raise InputError("beam_size must be between 1 and 20")
        options["beam_size"] = beam
    lang = body.get("language")
    if lang not in (None, "", "auto"):
        if not isinstance(lang, str) or not lang.isalpha() or len(lang) > 3:
            raise InputError("language must be a code such as fr or en")
        options["language"] = lang.lower()
    return start, end, options
