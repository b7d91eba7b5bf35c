"""The desk's web application: one FastAPI app serving HTML pages (:mod:`desk.pages`) and the
JSON API (:mod:`desk.api`, OpenAPI docs at ``/docs``) over the SQL store. Who may do what is
:mod:`desk.access`; this module adds what every response gets: CSP / no-framing headers,
capped request bodies, cross-site writes refused (a browser's ``Origin`` must be this site),
request metrics, and the session secret (``$FRAUDSTREAM_DESK_SECRET``)."""

from __future__ import annotations

import logging
import math
import os
import secrets
import time
from datetime import UTC
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from starlette.datastructures import Headers
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from desk import api, case_api, case_pages, docs, pages
from desk.access import UNSAFE
from desk.auth import LoginLimiter, Sessions
from desk.card_precision import capacity as desk_capacity
from desk.cases import waited_text
from desk.observe import DeskMetrics
from desk.params import BadParam
from desk.work import WorkError
from store.settings import Maturity, maturity

HERE = Path(__file__).parent
SECRET_ENV = "FRAUDSTREAM_DESK_SECRET"  # noqa: S105 (a variable name)
MAX_BODY = 256 * 1024
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI (/docs, desk/docs.py) is served by the desk; it sets inline styles on its elements.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
log = logging.getLogger("fraudstream.desk")


def desk_secret() -> str:
    """``$FRAUDSTREAM_DESK_SECRET``, or an ephemeral secret (sessions end with the process)."""
    secret = os.environ.get(SECRET_ENV, "")
    if len(secret) >= 16:
        return secret
    log.warning(
        "%s is unset or shorter than 16 characters: using an ephemeral secret "
        "(every session ends when the desk restarts)",
        SECRET_ENV,
    )
    return secrets.token_urlsafe(32)


class _BodyLimit:
    """Request bodies over :data:`MAX_BODY` bytes are refused (413) whatever their framing: a
    declared ``Content-Length`` at once, a chunked body as soon as the bytes read so far pass the
    limit — before anyone is authenticated, and without reading the rest."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if not length.isdigit() or int(length) > MAX_BODY:
            if length:  # a length we cannot trust, or too large: never read the body
                await _too_large(send)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > MAX_BODY:
                    raise HTTPException(413, f"request body over {MAX_BODY} bytes")
            return message

        await self.app(scope, counted, send)


async def _too_large(send: Send) -> None:
    await JSONResponse({"detail": f"request body over {MAX_BODY} bytes"}, status_code=413)(
        {"type": "http"}, _nothing, send
    )


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


class _Guard(BaseHTTPMiddleware):
    """Security headers on every response; cross-site writes refused."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if request.method in UNSAFE and not _same_origin(request):
            response: Response = JSONResponse(
                {"detail": "cross-site request refused"}, status_code=403
            )
        else:
            started = time.perf_counter()
            response = await call_next(request)
            route = request.scope.get("route")
            request.app.state.metrics.observe(
                getattr(route, "path", "other"), response.status_code, time.perf_counter() - started
            )
        is_docs = request.url.path == "/docs"
        response.headers["Content-Security-Policy"] = DOCS_CSP if is_docs else CSP
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers.setdefault("Cache-Control", "no-store")
        return response


def validation_message(exc: RequestValidationError) -> str:
    """FastAPI's validation errors as one line naming the parameter: ``model_version: Input
    should be less than or equal to 2147483647`` (the first error; the rest counted)."""
    errors = exc.errors()
    if not errors:
        return "bad request"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or "authorization" in request.headers:  # no browser, or no cookie in play
        return True
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def _when(value: Any) -> str:
    """A stored timestamp as ``YYYY-MM-DD HH:MM:SS`` UTC (SQLite hands them back naive)."""
    if value is None:
        return "–"
    if getattr(value, "tzinfo", None) is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S") if hasattr(value, "strftime") else str(value)


def score_text(score: float) -> str:
    """A score with enough digits to rank scores near 1: three decimals below 0.99, then the
    digits up to the first non-9 and two more (0.99934, 0.99999680); closer to 1 than 1e-9 the
    distance to 1 (``1 − 3.2e-13``), which float64 scores keep up to a logit of ~37."""
    if score < 0.99 or score >= 1.0:
        return f"{score:.3f}"
    gap = 1.0 - score
    if gap < 1e-9:
        return f"1 − {gap:.1e}"
    return f"{score:.{2 - math.floor(math.log10(gap))}f}"


def create_app(
    engine: Engine,
    *,
    secret: str | None = None,
    limiter: LoginLimiter | None = None,
    mature: Maturity | None = None,
    capacity: int | None = None,
) -> FastAPI:
    """The desk over ``engine`` (already migrated: :func:`store.db.connect`); its matured
    figures use ``mature`` (default: the deployment's, :func:`store.settings.maturity`), its
    card precision the team's daily ``capacity`` (default: :func:`desk.card_precision.capacity`)."""
    app = FastAPI(
        title="fraudstream desk",
        version="1",
        description="The fraud-ops desk: alert queue, detail, work, dashboard. "
        "Authenticate with `Authorization: Bearer fsd_…` "
        "(`fraudstream desk token add USER`).",
        docs_url=None,  # desk.docs serves /docs from the package (no CDN)
        redoc_url=None,
    )
    app.state.engine = engine
    app.state.maturity = mature or maturity()
    app.state.capacity = capacity or desk_capacity()
    app.state.sessions = Sessions(secret or desk_secret())
    app.state.limiter = limiter or LoginLimiter()
    app.state.metrics = DeskMetrics()
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.state.templates.env.filters["when"] = _when
    app.state.templates.env.filters["score"] = score_text
    app.state.templates.env.filters["waited"] = waited_text
    app.add_middleware(_BodyLimit)  # counts bytes as they are read, before authentication
    app.add_middleware(_Guard)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.exception_handler(WorkError)
    async def _work_error(request: Request, exc: WorkError) -> Response:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(BadParam)
    async def _bad_param(request: Request, exc: BadParam) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return JSONResponse({"detail": validation_message(exc)}, status_code=400)

    @app.get("/metrics", include_in_schema=False)
    def _metrics() -> Response:
        return Response(
            app.state.metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    app.include_router(api.router)
    app.include_router(case_api.router)
    app.include_router(docs.router)
    app.include_router(pages.router)
    app.include_router(case_pages.router)
    return app
