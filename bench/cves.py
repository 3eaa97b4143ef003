"""Issue 5's benchmark: importing the PYSEC database, and re-matching a conda-forge-sized channel.

    python -m bench cves

Each part runs in a fresh process on a fresh SQLite database, so wall time and peak memory
(VmHWM) are its own.

- *import*: the whole PYSEC database in ../shared/data/osv (2,661 OSV YAML files), read and
  stored, CVEs merged. Baseline in the same process: reading and parsing the files alone.
- *match*: a channel of conda-forge's size, then every file matched against the imported CVEs,
  twice: the first pass adds every match; the second, the "full re-match" the target is about,
  finds them all in place. Two channels: *expanded* is the conda-forge-sized expansion of the
  real repodata (bench/data.py: 504,122 files whose names are mostly not on PyPI, as on
  conda-forge); *dense* is 466,000 conda files named after the PYSEC projects, over the real
  version histories the advisories list, so nearly every file is checked against advisories
  and most match. Baseline: reading the files' rows without matching.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from bench.data import SHARED, expanded_channel, require_shared_data
from bench.harness import AsAdministrator, bench_settings, in_child, peak_rss_mib
from headwater.cves.names import CondaNames
from headwater.cves.sources import read_path
from headwater.models import PackageFile, RevisionCause
from headwater.resources import bootstrap, open_blob_store
from headwater.services.cve_import import import_reading
from headwater.services.cve_matching import load_matcher, rematch
from headwater.services.revisions import Change, Plan, apply_change

PYSEC = SHARED / "osv" / "pypa-advisory-database" / "vulns"
DENSE_FILES = 466_000


def import_child(scratch: str) -> None:
    settings = bench_settings(Path(scratch) / "var")
    db, _ = bootstrap(settings)
    started = time.perf_counter()
    reading = read_path(PYSEC)
    parsed = time.perf_counter() - started
    outcome = import_reading(db, CondaNames(), reading)
    total = time.perf_counter() - started
    print(
        json.dumps(
            {
                "files": reading.files,
                "advisories": outcome.imported.read,
                "cves": len(outcome.imported.changed_cves),
                "withdrawn": outcome.imported.withdrawn,
                "baseline_read_and_parse_s": round(parsed, 3),
                "import_s": round(total, 3),
                "peak_rss_mib": round(peak_rss_mib(), 1),
            }
        )
    )


def _expanded_rows(channel_id: int) -> list[tuple[Any, ...]]:
    rows = []
    root = expanded_channel()
    for subdir in ("linux-64", "noarch"):
        document = orjson.loads((root / subdir / "repodata.json").read_bytes())
        for key in ("packages", "packages.conda"):
            for filename, record in document.get(key, {}).items():
                rows.append(_row(channel_id, subdir, filename, record["name"], record["version"]))
    return rows


def _dense_rows(channel_id: int) -> list[tuple[Any, ...]]:
    """Conda files named after the PYSEC projects, over the versions their advisories list."""
    versions: dict[str, set[str]] = {}
    for advisory in read_path(PYSEC).advisories:
        for package in advisory.affected:
            found = versions.setdefault(package.name, set())
            found.update(package.versions)
            found.update(v for events in package.ranges for _, v in events if v != "0")
    pairs = sorted((name, v) for name, vs in versions.items() for v in vs)
    rows: list[tuple[Any, ...]] = []
    build = 0
    while len(rows) < DENSE_FILES:
        for name, version in pairs:
            filename = f"{name}-{version}-py_{build}.conda"
            rows.append(_row(channel_id, "noarch", filename, name, version))
            if len(rows) == DENSE_FILES:
                break
        build += 1
    return rows


def _row(channel_id: int, subdir: str, filename: str, name: str, version: str) -> tuple[Any, ...]:
    digest = f"{abs(hash((subdir, filename))):064x}"[:64]
    return (
        channel_id,
        None,
        "conda",
        subdir,
        filename,
        name,
        version,
        "0",
        digest,
        1,
        None,
        b"{}",
        "bench",
    )


class _Fill(Change):
    """The channel's files, landed as its first revision like any upload."""

    cause = RevisionCause.upload

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def plan(self, session: Session, channel_id: int, head: int) -> Plan:
        plan = Plan()
        for row in self.rows:
            plan.add(row)
        return plan


def setup_child(scratch: str, dataset: str) -> None:
    """The channel's files, written in a process of their own so that the matching process's
    peak memory is the matching's."""
    settings = bench_settings(Path(scratch) / "var")
    db, _ = bootstrap(settings)
    store = open_blob_store(settings)
    with db.writing() as session:
        channel = AsAdministrator(session, settings).create_channel(dataset)
    rows = _expanded_rows(channel.id) if dataset == "expanded" else _dense_rows(channel.id)
    apply_change(db, store, channel.id, _Fill(rows))
    print(json.dumps({"channel_id": channel.id, "files": len(rows)}))


def match_child(scratch: str, dataset: str, channel_text: str) -> None:
    channel_id = int(channel_text)
    db, _ = bootstrap(bench_settings(Path(scratch) / "var"))
    with db.reading() as session:
        started = time.perf_counter()
        columns = select(PackageFile.id, PackageFile.package_type, PackageFile.name)
        query = columns.add_columns(PackageFile.version).where(PackageFile.channel_id == channel_id)
        count = sum(1 for _ in session.execute(query))
        floor = time.perf_counter() - started
    passes = []
    for _ in range(2):
        with db.writing() as session:
            started = time.perf_counter()
            matcher = load_matcher(session, CondaNames())
            report = rematch(session, matcher, channel_id=channel_id)
            passes.append({**vars(report), "wall_s": round(time.perf_counter() - started, 3)})
    print(
        json.dumps(
            {
                "dataset": dataset,
                "files": count,
                "baseline_read_rows_s": round(floor, 3),
                "first_match": passes[0],
                "full_rematch": passes[1],
                "peak_rss_mib": round(peak_rss_mib(), 1),
            }
        )
    )


def main(argv: list[str]) -> None:
    if argv[:1] == ["import-child"]:
        import_child(argv[1])
        return
    if argv[:1] == ["setup-child"]:
        setup_child(argv[1], argv[2])
        return
    if argv[:1] == ["match-child"]:
        match_child(argv[1], argv[2], argv[3])
        return
    require_shared_data()
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        report["import"] = in_child("bench.cves", "import-child", scratch)
        for dataset in argv or ["expanded", "dense"]:
            channel = in_child("bench.cves", "setup-child", scratch, dataset)
            report[dataset] = in_child(
                "bench.cves", "match-child", scratch, dataset, str(channel["channel_id"])
            )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
