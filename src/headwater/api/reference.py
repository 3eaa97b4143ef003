"""The API's reference pages, `/docs` (Swagger UI) and `/redoc` (ReDoc), whole without a
network: their scripts and styles are the ones the `fastapi-offline` package installs, served
by Headwater under `/docs/assets/`, and the pages run no inline script (the Content-Security-
Policy of every page allows none), so Swagger UI is started by Headwater's own
`/static/api-reference.js`. FastAPI's own pages load both from a CDN, which an air-gapped site
cannot reach."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from headwater.guards import CONTENT_SECURITY_POLICY

ASSETS = "/docs/assets"
# ReDoc styles its elements with <style> blocks it writes as it renders (styled-components)
# and searches in a worker it starts from a blob: URL.
REDOC_POLICY = CONTENT_SECURITY_POLICY.replace(
    "style-src 'self';", "style-src 'self' 'unsafe-inline'; worker-src 'self' blob:;"
)

_SWAGGER_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}}: REST API</title>
<link rel="icon" href="{ASSETS}/favicon.png">
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{{openapi}}"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="/static/api-reference.js"></script>
</body>
</html>
"""

_REDOC_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}}: REST API</title>
<link rel="icon" href="{ASSETS}/favicon.png">
</head>
<body>
<redoc spec-url="{{openapi}}"></redoc>
<script src="{ASSETS}/redoc.standalone.js"></script>
</body>
</html>
"""


def assets_directory() -> Path:
    return Path(str(importlib.resources.files("fastapi_offline") / "static"))


def install(app: FastAPI) -> None:
    """Mount the assets and add both pages; the app is made with docs_url=redoc_url=None."""
    openapi = app.openapi_url or "/openapi.json"
    swagger = _SWAGGER_PAGE.format(title=app.title, openapi=openapi)
    redoc = _REDOC_PAGE.format(title=app.title, openapi=openapi)
    app.mount(ASSETS, StaticFiles(directory=assets_directory()), name="api-reference-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(swagger)

    @app.get("/redoc", include_in_schema=False)
    async def redoc_page() -> HTMLResponse:
        return HTMLResponse(redoc, headers={"Content-Security-Policy": REDOC_POLICY})
