"""Prometheus metrics of one process: the registry, the counters code feeds as things happen,
and the gauges read from the database when Prometheus scrapes.

Each process (a `serve` replica, a `worker`) counts alone and is scraped on its own; what is
read from the database (runs by state, the queue) is the same from every process, so sum the
counters over processes and take `max` of those gauges.

To add a metric: a counter or gauge fed by code goes in `REGISTRY` below, like
`UPSTREAM_BYTES`; a figure read from the database at scrape time goes in `DatabaseGauges.read`
(it runs in a thread, at most once per `ttl` seconds however often Prometheus asks).
"""

from __future__ import annotations

import bisect
import datetime as dt
import hmac
import itertools
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from headwater import __version__
from headwater.db import Database, utcnow
from headwater.models import Blob, JobKind, Run, RunState

log = logging.getLogger(__name__)

# Without it every labelled counter also exports a `_created` series: twice the series.
disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)
Info("headwater", "The Headwater version this process runs.", registry=REGISTRY).info(
    {"version": __version__}
)

# HTTP, counted by request_metrics.RequestMetrics in HttpTally's below. `route` is the route's
# template (/api/repo/{channel}/{rest:path}), never the requested path, so the series stay
# bounded.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class HttpTally:
    """One app's HTTP series: requests by (route, method, status class), their durations by
    (route, method) in HTTP_BUCKETS, body bytes by route.

    Plain numbers, written by the one thread that runs the app's requests and read by the
    scrape from another: prometheus_client's Counter and Histogram take a lock for every
    increment, four a request, 4% of the interpreter's time in a profile of cached answers.
    Every app in the process is one more tally (HttpTallies sums them). One writer a
    tally: an app serves its requests from one event loop.
    """

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}
        self.durations: dict[tuple[str, str], list[float]] = {}  # per bucket, +Inf, then sum
        self.body_bytes: dict[str, int] = {}
        HTTP_TALLIES.add(self)

    def count(self, route: str, method: str, status: str, elapsed: float, sent: int) -> None:
        key = (route, method, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        observed = self.durations.get((route, method))
        if observed is None:
            observed = self.durations[(route, method)] = [0.0] * (len(HTTP_BUCKETS) + 2)
        observed[bisect.bisect_left(HTTP_BUCKETS, elapsed)] += 1
        observed[-1] += elapsed
        if sent:
            self.body_bytes[route] = self.body_bytes.get(route, 0) + sent


class HttpTallies:
    """The collector of every HttpTally made in this process. They are kept, not only their
    apps' lifetimes: a counter never goes down (one app per `serve` process; a test makes
    many, each a few small dicts)."""

    def __init__(self) -> None:
        self.tallies: list[HttpTally] = []

    def add(self, tally: HttpTally) -> None:
        self.tallies.append(tally)

    def collect(self) -> Iterator[Metric]:
        tallies = list(self.tallies)
        requests: dict[tuple[str, str, str], int] = {}
        durations: dict[tuple[str, str], list[float]] = {}
        body_bytes: dict[str, int] = {}
        for tally in tallies:  # copied first: the app's thread goes on counting
            requests = _summed(requests, dict(tally.requests))
            durations = _summed_lists(durations, dict(tally.durations))
            body_bytes = _summed(body_bytes, dict(tally.body_bytes))
        counted = CounterMetricFamily(
            "headwater_http_requests",
            "HTTP requests answered, by route template, method and status class (2xx, 4xx, ...).",
            labels=["route", "method", "status"],
        )
        for series, count in requests.items():
            counted.add_metric(series, count)
        timed = HistogramMetricFamily(
            "headwater_http_request_duration_seconds",
            "Time from a request's arrival to the last byte of its answer, by route template.",
            labels=["route", "method"],
        )
        bounds = [floatToGoString(bound) for bound in HTTP_BUCKETS] + ["+Inf"]
        for timed_series, observed in durations.items():
            cumulative = list(itertools.accumulate(observed[:-1]))
            timed.add_metric(timed_series, list(zip(bounds, cumulative, strict=True)), observed[-1])
        sent = CounterMetricFamily(
            "headwater_http_response_body_bytes",
            "Bytes of response bodies sent, by route template: package files, indexes, pages.",
            labels=["route"],
        )
        for route, value in body_bytes.items():
            sent.add_metric([route], value)
        yield from (counted, timed, sent)


def _summed(into: dict[Any, int], more: dict[Any, int]) -> dict[Any, int]:
    return {key: into.get(key, 0) + more.get(key, 0) for key in into.keys() | more.keys()}


def _summed_lists(
    into: dict[tuple[str, str], list[float]], more: dict[tuple[str, str], list[float]]
) -> dict[tuple[str, str], list[float]]:
    summed = {key: list(values) for key, values in into.items()}
    for key, values in more.items():
        total = summed.setdefault(key, [0.0] * len(values))
        for index, value in enumerate(list(values)):
            total[index] += value
    return summed


HTTP_TALLIES = HttpTallies()
REGISTRY.register(HTTP_TALLIES)
# Fed by RunProgress.count("bytes_downloaded", n), as a run's downloads stream.
UPSTREAM_BYTES = Counter(
    "headwater_upstream_downloaded_bytes",
    "Bytes mirror runs downloaded from upstreams (package files and their metadata).",
    registry=REGISTRY,
)


@dataclass(frozen=True)
class DatabaseReading:
    """What the database said at one scrape, or that it could not be read."""

    at: float  # time.monotonic()
    ok: bool
    runs: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, state) → count
    oldest_pending: dt.datetime | None = None
    blobs: int = 0  # blobs the store holds (the `blobs` table)
    blob_bytes: int = 0
    collected_bytes: int = 0  # what every garbage collection so far reclaimed


class DatabaseGauges:
    """Gauges of the whole deployment, read from the database: the runs of every job kind by
    state, the queue's depth and how long its oldest run has waited.

    Read at most once per `ttl` seconds: a scrape within that time, or one that comes while
    another is reading, gets the last reading, so a storm of scrapes costs one query. A
    database that cannot be read gives `headwater_database_gauges_up 0` and no other gauge.
    """

    def __init__(self, db: Database, ttl: float = 5.0) -> None:
        self.db = db
        self.ttl = ttl
        self._reading: DatabaseReading | None = None
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        reading = self.current()
        up = GaugeMetricFamily(
            "headwater_database_gauges_up",
            "1 when the gauges read from the database could be read at this scrape.",
            value=1 if reading.ok else 0,
        )
        yield up
        if reading.ok:
            yield from self.families(reading)

    def current(self) -> DatabaseReading:
        reading = self._reading
        if reading is not None and time.monotonic() - reading.at < self.ttl:
            return reading
        if not self._lock.acquire(blocking=reading is None):
            return reading  # type: ignore[return-value]  # someone is reading; the last will do
        try:
            reading = self._reading
            if reading is None or time.monotonic() - reading.at >= self.ttl:
                reading = self._read()
                self._reading = reading
            return reading
        finally:
            self._lock.release()

    def _read(self) -> DatabaseReading:
        try:
            with self.db.reading() as session:
                return self.read(session)
        except Exception as error:
            log.warning("metrics: could not read the database: %s", type(error).__name__)
            return DatabaseReading(at=time.monotonic(), ok=False)

    def read(self, session: Session) -> DatabaseReading:
        counts = {
            (str(kind), str(state)): int(count)
            for kind, state, count in session.execute(
                select(Run.kind, Run.state, func.count()).group_by(Run.kind, Run.state)
            )
        }
        oldest = session.scalar(select(func.min(Run.created_at)).where(Run.state == "pending"))
        blob_count, blob_bytes = session.execute(
            select(func.count(Blob.key), func.coalesce(func.sum(Blob.size), 0))
        ).one()
        reports = session.scalars(
            select(Run.report).where(Run.kind == JobKind.blob_collect, Run.report.is_not(None))
        )
        collected = sum(
            int((report or {}).get("collected", {}).get("bytes_deleted", 0)) for report in reports
        )
        return DatabaseReading(
            at=time.monotonic(),
            ok=True,
            runs=counts,
            oldest_pending=_aware(oldest),
            blobs=int(blob_count),
            blob_bytes=int(blob_bytes),
            collected_bytes=collected,
        )

    def families(self, reading: DatabaseReading) -> Iterable[Metric]:
        runs = GaugeMetricFamily(
            "headwater_runs",
            "Runs of every job (a mirror's run, a CVE feed refresh, a revision pruning) in the "
            "database, by job kind and state.",
            labels=["kind", "state"],
        )
        kinds = {kind.value for kind in JobKind} | {kind for kind, _ in reading.runs}
        for kind in sorted(kinds):
            for state in RunState:
                runs.add_metric([kind, state.value], reading.runs.get((kind, state.value), 0))
        yield runs
        pending = sum(count for (_, state), count in reading.runs.items() if state == "pending")
        yield GaugeMetricFamily(
            "headwater_queue_depth", "Runs waiting for a worker (pending, any job).", pending
        )
        waited = 0.0
        if reading.oldest_pending is not None:
            waited = max(0.0, (utcnow() - reading.oldest_pending).total_seconds())
        yield GaugeMetricFamily(
            "headwater_queue_oldest_pending_seconds",
            "How long the oldest pending run has waited for a worker (0 when none waits).",
            waited,
        )
        yield GaugeMetricFamily(
            "headwater_blob_store_blobs",
            "Blobs the store holds (package files, indexes).",
            reading.blobs,
        )
        yield GaugeMetricFamily(
            "headwater_blob_store_bytes", "Bytes the blob store holds.", reading.blob_bytes
        )
        yield CounterMetricFamily(
            "headwater_blob_collected_bytes",
            "Bytes garbage collection has deleted from the blob store, in every collection.",
            reading.collected_bytes,
        )


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)  # SQLite's func.min skips the column's type
    return value


def scrape_registry(*collectors: Any) -> CollectorRegistry:
    """What one process's /metrics shows: `REGISTRY` and the collectors of its own resources
    (a `DatabaseGauges` on its database)."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(REGISTRY)
    for collector in collectors:
        scrape.register(collector)
    return scrape


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The text Prometheus reads, and its media type. Blocking: the database gauges may read."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


def bearer_matches(header: str | None, token: str | None) -> bool:
    """Whether an Authorization header carries `token` as a bearer token; True when no token
    is asked for."""
    if token is None:
        return True
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_metrics(
    host: str, port: int, registry: CollectorRegistry, token: str | None
) -> _ThreadingServer:
    """/metrics of a process that serves no HTTP otherwise (`headwater worker`), on a thread
    of its own; shut it down with `.shutdown()`."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if not bearer_matches(environ.get("HTTP_AUTHORIZATION"), token):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')],
            )
            return [b"send the metrics token as Authorization: Bearer\n"]
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"metrics are at /metrics\n"]
        body, media_type = exposition(registry)
        start_response("200 OK", [("Content-Type", media_type), ("Cache-Control", "no-store")])
        return [body]

    server = make_server(host, port, app, _ThreadingServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    return server
