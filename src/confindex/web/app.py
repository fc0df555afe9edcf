"""The ASGI app of `confindex serve`: pages and a JSON API over one workspace.

Stable URLs (users bookmark them, tests rely on them):

    /  /search?q=&offset=        search page          /r/ID?t=SECONDS   recording page
    /speakers                    people               /status           the job ledger
    /api/search?q=&limit=&offset=&group=&context=     the JSON of `confindex search --json`
    /api/search?…&semantic=1                          … of `confindex search --semantic --json`
    /api/recordings/ID           the transcript JSON  /api/cite?recording=ID&at=S&style=apa
    /api/facets?q=               hits per speaker, recording, language, channel, year
    POST /api/recordings/ID/speakers/LABEL {"name"}   rename (Origin + token checked)
    POST /api/recordings/ID/edit|assign|merge|meta    corrections (web/edit.py; versioned)
    /media/ID                    the recording's local media, with Range (206)

Every page is rendered with Jinja2 autoescaping; transcripts, titles and names are never
inserted as HTML. Searches and renames run one at a time in a worker thread: Whoosh's searcher
is shared (kept open by `search.searcher`, reopened only when the index changes).
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from confindex import sanitize
from confindex.api import Archive
from confindex.errors import (
    ConfindexError,
    ConflictError,
    InputError,
    LockedError,
    NotFoundError,
    QueryError,
)
from confindex.results import LedgerStatus, RenameResult
from confindex.store.transcript import Transcript
from confindex.store.workspace import Workspace, is_recording_id
from confindex.timefmt import hms
from confindex.web import security
from confindex.web.library import Catalog, View, plural, row_of, select
from confindex.web.media import Media, find_media, youtube_id
from confindex.web.render import (
    marked,
    safe_href,
    shown_flags,
    speaker_classes,
    timeline,
    timeline_bars,
    transcript_html,
)

if TYPE_CHECKING:
    from confindex.formats.cite import Citation
    from confindex.search.hits import SearchResult
    from confindex.web.context import Match

log = logging.getLogger("confindex")
HERE = Path(__file__).parent
PAGE_SIZE = 20
MAX_LIMIT = 1000  # as `confindex search --limit`
T = TypeVar("T")


def json_response(data: Any, status: int = 200) -> Response:
    """JSON exactly as the CLI prints it (`print_json`): indented, UTF-8, C1/bidi escaped."""
    text = sanitize.json_text(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    return Response(text + "\n", status, media_type="application/json")


def error_response(request: Request, exc: ConfindexError) -> Response:
    # A known failure is never a 500 (that is for bugs): a damaged transcript in the archive
    # is 422, a lock held by another process 503.
    status = 404 if isinstance(exc, NotFoundError) else 400 if isinstance(exc, InputError) else 422
    if isinstance(exc, QueryError):
        status = 400
    if isinstance(exc, LockedError):
        status = 503
    if isinstance(exc, ConflictError):  # a save from a version another tab changed (issue 27)
        status = 409
    if request.url.path.startswith("/api/"):
        return json_response({"error": exc.message}, status)
    return PlainTextResponse(exc.message, status)


class Guard:
    """ASGI middleware: the Host check on every request, security headers on every answer."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        if not security.host_allowed(host, self.hosts):
            # A DNS-rebinding page names its own host here: it gets nothing.
            resp = PlainTextResponse("unknown Host: this server answers to 127.0.0.1", 421)
            await resp(scope, receive, send)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in security.HEADERS.items()]

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


@dataclass
class _Cached:
    stamp: str | None
    transcript: Transcript
    html: Markup | None = None  # the rendered transcript, made on first view


class Library:
    """What the app asks of the archive: the `Archive` API, the same calls the CLI makes.

    Recordings are addressed by exact id only (stable URLs: no prefix or source lookup), and
    their transcripts cached by file size and mtime: /media answers many Range requests per
    play, and a page render reuses its transcript HTML.
    """

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.archive = Archive(ws)
        self._lock = threading.Lock()  # one search or rename at a time (one shared searcher)
        self._cache: dict[str, _Cached] = {}
        self._rows: tuple[Any, Catalog] | None = None
        self._metas: dict[str, tuple[str | None, dict[str, Any]]] = {}

    def locked(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        with self._lock:
            return fn(*args, **kw)

    def _stamp(self, rid: str) -> str | None:
        try:
            st = self.ws.transcript_path(rid).stat()
        except OSError:
            return None
        return f"{st.st_size}:{st.st_mtime_ns}"

    def entry(self, rid: str) -> _Cached:
        from confindex.store.transcript import load

        if not is_recording_id(rid):
            raise NotFoundError("no such recording")
        stamp = self._stamp(rid)
        hit = self._cache.get(rid)
        if hit is not None and hit.stamp == stamp and stamp is not None:
            return hit
        t = load(self.ws, rid)
        if len(self._cache) > 64:
            self._cache.clear()
        hit = self._cache[rid] = _Cached(stamp, t)
        return hit

    def transcript(self, rid: str) -> Transcript:
        return self.entry(rid).transcript

    def media(self, rid: str) -> Media | None:
        """Looked for on every request (a few stats): a file put back, or fetched again at a
        new path, plays without a restart."""
        try:
            t = self.entry(rid).transcript
        except ConfindexError:
            return None
        return find_media(self.ws.root, t.recording)

    def search(
        self,
        q: str,
        limit: int,
        offset: int,
        group: bool = False,
        context: int = 0,
        semantic: bool = False,
    ) -> SearchResult:
        return self.locked(
            self.archive.search,
            q,
            limit=limit,
            offset=offset,
            group=group,
            context=context,
            semantic=semantic,
        )

    def related(self, rid: str, at: float, limit: int = 10) -> tuple[Any, list[Any]]:
        return self.locked(self.archive.related, rid, at, limit=limit)

    def cite(self, rid: str, at: float) -> Citation:
        return self.archive.cite(self.transcript(rid), at)

    def rename(self, rid: str, label: str, name: str) -> RenameResult:
        # Exact ids only: the Archive would also take a prefix or a source URL.
        if not is_recording_id(rid) or not self.ws.transcript_path(rid).exists():
            raise NotFoundError("no such recording")
        return self.locked(self.archive.rename_speaker, rid, label, name)

    def rows(self) -> Catalog:
        """Every recording as the library shows it, rebuilt only when the index's metadata
        or the transcripts folder changed (a page of 10,000 recordings then costs a sort)."""
        from confindex.search import index
        from confindex.store.transcript import load

        known = index.load_recordings(self.ws)
        try:
            listing = self.ws.transcripts.stat().st_mtime_ns
        except OSError:
            listing = None
        key = (id(known), listing)
        if self._rows is not None and self._rows[0] == key:
            return self._rows[1]
        rows = []
        for rid in self.ws.transcript_ids():
            meta = known.get(rid)
            if meta is None or "flags" not in meta:
                # Not indexed yet, or indexed by a version without flag counts: read it once.
                stamp = self._stamp(rid)
                cached = self._metas.get(rid)
                if cached is None or cached[0] != stamp:
                    try:
                        cached = (stamp, index.recording_meta(load(self.ws, rid)))
                    except ConfindexError:
                        continue  # a damaged transcript: `index` reports it
                    self._metas[rid] = cached
                meta = cached[1]
            rows.append(row_of(meta, rid in known))
        self._rows = (key, Catalog(rows))
        return self._rows[1]

    def in_context(self, t: Transcript, q: str) -> list[Match]:
        """The passages of `q` on this recording's page (the turns its search finds here)."""
        from confindex.search import index
        from confindex.search.hits import _archive_info
        from confindex.web.context import MAX_TURNS, matches
        from confindex.web.facets import refine

        result = self.search(refine(q, f'recording:"{t.id}"'), MAX_TURNS, 0)
        turns = {h.turn_id for h in result.hits if h.recording_id == t.id}
        if not turns:
            return []
        langs = _archive_info(index.load_recordings(self.ws))[0]
        return matches(t, q, turns, langs)

    def people(self) -> tuple[list[Any], int]:
        return self.archive.archive_speakers()

    def status(self) -> LedgerStatus:
        return self.archive.status()


# ---------------------------------------------------------------------------------------------
# View helpers (pure)


def _int_param(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"{name} must be a whole number, not {raw!r}") from None
    if not lo <= value <= hi:
        raise InputError(f"{name} must be between {lo} and {hi}")
    return value


def _flag_param(request: Request, name: str) -> bool:
    return request.query_params.get(name, "") in ("1", "true", "yes", "on")


def _float_param(raw: str | None, name: str) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        from confindex.timefmt import parse_time

        return parse_time(raw)
    if not math.isfinite(value):
        raise InputError(f"{name} must be a number of seconds")
    return value


# ---------------------------------------------------------------------------------------------


def create_app(ws: Workspace, *, bind_host: str = "127.0.0.1") -> ASGIApp:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    from confindex.web.edit import routes as edit_routes
    from confindex.web.redecode import routes as redecode_routes

    lib = Library(ws)
    token = secrets.token_urlsafe(32)
    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(hms=hms, token=token, workspace=str(ws.root), plural=plural)

    def hit_url(rid: str, at: float, q: str = "", offset: int = 0, semantic: bool = False) -> str:
        """A hit's page: the exact second (78.28, not 78), and the search to come back to."""
        params = {"t": f"{at:.2f}"}
        if q:
            params["q"] = q
            if offset:
                params["offset"] = str(offset)
            if semantic:
                params["semantic"] = "1"
        return f"/r/{rid}?{urlencode(params)}"

    env.globals["hit_url"] = hit_url

    def page(template: str, code: int = 200, **ctx: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(template).render(**ctx), code)

    async def search_page(request: Request) -> Response:
        q = request.query_params.get("q", "").strip()
        semantic = _flag_param(request, "semantic")
        ctx: dict[str, Any] = {
            "q": q,
            "error": None,
            "result": None,
            "offset": 0,
            "semantic": semantic,
        }
        if not q:
            return page("search.html", **ctx)
        try:
            offset = _int_param(request, "offset", 0, 0, 10**6)
            result = await run_in_threadpool(lib.search, q, PAGE_SIZE, offset, False, 1, semantic)
        except ConfindexError as exc:  # a malformed query: the CLI's one-line hint
            ctx["error"] = exc.message
            return page("search.html", code=400, **ctx)
        media = {h.recording_id: lib.media(h.recording_id) is not None for h in result.hits}

        ctx.update(
            result=result,
            offset=offset,
            page_size=PAGE_SIZE,
            media=media,
            marked=marked,
        )
        return page("search.html", **ctx)

    async def library_page(request: Request) -> Response:
        if request.query_params.get("q"):  # an old bookmark of `/?q=`: the search page
            return await search_page(request)
        try:
            view = View.of(request.query_params)
        except ConfindexError as exc:
            return page("error.html", code=400, error=exc)
        rows = await run_in_threadpool(lib.rows)
        shown = select(rows, view)
        return page("library.html", view=view, shown=shown, choices=rows.choices())

    async def recording_page(request: Request) -> Response:
        rid = request.path_params["rid"]
        try:
            entry = await run_in_threadpool(lib.entry, rid)
            at = _float_param(request.query_params.get("t"), "t") or 0.0
        except ConfindexError as exc:
            code = 404 if isinstance(exc, NotFoundError) else 400
            return page("error.html", code=code, error=exc)
        t = entry.transcript
        media = await run_in_threadpool(lib.media, rid)
        classes = speaker_classes(t)
        from confindex.formats.links import link
        from confindex.store.speakers import list_speakers

        speakers = [(s, classes.get(s.label, 0)) for s in list_speakers(t)]
        if entry.html is None:
            entry.html = await run_in_threadpool(transcript_html, t, classes)
        tl = timeline(t, classes)
        from confindex.store.edits import effective_meta, verified_fraction
        from confindex.web.edit import version

        q = request.query_params.get("q", "").strip()
        found: list[Match] = []
        back = None
        if q:
            back_params = {"q": q}
            if request.query_params.get("offset", "").isdigit():
                back_params["offset"] = request.query_params["offset"]
            if _flag_param(request, "semantic"):
                back_params["semantic"] = "1"
            back = "/search?" + urlencode(back_params)
            try:
                found = await run_in_threadpool(lib.in_context, t, q)
            except ConfindexError:
                found = []  # a query that no longer parses: the page without its matches
        return page(
            "recording.html",
            t=t,
            rec=t.recording,
            at=max(0.0, at),
            media=media,
            youtube=youtube_id(t.recording) if media is None else None,
            source_link=safe_href(link(t.recording, at)),
            speakers=speakers,
            transcript=entry.html,
            timeline=tl,
            bars=timeline_bars(tl),
            q=q,
            back=back,
            matches=[m.to_dict() for m in found],
            flags=shown_flags(t),
            flags_json=[
                {"start": f.start, "end": f.end, "kind": f.kind, "reason": f.reason}
                for f in t.flags
            ],
            version=await run_in_threadpool(version, lib, t.id),
            meta=effective_meta(t),
            verified=verified_fraction(t),
            auto_labels=set(t.auto_names),
        )

    async def speakers_page(request: Request) -> Response:
        people, unnamed = await run_in_threadpool(lib.people)
        titles = {r.id: r.title for r in (await run_in_threadpool(lib.rows)).rows}
        return page(
            "speakers.html", people=people, unnamed=unnamed, titles=titles, library=View().url
        )

    async def status_page(request: Request) -> Response:
        return page("status.html", status=await run_in_threadpool(lib.status))

    async def api_search(request: Request) -> Response:
        q = request.query_params.get("q", "").strip()
        if not q:
            raise QueryError("give a query: /api/search?q=WORDS")
        limit = _int_param(request, "limit", 10, 1, MAX_LIMIT)
        offset = _int_param(request, "offset", 0, 0, 10**9)
        group = request.query_params.get("group", "") in ("1", "true", "yes")
        context = _int_param(request, "context", 0, 0, 20)
        semantic = _flag_param(request, "semantic")
        result = await run_in_threadpool(lib.search, q, limit, offset, group, context, semantic)
        return json_response(result.to_dict(offset))

    async def _related(request: Request, limit: int) -> tuple[str, Any, list[Any]]:
        rid = request.query_params.get("recording", "")
        at = _float_param(request.query_params.get("t"), "t") or 0.0
        if not rid:
            raise QueryError("give a passage: /related?recording=ID&t=SECONDS")
        here, hits = await run_in_threadpool(lib.related, rid, max(0.0, at), limit)
        return rid, here, hits

    async def related_page(request: Request) -> Response:
        """More like this: the passages of other recordings closest in meaning to one."""
        from confindex.search.hits import SearchResult

        try:
            _rid, here, hits = await _related(request, PAGE_SIZE)
        except ConfindexError as exc:
            code = 404 if isinstance(exc, NotFoundError) else 400
            return page("error.html", code=code, error=exc)
        label = f"more like “{here.snippet}” ({here.title}, {hms(here.time)})"
        result = SearchResult(hits, len(hits), label)
        media = {h.recording_id: lib.media(h.recording_id) is not None for h in hits}
        return page(
            "search.html",
            q=label,
            result=result,
            offset=0,
            page_size=PAGE_SIZE,
            media=media,
            marked=marked,
            related=True,
            semantic=True,
        )

    async def api_related(request: Request) -> Response:
        limit = _int_param(request, "limit", 10, 1, 200)
        _rid, here, hits = await _related(request, limit)
        return json_response({"passage": here.to_dict(), "related": [h.to_dict() for h in hits]})

    async def api_facets(request: Request) -> Response:
        from confindex.web.facets import FACET_HITS, as_json

        q = request.query_params.get("q", "").strip()
        if not q:
            raise QueryError("give a query: /api/facets?q=WORDS")
        result = await run_in_threadpool(lib.search, q, FACET_HITS, 0)
        return json_response(as_json(result.query, result.total, result.hits))

    async def api_recording(request: Request) -> Response:
        t = await run_in_threadpool(lib.transcript, request.path_params["rid"])
        return json_response(t.to_dict())

    async def api_cite(request: Request) -> Response:
        from confindex.formats.cite import STYLES

        rid = request.query_params.get("recording", "")
        span = request.query_params.get("span")
        at = _float_param(request.query_params.get("at"), "at")
        if at is None and not span:
            raise InputError("give the moment: /api/cite?recording=ID&at=SECONDS (or span=A-B)")
        style = request.query_params.get("style", "apa")
        if style not in STYLES:
            raise InputError(f"unknown citation style {style!r}: use {', '.join(STYLES)}")
        if span:  # exactly the words selected (issue 27)
            c = await run_in_threadpool(lambda: lib.archive.cite(lib.transcript(rid), span=span))
        else:
            c = await run_in_threadpool(lib.cite, rid, at)
        return json_response({"style": style, "text": c.render(style), "citation": c.to_dict()})

    async def api_rename(request: Request) -> Response:
        # Changes the archive: only from our own page (same Origin, and the page's token).
        if not security.origin_allowed(
            request.headers.get("origin"), request.headers.get("host")
        ) or not security.token_ok(request.headers.get("x-confindex-token"), token):
            return json_response({"error": "forbidden: not from this server's own page"}, 403)
        from confindex.safeio import loads_json

        raw = await request.body()
        try:
            # Size and depth limits: a deeply nested body raised RecursionError (HTTP 500).
            if len(raw) > 65536:
                raise ValueError("too large")
            body = loads_json(raw, "request body", max_depth=8)
        except (ValueError, ConfindexError):
            raise InputError('send JSON: {"name": "New Name"}') from None
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str):
            raise InputError('send JSON: {"name": "New Name"}')
        rid, label = request.path_params["rid"], request.path_params["label"]
        done = await run_in_threadpool(lib.rename, rid, label, name)
        return json_response({**done.to_dict(), "name": done.name or done.label})

    async def media(request: Request) -> Response:
        # The path comes from the transcript, never from the request: an id that is not a
        # recording (`..%2Fetc%2Fpasswd`) or names no local file is 404.
        rid = request.path_params["rid"]
        m = await run_in_threadpool(lib.media, rid) if is_recording_id(rid) else None
        if m is None:
            return PlainTextResponse("no local media for this recording", 404)
        return FileResponse(m.path, media_type=m.media_type, content_disposition_type="inline")

    async def on_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConfindexError)
        return error_response(request, exc)

    routes = [
        Route("/", library_page),
        Route("/search", search_page),
        Route("/r/{rid:path}", recording_page),
        Route("/speakers", speakers_page),
        Route("/status", status_page),
        Route("/api/search", api_search),
        Route("/related", related_page),
        Route("/api/related", api_related),
        Route("/api/cite", api_cite),
        Route("/api/facets", api_facets),
        Route("/api/recordings/{rid}/speakers/{label}", api_rename, methods=["POST"]),
        *redecode_routes(lib, token, json_response),
        *edit_routes(lib, token, json_response),
        Route("/api/recordings/{rid}", api_recording),
        Route("/media/{rid:path}", media, methods=["GET", "HEAD"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={ConfindexError: on_error})
    app.state.token = token
    return Guard(app, security.allowed_hosts(bind_host))
