"""How the API reads JSON bodies: strictly, so that what is parsed can always be stored.

orjson refuses what `json` lets through and no database can keep: lone surrogates, and numbers
such as 1e999 that only parse as infinity. Strings with NUL characters, which PostgreSQL cannot
store, are refused here too, whatever field they are in. Each refusal is a 422 saying why.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            document = orjson.loads(body)  # its JSONDecodeError is json's, which FastAPI answers
            if _holds_nul(document):
                raise json.JSONDecodeError(
                    "a string contains a NUL character", body.decode("utf-8", "replace"), 0
                )
            self._json = document
        return self._json


def _holds_nul(document: Any) -> bool:
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


class StrictJsonRoute(APIRoute):
    """The route class of every API router: its handlers see a StrictJsonRequest."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict
