"""The gauges read from the database (runs by state, the queue), read at most once per ttl;
the bearer check; and the /metrics a worker process serves on a port of its own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from headwater.db import Database
from headwater.metrics import DatabaseGauges, bearer_matches, scrape_registry, serve_metrics
from headwater.migrations import upgrade
from headwater.models import JobKind, Run, RunState, RunTrigger
from headwater.services import runs
from tests.support.server import free_port


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = (
        f"sqlite:///{tmp_path / 'm.sqlite3'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    database = Database(url)
    upgrade(database.engine)
    yield database
    database.dispose()


def queue(db: Database, kind: JobKind) -> None:
    with db.writing() as session:
        assert runs.queue_job(session, kind, {}, trigger=RunTrigger.manual, requested_by="t")


def finish_all(db: Database, state: RunState) -> None:
    with db.writing() as session:
        for run in session.query(Run).filter(Run.state == RunState.pending):
            run.state = state


def values(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
    }


def runs_of(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], kind: str, state: str):  # type: ignore[no-untyped-def]
    return found[("headwater_runs", (("kind", kind), ("state", state)))]


def test_runs_by_kind_and_state_and_the_queue(db: Database) -> None:
    queue(db, JobKind.cve_refresh)
    finish_all(db, RunState.failed)
    queue(db, JobKind.cve_refresh)
    queue(db, JobKind.revision_prune)
    time.sleep(0.05)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseGauges(db, ttl=60))
    found = values(registry)
    assert found[("headwater_database_gauges_up", ())] == 1
    assert runs_of(found, "cve-refresh", "pending") == 1
    assert runs_of(found, "cve-refresh", "failed") == 1
    assert runs_of(found, "revision-prune", "pending") == 1
    assert runs_of(found, "mirror", "running") == 0  # every kind and state, zeros included
    assert found[("headwater_queue_depth", ())] == 2
    assert 0.04 <= found[("headwater_queue_oldest_pending_seconds", ())] < 60


def test_a_scrape_within_the_ttl_reads_nothing_and_one_after_reads_again(db: Database) -> None:
    gauges = DatabaseGauges(db, ttl=0.5)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(gauges)
    assert values(registry)[("headwater_queue_depth", ())] == 0
    queue(db, JobKind.revision_prune)
    for _ in range(20):  # a storm of scrapes: the same reading
        assert values(registry)[("headwater_queue_depth", ())] == 0
    time.sleep(0.6)
    assert values(registry)[("headwater_queue_depth", ())] == 1
    finish_all(db, RunState.completed)
    assert values(registry)[("headwater_queue_depth", ())] == 1


def test_a_database_that_cannot_be_read_says_so_and_gives_no_gauge() -> None:
    unreachable = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    found = values(scrape_registry(DatabaseGauges(unreachable)))
    assert found[("headwater_database_gauges_up", ())] == 0
    assert not [name for name, _ in found if name.startswith(("headwater_runs", "headwater_queue"))]
    # The process's own metrics are there all the same.
    assert ("headwater_upstream_downloaded_bytes_total", ()) in found


def test_bearer_matches() -> None:
    assert bearer_matches(None, None) and bearer_matches("Basic x", None)
    assert bearer_matches("Bearer s3cret", "s3cret") and bearer_matches("bearer  s3cret", "s3cret")
    assert not bearer_matches(None, "s3cret")
    assert not bearer_matches("Bearer s3cre", "s3cret")
    assert not bearer_matches("s3cret", "s3cret")
    assert not bearer_matches("Basic s3cret", "s3cret")


def test_a_worker_serves_its_metrics_on_a_port_of_its_own(db: Database) -> None:
    port = free_port()
    server = serve_metrics("127.0.0.1", port, scrape_registry(DatabaseGauges(db)), "s3cret")
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        refused = httpx.get(url)
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith(
            "Bearer"
        )
        assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        answered = httpx.get(url, headers={"Authorization": "Bearer s3cret"})
        assert answered.status_code == 200
        assert answered.headers["content-type"].startswith("text/plain")
        assert "headwater_upstream_downloaded_bytes_total" in answered.text
        assert "headwater_queue_depth 0.0" in answered.text
        elsewhere = httpx.get(url[: -len("metrics")], headers={"Authorization": "Bearer s3cret"})
        assert elsewhere.status_code == 404
    finally:
        server.shutdown()
        server.server_close()
