"""Issue 13's client benchmark: py-rattler solving a 13-package environment against the
conda-forge-sized channel served by Headwater, sharded and monolithic, and against nginx
serving the same files, in the same run.

    python -m bench client-solves [--runs 5] [--quick]

The channel is bench/forge.py's (linux-64 and noarch of conda-forge's size, with the real
sample's records under their real names), filled by a passive run; `headwater serve` runs as a
user starts it (its access log on), in its own process. nginx (bench/nginx.py) serves a
directory laid out as Headwater's URLs with the very bytes Headwater served: both subdirs'
repodata.json, repodata.json.zst and shard index, and the shard of every name the environment
can reach (the closure of the specs' names through every record's dependencies, which is what a
sharded client fetches).

Each solve runs in a fresh process with a fresh cache directory (cold): `rattler.solve` with a
`Gateway(default_config=SourceConfig(sharded_enabled=...))` for linux-64 and noarch, the
virtual packages of a linux-64 machine, and the 13 specs below; timed from before the gateway
is made to the solution. Three clients, in turn, each run:

- *sharded, Headwater*: rattler reads the shard index and the shards it needs;
- *monolithic, Headwater*: sharding off, rattler downloads each subdir's repodata.json.zst;
- *sharded, nginx*: the same sharded solve from nginx.

All three must find the same solution. Reported: seconds (median, min, max) and the ratios.
`--quick` uses the real sample alone (2,914 records).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import forge, nginx, server
from bench.compare import Options, figure, load_average, markdown_table, python_path
from bench.data import require_shared_data
from bench.harness import ROOT
from headwater.formats.conda.shards import read_shard_index

CHANNEL = forge.CHANNEL
SUBDIRS = forge.SUBDIRS
# 13 real conda-forge names of the sample; they solve together into 39 packages.
ENVIRONMENT = (
    "python",
    "pip",
    "setuptools",
    "wheel",
    "certifi",
    "six",
    "pyparsing",
    "packaging",
    "curl",
    "openssl",
    "sqlite",
    "zstd",
    "tk",
)
LINUX_VIRTUAL = (("__unix", "0"), ("__linux", "5.10"), ("__glibc", "2.28"), ("__archspec", "1"))
CLIENTS = ("sharded-headwater", "monolithic-headwater", "sharded-nginx")


def main(args: list[str]) -> None:
    options = Options.parse(args, runs=5)
    require_shared_data()
    nginx.binary()
    measured: dict[str, list[dict[str, Any]]] = {client: [] for client in CLIENTS}
    load = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-solves-") as scratch:
        place = Path(scratch)
        forge.fill(place / "var", options.quick)
        with server.serve(place / "var") as headwater:
            static = place / "static"
            shards = _lay_out(headwater.url, static, options.quick)
            with nginx.serve(static) as baseline:
                urls = {
                    "sharded-headwater": (f"{headwater.url}/api/repo/{CHANNEL}", True),
                    "monolithic-headwater": (f"{headwater.url}/api/repo/{CHANNEL}", False),
                    "sharded-nginx": (f"{baseline.url}/api/repo/{CHANNEL}", True),
                }
                for run in range(options.runs):
                    order = CLIENTS if run % 2 == 0 else tuple(reversed(CLIENTS))
                    for client in order:
                        url, sharded = urls[client]
                        measured[client].append(_solve(url, sharded))
                    print(f"run {run + 1}/{options.runs} done", file=sys.stderr, flush=True)
    solutions = {tuple(entry["solution"]) for entries in measured.values() for entry in entries}
    assert len(solutions) == 1, f"the clients solved differently: {solutions}"
    report = {
        "runs": options.runs,
        "quick": options.quick,
        "load_average": {"start": load, "end": load_average()},
        "records": forge.records(options.quick),
        "environment": list(ENVIRONMENT),
        "solution_packages": len(next(iter(solutions))),
        "shards_laid_out_for_nginx": shards,
        "measured": {
            client: [{k: v for k, v in entry.items() if k != "solution"} for entry in entries]
            for client, entries in measured.items()
        },
    }
    print(_table(report))
    print(json.dumps(report, indent=2))


def _lay_out(url: str, static: Path, quick: bool) -> int:
    """Headwater's bytes for nginx: both subdirs' indexes, and the shards of every name the
    environment reaches. Returns how many shards."""
    reachable = _closure(quick)
    count = 0
    with httpx.Client(timeout=600) as client:
        for subdir in SUBDIRS:
            base = f"{url}/api/repo/{CHANNEL}/{subdir}/"
            target = static / "api" / "repo" / CHANNEL / subdir
            for name in ("repodata.json", "repodata.json.zst", "repodata_shards.msgpack.zst"):
                server.download(client, base + name, target / name)
            index = read_shard_index((target / "repodata_shards.msgpack.zst").read_bytes())
            for name in sorted(reachable & set(index)):
                path = f"shards/{index[name]}.msgpack.zst"
                server.download(client, base + path, target / path)
                count += 1
    return count


def _closure(quick: bool) -> set[str]:
    """Every name the environment's specs reach through any record's dependencies."""
    depends: dict[str, set[str]] = {}
    for subdir in SUBDIRS:
        document = orjson.loads((forge.upstream(quick) / subdir / "repodata.json").read_bytes())
        for key in ("packages", "packages.conda"):
            for record in document[key].values():
                names = depends.setdefault(record["name"], set())
                names.update(spec.split()[0] for spec in record.get("depends") or ())
        del document
    reached: set[str] = set()
    waiting = list(ENVIRONMENT)
    while waiting:
        name = waiting.pop()
        if name not in reached:
            reached.add(name)
            waiting += sorted(depends.get(name, set()) - reached)
    return reached


def _solve(url: str, sharded: bool) -> dict[str, Any]:
    """One cold solve in a fresh process."""
    env = {**os.environ, "PYTHONPATH": python_path(ROOT)}
    with tempfile.TemporaryDirectory(prefix="rattler-cache-") as cache_dir:
        command = [sys.executable, "-m", "bench.client_solves", "child", url, str(int(sharded))]
        done = subprocess.run(
            [*command, cache_dir], env=env, check=True, capture_output=True, text=True
        )
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def child(url: str, sharded: str, cache_dir: str) -> None:
    import rattler

    virtual = [
        rattler.GenericVirtualPackage(
            rattler.PackageName(name), rattler.Version(version), rattler.BuildString("0")
        )
        for name, version in LINUX_VIRTUAL
    ]
    started = time.perf_counter()
    gateway = rattler.Gateway(
        cache_dir=Path(cache_dir),
        default_config=rattler.SourceConfig(sharded_enabled=sharded == "1"),
    )
    solution = asyncio.run(
        rattler.solve(
            sources=[rattler.Channel(url)],
            specs=list(ENVIRONMENT),
            gateway=gateway,
            platforms=["linux-64", "noarch"],
            virtual_packages=virtual,
            timeout=dt.timedelta(seconds=600),
            channel_priority=rattler.ChannelPriority.Strict,
            timestamp_policy="allow-missing",
        )
    )
    seconds = time.perf_counter() - started
    cached = sum(path.stat().st_size for path in Path(cache_dir).rglob("*") if path.is_file())
    print(
        json.dumps(
            {
                "solve_s": round(seconds, 3),
                "packages": len(solution),
                "cache_bytes": cached,
                "solution": sorted(f"{r.name.normalized}={r.version}={r.build}" for r in solution),
            }
        ),
        flush=True,
    )
    # py-rattler's runtime threads sometimes abort the interpreter's finalization
    # (bench/dependencies.py); the measurement is printed by then.
    os._exit(0)


def _table(report: dict[str, Any]) -> str:
    measured = report["measured"]
    times = {client: [entry["solve_s"] for entry in measured[client]] for client in CLIENTS}
    ours = times["sharded-headwater"]
    rows = []
    labels = {
        "sharded-headwater": "sharded, from Headwater",
        "monolithic-headwater": "monolithic (repodata.json.zst), from Headwater",
        "sharded-nginx": "sharded, from nginx (same bytes)",
    }
    for client in CLIENTS:
        ratios = [a / b for a, b in zip(ours, times[client], strict=True)]
        cache = [entry["cache_bytes"] / 1e6 for entry in measured[client]]
        rows.append(
            [
                labels[client],
                f"{figure(times[client], 2)} s",
                f"{figure(cache)} MB",
                figure(ratios, 2),
            ]
        )
    headers = [
        f"cold solve of {len(report['environment'])} specs ({report['solution_packages']} "
        f"packages), {report['records']:,} records",
        "time",
        "cache written",
        "sharded Headwater ÷ it",
    ]
    return markdown_table(headers, rows)


if __name__ == "__main__" and sys.argv[1:2] == ["child"]:
    child(*sys.argv[2:5])
