"""Issue 11's benchmark: on the conda-forge-sized channel, mirror runs that each change 100
records upstream. For each run: the time to publish its new revision, the longest time the
database's write lock was held, and what the revision costs in storage.

    python -m bench revisions [--runs 10] [--compare REV]

The channel is first filled by a passive run (not reported). Each following run finds 100
linux-64 records changed upstream (new sha256, as a rebuilt file under the same name), so it
removes 100 files and adds 100. Every run executes in a fresh process. The write lock is
measured inside that process: SQLite's writers begin IMMEDIATE, so a writing transaction holds
the lock from its BEGIN to its COMMIT, and each one is timed. Storage is the growth of the
database (after a checkpoint) and of the stored index artifacts per run. `--compare REV`
measures the same runs with another revision's code (before issue 11: one transaction held
through writing, rendering and matching). With BENCH_DATABASE=postgres (bench/backends.py) the
"write lock" is the longest writing transaction (PostgreSQL has no database-wide write lock) and
the database's growth is that of its schema's tables (pg_total_relation_size, no VACUUM); with
BENCH_BLOBS=s3 the index artifacts are listed in the bucket.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import zstandard
from sqlalchemy import event, text
from tests.support.upstream import serve_directory

from bench.compare import python_path
from bench.data import expanded_channel
from bench.hardening import checkout
from bench.harness import ROOT, bench_settings, peak_rss_mib, setup_mirror
from headwater.db import Database
from headwater.resources import open_blob_store

CHANGED = 100


def main(args: list[str]) -> None:
    runs = int(_option(args, "--runs") or 10)
    compare = _option(args, "--compare")
    source = expanded_channel()
    results: dict[str, Any] = {"runs": runs, "changed_per_run": CHANGED}
    with tempfile.TemporaryDirectory() as scratch:
        results["now"] = _series(ROOT / "src", Path(scratch) / "now", source, runs)
        if compare:
            with checkout(compare) as tree:
                results[f"at {compare}"] = _series(tree, Path(scratch) / "before", source, runs)
    print(json.dumps(results, indent=2))


def _series(src: Path, place: Path, source: Path, runs: int) -> dict[str, Any]:
    upstream_root = place / "upstream"
    shutil.copytree(source, upstream_root)
    document = orjson.loads((upstream_root / "linux-64" / "repodata.json").read_bytes())
    names = sorted(document["packages.conda"])
    reports = []
    with serve_directory(upstream_root) as upstream:
        _child(src, place, upstream.url, "setup")
        before = _storage(place)
        for run in range(runs):
            for filename in names[run * CHANGED : (run + 1) * CHANGED]:
                record = document["packages.conda"][filename]
                record["sha256"] = hashlib.sha256(f"{filename}:{run}".encode()).hexdigest()
                record["md5"] = hashlib.md5(f"{filename}:{run}".encode()).hexdigest()
            _write(upstream_root / "linux-64", document)
            report = _child(src, place, upstream.url, "run")
            after = _storage(place)
            report["storage_bytes"] = {key: after[key] - before[key] for key in after}
            before = after
            reports.append(report)
    return {
        "per_run": reports,
        "publish_s": _spread([r["steps_s"].get("publishing", r["wall_s"]) for r in reports]),
        "check_s": _spread([r["steps_s"].get("check", 0.0) for r in reports]),
        "publish_without_check_s": _spread(
            [
                r["steps_s"].get("publishing", r["wall_s"]) - r["steps_s"].get("check", 0.0)
                for r in reports
            ]
        ),
        "wall_s": _spread([r["wall_s"] for r in reports]),
        "longest_write_lock_ms": _spread([r["longest_write_lock_ms"] for r in reports]),
        "database_bytes_per_revision": _spread([r["storage_bytes"]["database"] for r in reports]),
        "index_bytes_per_revision": _spread([r["storage_bytes"]["indexes"] for r in reports]),
    }


def _write(subdir: Path, document: dict[str, Any]) -> None:
    body = orjson.dumps(document)
    (subdir / "repodata.json").write_bytes(body)
    (subdir / "repodata.json.zst").write_bytes(zstandard.ZstdCompressor(level=3).compress(body))


def _spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "min": ordered[0],
        "median": ordered[len(ordered) // 2],
        "max": ordered[-1],
    }


def _storage(place: Path) -> dict[str, int]:
    settings = bench_settings(place / "var")
    if settings.database_url is None:
        database = place / "var" / "headwater.sqlite3"
        with sqlite3.connect(database) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        database_bytes = database.stat().st_size
    else:  # BENCH_DATABASE=postgres: its schema's tables, their indexes and TOAST included
        db = Database(settings.database_url)
        with db.reading() as session:
            database_bytes = int(
                session.execute(
                    text(
                        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                        " JOIN pg_namespace n ON n.oid = c.relnamespace"
                        " WHERE n.nspname = current_schema() AND c.relkind = 'r'"
                    )
                ).scalar_one()
            )
        db.dispose()
    if settings.blob_backend == "local":
        indexes = place / "var" / "blobs" / "indexes"
        index_bytes = sum(p.stat().st_size for p in indexes.rglob("*") if p.is_file())
    else:  # BENCH_BLOBS=s3
        index_bytes = sum(blob.size for blob in open_blob_store(settings).list("indexes/"))
    return {"database": database_bytes, "indexes": index_bytes}


def _child(src: Path, place: Path, url: str, stage: str) -> dict[str, Any]:
    # This tree's code: the PYTHONPATH given first (bench.compare.python_path); another's: it.
    path = python_path(ROOT) if src == ROOT / "src" else f"{src}{os.pathsep}{ROOT}"
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, "-m", "bench.revisions", "child", str(place), url, stage],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def child(place: str, url: str, stage: str) -> None:
    from headwater.db import Database
    from headwater.models import RunTrigger
    from headwater.resources import http_policy, open_blob_store, worker_config
    from headwater.services import mirrors, runs
    from headwater.worker.runner import Worker

    settings = bench_settings(Path(place) / "var")
    if stage == "setup":
        mirror_id = setup_mirror(settings, url, {"subdirs": ["linux-64", "noarch"]})
        (Path(place) / "mirror_id").write_text(str(mirror_id))
    mirror_id = int((Path(place) / "mirror_id").read_text())
    db = Database(settings.resolved_database_url)
    holds = _time_write_transactions(db.engine)
    with db.writing() as session:
        mirror = session.get(mirrors.Mirror, mirror_id)
        assert mirror is not None
        run_id = runs.request_run(session, mirror, trigger=RunTrigger.manual, requested_by="b").id
    holds.clear()
    worker = Worker(db, open_blob_store(settings), http_policy(settings), worker_config(settings))
    started = time.perf_counter()
    assert worker.run_once()
    wall = time.perf_counter() - started
    with db.reading() as session:
        finished = runs.get_run(session, run_id)
        log = runs.run_log(session, run_id)
    assert finished.state == "completed", finished.error
    marks = sorted((line.at, line.message) for line in log)
    publishing = next((at for at, message in marks if message.startswith("publishing")), None)
    steps: dict[str, float] = {}
    if publishing is not None:
        steps["publishing"] = round((marks[-1][0] - publishing).total_seconds(), 3)
        for at, message in marks:  # where the publishing time goes, from the run's own log
            if at > publishing:
                steps[message[:60]] = round((at - publishing).total_seconds(), 3)
        # the dependency check (issue 12): from its step to the next line of the log
        checking = [i for i, (_, message) in enumerate(marks) if message == "checking dependencies"]
        if checking and checking[0] + 1 < len(marks):
            start = checking[0]
            steps["check"] = round((marks[start + 1][0] - marks[start][0]).total_seconds(), 3)
    print(
        json.dumps(
            {
                "wall_s": round(wall, 3),
                "added": finished.added,
                "removed": finished.removed,
                "steps_s": steps,
                "longest_write_lock_ms": round(max(holds, default=0) * 1000, 1),
                "write_transactions": len(holds),
                "peak_rss_mib": round(peak_rss_mib(), 1),
            }
        )
    )


def _time_write_transactions(engine: Any) -> list[float]:
    """How long each IMMEDIATE (writing) transaction held SQLite's write lock, in seconds."""
    holds: list[float] = []
    began: dict[int, float] = {}

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        if connection.get_execution_options().get("sqlite_begin") == "IMMEDIATE":
            began[id(connection.connection)] = time.perf_counter()

    def _end(connection: Any) -> None:
        start = began.pop(id(connection.connection), None)
        if start is not None:
            holds.append(time.perf_counter() - start)

    event.listen(engine, "commit", _end)
    event.listen(engine, "rollback", _end)
    return holds


def _option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args and args.index(name) + 1 < len(args) else None


if __name__ == "__main__" and sys.argv[1:2] == ["child"]:
    child(*sys.argv[2:])
