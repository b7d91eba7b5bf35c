"""The API's documentation page (``/docs``): Swagger UI served by the desk itself, so it works
without internet. Its script and stylesheet come from the installed ``fastapi-offline`` package
(Swagger UI 5, which reads OpenAPI 3.1); the page is ours, with the start-up script in
``desk/static/docs.js`` — no inline script, no CDN, so the page's CSP needs neither."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

router = APIRouter(include_in_schema=False)
#: The Swagger UI files the page loads (nothing else of the package is served).
ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>fraudstream desk API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head><body>
<div id="swagger-ui" data-openapi="/openapi.json"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script>
</body></html>
"""


def assets_dir() -> Path:
    """Where the installed Swagger UI files are (the ``fastapi-offline`` package's)."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


@router.get("/docs")
def docs() -> HTMLResponse:
    return HTMLResponse(PAGE)


@router.get("/docs/assets/{name}")
def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise HTTPException(404, f"no asset {name!r}")
    response = FileResponse(assets_dir() / name, media_type=ASSETS[name])
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
