"""Requests are counted under their route's template as the application includes it, whether
the router answered them or a middleware in front of it did; unknown paths and methods fall
into fixed labels, so the series stay bounded."""

from __future__ import annotations

import gc
import logging
import warnings
from collections.abc import Iterator

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from headwater.metrics import REGISTRY, HttpTally
from headwater.request_metrics import RequestMetrics

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

router = APIRouter()


@router.get("/things/{name}")
async def thing(name: str) -> PlainTextResponse:
    return PlainTextResponse("x" * 1000)


@router.get("/broken")
async def broken() -> None:
    raise RuntimeError("a bug")


class AnswersFirst:
    """Like the simple pages' fast path: answers some requests before routing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/things/cached":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"cached", "more_body": True})
            await send({"type": "http.response.body", "body": b"!"})
            return
        await self.app(scope, receive, send)


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(router, prefix="/v1")
    front = RequestMetrics(AnswersFirst(app), app)
    with TestClient(front, raise_server_exceptions=False) as test_client:
        yield test_client


def count(route: str, method: str, status: str) -> float:
    labels = {"route": route, "method": method, "status": status}
    return REGISTRY.get_sample_value("headwater_http_requests_total", labels) or 0.0


def sent(route: str) -> float:
    return (
        REGISTRY.get_sample_value("headwater_http_response_body_bytes_total", {"route": route})
        or 0.0
    )


def test_routed_and_unrouted_answers_count_under_the_included_template(client: TestClient) -> None:
    route = "/v1/things/{name}"
    before, bytes_before = count(route, "GET", "2xx"), sent(route)
    assert client.get("/v1/things/a").status_code == 200
    assert client.get("/v1/things/cached").text == "cached!"  # answered before routing
    assert count(route, "GET", "2xx") - before == 2
    assert sent(route) - bytes_before == 1000 + len("cached!")


def test_fixed_labels_for_what_no_route_takes(client: TestClient) -> None:
    unmatched = count("unmatched", "GET", "4xx")
    assert client.get("/v1/nothing/here").status_code == 404
    assert count("unmatched", "GET", "4xx") - unmatched == 1

    wrong_method = count("/v1/things/{name}", "POST", "4xx")
    assert client.post("/v1/things/a").status_code == 405
    assert count("/v1/things/{name}", "POST", "4xx") - wrong_method == 1

    other = count("/v1/things/{name}", "other", "4xx")
    assert client.request("BREW", "/v1/things/a").status_code == 405
    assert count("/v1/things/{name}", "other", "4xx") - other == 1


def test_an_error_is_counted_as_the_5xx_the_server_answers(client: TestClient) -> None:
    before = count("/v1/broken", "GET", "5xx")
    assert client.get("/v1/broken").status_code == 500
    assert count("/v1/broken", "GET", "5xx") - before == 1


def test_the_time_is_observed_per_route(client: TestClient) -> None:
    labels = {"route": "/v1/things/{name}", "method": "GET"}
    before = REGISTRY.get_sample_value("headwater_http_request_duration_seconds_count", labels)
    client.get("/v1/things/b")
    after = REGISTRY.get_sample_value("headwater_http_request_duration_seconds_count", labels)
    assert (after or 0) - (before or 0) == 1


def test_each_answered_request_has_its_access_line_with_tokens_redacted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The access line is the app's own, in uvicorn's shape, whichever server runs it: the
    requests answered before routing have theirs too, and a token never shows."""
    app = FastAPI()
    app.include_router(router, prefix="/v1")
    front = RequestMetrics(AnswersFirst(app), app, access_log=True)
    token = "AbcdefGhijklmnopqrstuvwxyz0123456789ABCDEFGH"
    with (
        caplog.at_level(logging.INFO, logger="headwater.access"),
        TestClient(front, raise_server_exceptions=False) as test_client,
    ):
        test_client.get("/v1/things/cached")
        test_client.get(f"/v1/things/a?token={token}")
        test_client.get("/v1/broken")
    lines = [record.getMessage() for record in caplog.records if record.name == "headwater.access"]
    assert lines == [
        'testclient:50000 - "GET /v1/things/cached HTTP/1.1" 200',
        'testclient:50000 - "GET /v1/things/a?token=*** HTTP/1.1" 200',
        'testclient:50000 - "GET /v1/broken HTTP/1.1" 500',
    ]
    assert token not in caplog.text


def test_no_access_line_when_the_access_log_is_off(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="headwater.access"):
        client.get("/v1/things/a")
    assert not [record for record in caplog.records if record.name == "headwater.access"]


def test_tallies_of_every_app_are_summed_with_prometheus_buckets() -> None:
    """Counted without locks per app, exported as prometheus_client would have: a duration
    on a bucket's bound falls in that bucket, the buckets are cumulative, apps add up."""
    route = "/test/tally/{name}"
    first, second = HttpTally(), HttpTally()
    first.count(route, "GET", "2xx", 0.005, 10)
    first.count(route, "GET", "2xx", 0.7, 0)
    second.count(route, "GET", "2xx", 400.0, 5)
    labels = {"route": route, "method": "GET"}

    def sample(name: str, **extra: str) -> float | None:
        return REGISTRY.get_sample_value(name, {**labels, **extra})

    assert sample("headwater_http_requests_total", status="2xx") == 3
    assert sample("headwater_http_request_duration_seconds_bucket", le="0.005") == 1
    assert sample("headwater_http_request_duration_seconds_bucket", le="0.5") == 1
    assert sample("headwater_http_request_duration_seconds_bucket", le="1.0") == 2
    assert sample("headwater_http_request_duration_seconds_bucket", le="300.0") == 2
    assert sample("headwater_http_request_duration_seconds_bucket", le="+Inf") == 3
    assert sample("headwater_http_request_duration_seconds_count") == 3
    assert sample("headwater_http_request_duration_seconds_sum") == 400.705
    assert (
        REGISTRY.get_sample_value("headwater_http_response_body_bytes_total", {"route": route})
        == 15
    )


def test_what_an_app_counted_stays_counted_when_it_is_gone() -> None:
    """A counter never goes down: an app collected (a test's, a reloaded one's) leaves its
    numbers behind."""
    route = "/test/gone/{name}"
    tally = HttpTally()
    tally.count(route, "GET", "2xx", 0.02, 7)
    labels = {"route": route, "method": "GET", "status": "2xx"}
    assert REGISTRY.get_sample_value("headwater_http_requests_total", labels) == 1
    del tally
    gc.collect()
    assert REGISTRY.get_sample_value("headwater_http_requests_total", labels) == 1
    assert (
        REGISTRY.get_sample_value("headwater_http_response_body_bytes_total", {"route": route}) == 7
    )
