"""Issue 13: load and faults on PostgreSQL and S3, at full size.

    python -m bench load-faults [--quick] [--seed N] [--dir PATH]

2 `headwater serve` replicas and 4 `headwater worker` processes on one PostgreSQL schema and
one S3 bucket (moto's server on loopback, in a process of its own), 50 small conda channels
upstream with an active mirror each, 64 reader threads reading repodata, package files, shard
indexes and shards through the two replicas in turn; rounds of runs under load, then rounds
with workers killed (SIGKILL), their database sessions cut (`pg_terminate_backend`) and the S3
endpoint stopped for a while, then a collection with a grace of 0 and the checks of
tests/support/cluster.py, whose docstring says what counts as a failure.
`--quick`: the size `make test` runs (tests/functional/test_load_faults.py): 2 replicas, 2
workers, 6 mirrors, 8 readers.

PostgreSQL: `HEADWATER_TEST_POSTGRES` (default postgresql+psycopg://postgres@127.0.0.1:5432/test),
in a schema of its own, dropped afterwards. `--dir`: keep every process's log there.

Prints a table per phase (requests, failures, p50 and p99 latency, runs completed and failed),
the faults made, and the whole report as JSON; exits 1 when a request failed outside an S3
outage, an answer was torn, or an invariant broke.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from tests.support.cluster import FULL, REDUCED, Report, moto_process, postgres_schema, run_scenario

from bench.compare import Options, load_average, markdown_table, option

POSTGRES = os.environ.get(
    "HEADWATER_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def main(args: list[str]) -> None:
    options = Options.parse(args, runs=1)
    size = REDUCED if options.quick else FULL
    seed = int(option(options.rest, "--seed") or 13)
    kept = option(options.rest, "--dir")
    print(f"load average before: {load_average()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-load-faults-") as scratch:
        place = Path(kept) if kept else Path(scratch)
        place.mkdir(parents=True, exist_ok=True)
        with postgres_schema(POSTGRES) as database_url, moto_process() as s3:
            report = run_scenario(place, database_url, s3, size, seed=seed, say=_say)
    print(table(report))
    print(f"load average after: {load_average()}")
    print(json.dumps(report.summary(), indent=2))
    if report.problems or report.unexpected_failures():
        raise SystemExit(1)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def table(report: Report) -> str:
    rows = []
    for phase, stats in report.reads.items():
        runs = report.runs_by_state(phase)
        failures = [f for f in report.unexpected_failures() if f.phase == phase]
        during = [f for f in report.expected_failures() if f.phase == phase]
        rows.append(
            [
                phase,
                f"{stats.requests:,}",
                str(len(failures)) + (f" (+{len(during)} during the S3 outage)" if during else ""),
                f"{report.latency(0.5, phase) * 1000:.0f} ms",
                f"{report.latency(0.99, phase) * 1000:.0f} ms",
                str(runs.get("completed", 0)),
                str(runs.get("failed", 0)),
            ]
        )
    rows.append(
        [
            "**all**",
            f"{report.requests():,}",
            str(len(report.unexpected_failures())),
            f"{report.latency(0.5) * 1000:.0f} ms",
            f"{report.latency(0.99) * 1000:.0f} ms",
            str(report.runs_by_state().get("completed", 0)),
            str(report.runs_by_state().get("failed", 0)),
        ]
    )
    header = ["phase", "requests", "failures", "p50", "p99", "runs completed", "runs failed"]
    faults = ", ".join(f"{kind}: {count}" for kind, count in sorted(report.faults.items()))
    problems = "\n".join(f"- {problem}" for problem in report.problems) or "none"
    return (
        markdown_table(header, rows)
        + f"\n\nfaults: {faults}\ninvariants broken: {problems}\n"
        + f"runs reaped while their worker lived: {len(report.reaped_alive)}\n"
        + f"wall time by step (s): {json.dumps(report.summary()['seconds'])}"
    )
