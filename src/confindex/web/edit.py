"""The recording page's edit mode (issue 27): JSON routes that change a transcript.

    POST /api/recordings/ID/edit    {"turn": N, "text", "version"} or {"span": "A-B", "text", …}
    POST /api/recordings/ID/assign  {"span": "A-B", "label", "version"}
    POST /api/recordings/ID/merge   {"label", "others": [...], "version"}
    POST /api/recordings/ID/meta    {"title"?, "date"?, "channel"?, "url"?, "doi"?, "authors"?,
                                     "version"}

Each is allowed only from this server's own page (same Origin and the page's token, as
renaming) and names the version (etag) the page was showing: a save made from a version that
changed since (another tab) is a 409 conflict with a message, never a silent overwrite. The
answer is the new version and the change's one-line summary.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from confindex.errors import InputError, NotFoundError
from confindex.store.workspace import is_recording_id
from confindex.web import security

META_FIELDS = ("title", "date", "channel", "url", "doi", "authors")


def _str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise InputError(f"send JSON with {key!r} as a string")
    return value


def routes(lib: Any, token: str, json_response: Any) -> list[Route]:
    """The edit routes over the app's Library (its lock: one write or search at a time)."""

    def rid_of(request: Request) -> str:
        rid = request.path_params["rid"]
        if not is_recording_id(rid) or not lib.ws.transcript_path(rid).exists():
            raise NotFoundError("no such recording")
        return rid

    async def body_of(request: Request) -> dict[str, Any] | Response:
        if not security.origin_allowed(
            request.headers.get("origin"), request.headers.get("host")
        ) or not security.token_ok(request.headers.get("x-confindex-token"), token):
            return json_response({"error": "forbidden: not from this server's own page"}, 403)
        try:
            body = await request.json()
        except ValueError:
            raise InputError("send a JSON object") from None
        if not isinstance(body, dict):
            raise InputError("send a JSON object")
        version = body.get("version")
        if not isinstance(version, str) or not version:
            raise InputError("send the version the page shows (reload the page)")
        return body

    def answer(saved: Any) -> Response:
        return json_response(
            {
                "recording": saved.transcript.id,
                "version": saved.version,
                "change": saved.change.summary,
            }
        )

    async def edit(request: Request) -> Response:
        body = await body_of(request)
        if isinstance(body, Response):
            return body
        rid, text, a = rid_of(request), _str(body, "text"), lib.archive
        if isinstance(body.get("turn"), int):
            from confindex.store.corrections import edit_turn

            saved = await run_in_threadpool(
                lib.locked, edit_turn, lib.ws, rid, body["turn"], text, expect=body["version"]
            )
        else:
            span = _str(body, "span")
            saved = await run_in_threadpool(
                lib.locked, a.edit, rid, span, text, expect=body["version"]
            )
        return answer(saved)

    async def assign(request: Request) -> Response:
        body = await body_of(request)
        if isinstance(body, Response):
            return body
        rid = rid_of(request)
        span, label = _str(body, "span"), _str(body, "label")
        saved = await run_in_threadpool(
            lib.locked, lib.archive.assign_speaker, rid, span, label, expect=body["version"]
        )
        return answer(saved)

    async def merge(request: Request) -> Response:
        body = await body_of(request)
        if isinstance(body, Response):
            return body
        rid, label = rid_of(request), _str(body, "label")
        others = body.get("others")
        if not isinstance(others, list) or not all(isinstance(x, str) for x in others):
            raise InputError("send the labels to merge as a list: others")
        saved = await run_in_threadpool(
            lib.locked, lib.archive.merge_speakers, rid, label, *others, expect=body["version"]
        )
        return answer(saved)

    async def meta(request: Request) -> Response:
        body = await body_of(request)
        if isinstance(body, Response):
            return body
        rid = rid_of(request)
        values = {k: body[k] for k in META_FIELDS if k in body}
        if isinstance(values.get("authors"), str):
            values["authors"] = [x.strip() for x in values["authors"].split(";") if x.strip()]
        saved = await run_in_threadpool(
            lib.locked, lib.archive.set_meta, rid, expect=body["version"], **values
        )
        return answer(saved)

    return [
        Route("/api/recordings/{rid}/edit", edit, methods=["POST"]),
        Route("/api/recordings/{rid}/assign", assign, methods=["POST"]),
        Route("/api/recordings/{rid}/merge", merge, methods=["POST"]),
        Route("/api/recordings/{rid}/meta", meta, methods=["POST"]),
    ]


def version(lib: Any, rid: str) -> str:
    from confindex.store.history import etag

    return etag(lib.ws, rid)
