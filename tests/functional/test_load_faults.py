"""Issue 13: load and faults on PostgreSQL and S3, at a reduced size (the full size is
`python -m bench load-faults`; tests/support/cluster.py says what is done and checked).

2 `serve` replicas and 2 `worker` processes, 6 active mirrors, 8 readers: no failed request
and no torn index under load; then workers killed with SIGKILL, their database sessions cut
and the S3 endpoint stopped for a while during runs: every run ends completed or failed with
a reason, the next runs complete, a collection leaves every key in the bucket recorded and
referenced, and no run was executed twice. And, found by it: a run whose end could not be
written because the database dropped the connection is written on a new one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from headwater.models import JobKind, RunTrigger
from headwater.resources import bootstrap, http_policy, open_blob_store, worker_config
from headwater.services import runs
from headwater.worker import runner
from tests.conftest import make_settings
from tests.support.cluster import REDUCED, moto_process, run_scenario


@pytest.mark.postgres
@pytest.mark.timeout(400)
def test_load_and_faults_on_postgresql_and_s3(tmp_path: Path, postgres_url: str) -> None:
    # moto's server in a process of its own (not the session's `s3` fixture): stopped and
    # started again here, and kept from competing with the readers for this interpreter.
    with moto_process() as s3:
        report = run_scenario(tmp_path, postgres_url, s3, REDUCED, say=print)
    summary = report.summary()
    print(json.dumps(summary, indent=2))

    assert report.problems == [], report.problems
    unexpected = [failure.describe() for failure in report.unexpected_failures()]
    assert unexpected == [], unexpected[:20]
    assert all(stats.requests > 0 for stats in report.reads.values()), summary["requests"]
    assert set(report.reads) == {"load", "faults", "after faults", "after collection"}

    # Under load alone, and after the faults, every run completed.
    for phase in ("load", "after faults", "after collection"):
        assert set(report.runs_by_state(phase)) == {"completed"}, (phase, summary["runs"])
    # The faults were made, and every run they hit ended with a reason.
    assert report.faults["worker killed"] >= 1, summary["faults"]
    assert sum(n for kind, n in report.faults.items() if kind.startswith("connection")) >= 1
    assert report.faults["s3 outage"] == REDUCED.fault_rounds
    assert set(report.runs_by_state("faults")) <= {"completed", "failed"}

    # The collection found something to delete (superseded indexes, pruned files), and what
    # stays is exactly what is referenced.
    assert report.collected.get("deleted", 0) > 0, report.collected
    assert report.bucket_keys > 0


def test_a_run_whose_end_could_not_be_written_is_written_on_a_new_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database drops the worker's connection as it writes how a run ended (seen above
    when a session is cut): written again, the run fails with its own error and last lines,
    instead of staying running until reaped as "stopped sending heartbeats"."""
    settings = make_settings(tmp_path / "var", embedded_worker=False, embedded_scheduler=False)
    db, _ = bootstrap(settings)
    with db.writing() as session:
        queued = runs.queue_job(
            session, JobKind.blob_collect, {}, trigger=RunTrigger.manual, requested_by="test"
        )
        assert queued is not None
        session.flush()
        run_id = queued.id

    def fails(execution: Any) -> str:
        execution.progress.log("the last line before it went wrong")
        return "it went wrong"

    written = runs.record_log
    attempts = []

    def dropped_once(*args: Any) -> None:
        attempts.append(args)
        if len(attempts) == 1:
            cut = Exception("terminating connection due to administrator command")
            raise OperationalError("SELECT runs.worker_id FROM runs", {}, cut)
        written(*args)

    monkeypatch.setattr(runner._Execution, "execute", fails)
    monkeypatch.setattr(runs, "record_log", dropped_once)
    worker = runner.Worker(
        db, open_blob_store(settings), http_policy(settings), worker_config(settings)
    )
    assert worker.run_once()

    assert len(attempts) == 2
    with db.reading() as session:
        run = runs.get_run(session, run_id)
        assert (run.state, run.error) == ("failed", "it went wrong")
        lines = [line.message for line in runs.run_log(session, run_id)]
    assert "the last line before it went wrong" in lines
