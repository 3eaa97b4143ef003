"""The floor for serving a page from Python on this machine: a bare ASGI app under uvicorn
(no framework, no access log) that answers every request with the same bytes.

    python -m uvicorn bench.constant_asgi:app   (with HEADWATER_BENCH_BODY=<file>)
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.types import Receive, Scope, Send

BODY = Path(os.environ["HEADWATER_BENCH_BODY"]).read_bytes()
HEADERS = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", b"%d" % len(BODY))]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
