"""Issue 13's serving benchmark: conda serving by `headwater serve` against nginx serving the
same bytes from disk, side by side in the same run.

    python -m bench serving [--runs 3] [--quick] [--seconds 10] [--access-log off]

Headwater: the conda-forge-sized channel of bench/forge.py, filled by a passive run, and two
real `.conda` packages of 35 KB and 1 MB uploaded to its noarch subdir through the REST API;
`headwater serve` as a user starts it (Granian, its default server; SQLite, its worker inside; the
scheduler off), in its own process. nginx (bench/nginx.py: one worker process, `sendfile on`,
`etag on`) serves a directory laid out as Headwater's URLs, holding the very bytes Headwater
served. Each row is measured with wrk from the same two cores, first anonymously on the public
channel, then with a personal token in the path (`/api/repo/t/<token>/bench/...`) on the same
channel made private; nginx serves the token's path from the same files (it checks nothing).
Both servers write an access log unless `--access-log off`.

Rows: the big subdir's (linux-64) repodata.json.zst and repodata.json (MB/s, 4 connections), a
revalidation of repodata.json answered 304 (If-None-Match with the server's own ETag, 64
connections), the shard index (16 connections), single shards (64 connections, wrk rotating
through a set of shard URLs read from the shard index), and the two package files (35 KB at 64
connections, 1 MB at 16). The ratio is Headwater's figure over nginx's; the issue's target is
at least 0.5 on every row. `--quick` serves the real sample (12k records) for 1 s per row.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import forge, nginx, server, wrk
from bench.compare import Options, figure, load_average, markdown_table, option, spread
from bench.data import require_shared_data
from headwater.formats.conda.shards import read_shard_index

CHANNEL = forge.CHANNEL
SUBDIR = "linux-64"
SHARDS = 1000  # shard URLs the shard row rotates through (all of them when fewer)
PACKAGES = {"35 KB": 35_000, "1 MB": 1_000_000}
TARGET = 0.5


@dataclass(frozen=True)
class Row:
    name: str
    unit: str  # "MB/s" or "req/s": the figure the ratio is taken of
    connections: int
    path: str  # under /api/repo/<channel>/ (or the token's), for one-URL rows
    paths: tuple[str, ...] = ()  # rotated through instead of `path`
    revalidate: bool = False  # If-None-Match with the server's ETag of `path`


def main(args: list[str]) -> None:
    options = Options.parse(args, runs=3)
    seconds = float(option(options.rest, "--seconds") or (1 if options.quick else 10))
    access_log = option(options.rest, "--access-log") != "off"
    require_shared_data()
    wrk.require()
    nginx.binary()
    load = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as scratch:
        report = _measure(Path(scratch), options, seconds, access_log)
    report["load_average"] = {"start": load, "end": load_average()}
    print(_table(report))
    print(json.dumps(report, indent=2))


def _measure(scratch: Path, options: Options, seconds: float, access_log: bool) -> dict[str, Any]:
    data_dir = scratch / "var"
    started = time.perf_counter()
    fill = forge.fill(data_dir, options.quick)
    print(f"channel filled in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    settings: dict[str, str] = {} if access_log else {"access_log": "false"}
    with server.serve(data_dir, settings=settings) as headwater:
        token = headwater.personal_token()
        packages = _upload_packages(headwater, scratch / "packages")
        static = scratch / "static"
        rows = _rows(headwater, packages, static, quick=options.quick)
        aliases = {f"/api/repo/t/{token}/": "api/repo/"}
        with nginx.serve(static, aliases, access_log=access_log) as baseline:
            prefixes = {
                "anonymous": f"/api/repo/{CHANNEL}/",
                "token": f"/api/repo/t/{token}/{CHANNEL}/",
            }
            measured: dict[str, list[dict[str, Any]]] = {}
            for run in range(options.runs):
                for access, prefix in prefixes.items():
                    headwater.set_privacy(CHANNEL, "public" if access == "anonymous" else "private")
                    time.sleep(1.5)  # what a server caches of a channel's privacy, let go
                    _check(headwater.url, baseline.url, prefix, rows)
                    for row in rows:
                        pair = {
                            "headwater": _drive(headwater.url, prefix, row, seconds),
                            "nginx": _drive(baseline.url, prefix, row, seconds),
                        }
                        measured.setdefault(f"{row.name}|{access}", []).append(pair)
                print(f"run {run + 1}/{options.runs} done", file=sys.stderr, flush=True)
            headwater.set_privacy(CHANNEL, "public")
    return {
        "runs": options.runs,
        "quick": options.quick,
        "seconds_per_measurement": seconds,
        "access_log": access_log,
        "channel_records": fill.get("seen"),
        "fill_wall_s": fill.get("wall_s"),
        "sizes": {row.name: _size(static, row) for row in rows},
        "rows": [
            _summary(row, access, measured[f"{row.name}|{access}"])
            for row in rows
            for access in ("anonymous", "token")
        ],
    }


def _upload_packages(headwater: server.HeadwaterServer, place: Path) -> dict[str, str]:
    """Real `.conda` packages of about the sizes wanted (incompressible payloads), uploaded to
    the channel's noarch subdir; label → filename."""
    from tests.support.conda_packages import PackageSpec, build_package

    uploaded = {}
    for label, size in PACKAGES.items():
        name = "bench-" + label.replace(" ", "").lower()
        spec = PackageSpec(name, "1.0", subdir="noarch", random_bytes=size)
        path = build_package(spec, place)
        headwater.upload(CHANNEL, path)
        uploaded[label] = path.name
    return uploaded


def _rows(
    headwater: server.HeadwaterServer, packages: dict[str, str], static: Path, *, quick: bool
) -> list[Row]:
    """The rows, and the bytes Headwater serves for each laid out under `static` for nginx."""
    base = f"{headwater.url}/api/repo/{CHANNEL}/"
    with httpx.Client(timeout=600) as client:

        def copy(path: str) -> None:
            server.download(client, base + path, static / "api" / "repo" / CHANNEL / path)

        for name in ("repodata.json", "repodata.json.zst", "repodata_shards.msgpack.zst"):
            copy(f"{SUBDIR}/{name}")
        shard_index = static / "api" / "repo" / CHANNEL / SUBDIR / "repodata_shards.msgpack.zst"
        digests = sorted(read_shard_index(shard_index.read_bytes()).items())
        count = 200 if quick else SHARDS
        step = max(1, len(digests) // count)
        shards = tuple(f"{SUBDIR}/shards/{digest}.msgpack.zst" for _, digest in digests[::step])
        for path in shards:
            copy(path)
        for filename in packages.values():
            copy(f"noarch/{filename}")
    return [
        Row("repodata.json.zst", "MB/s", 4, f"{SUBDIR}/repodata.json.zst"),
        Row("repodata.json", "MB/s", 4, f"{SUBDIR}/repodata.json"),
        Row("repodata.json, 304", "req/s", 64, f"{SUBDIR}/repodata.json", revalidate=True),
        Row("shard index", "req/s", 16, f"{SUBDIR}/repodata_shards.msgpack.zst"),
        Row(f"single shards ({len(shards)} URLs)", "req/s", 64, "", paths=shards),
        Row("package, 35 KB", "req/s", 64, f"noarch/{packages['35 KB']}"),
        Row("package, 1 MB", "MB/s", 16, f"noarch/{packages['1 MB']}"),
    ]


def _size(static: Path, row: Row) -> int:
    paths = row.paths or (row.path,)
    files = [static / "api" / "repo" / CHANNEL / path for path in paths]
    return round(sum(f.stat().st_size for f in files) / len(files))


def _check(headwater: str, baseline: str, prefix: str, rows: list[Row]) -> None:
    """Both servers answer every row's URL, with the same bytes (sizes; a 304 when
    revalidating), before each round of measurements (wrk counts answers other than 2xx and
    3xx, which the table shows beside the row)."""
    with httpx.Client(timeout=600) as client:
        for row in rows:
            for path in row.paths[:3] if row.paths else (row.path,):
                sizes = []
                for url in (headwater, baseline):
                    head = client.head(url + prefix + path)
                    if head.status_code != 200:
                        raise RuntimeError(f"{url + prefix + path}: {head.status_code}")
                    sizes.append(head.headers.get("content-length"))
                    if row.revalidate:
                        again = client.head(
                            url + prefix + path,
                            headers={"If-None-Match": head.headers["etag"]},
                        )
                        if again.status_code != 304:
                            raise RuntimeError(f"{url + prefix + path}: {again.status_code}")
                if sizes[0] != sizes[1]:
                    raise RuntimeError(f"{path}: Headwater {sizes[0]} bytes, nginx {sizes[1]}")


def _drive(url: str, prefix: str, row: Row, seconds: float) -> dict[str, Any]:
    headers = []
    if row.revalidate:
        etag = httpx.head(url + prefix + row.path, timeout=60).headers["etag"]
        headers.append(f"If-None-Match: {etag}")
    result = wrk.run(
        url + prefix + row.path,
        connections=row.connections,
        seconds=seconds,
        headers=headers,
        paths=[prefix + path for path in row.paths] or None,
    )
    return result.as_dict()


def _metric(row: Row, result: dict[str, Any]) -> float:
    return float(result["mb_per_s"] if row.unit == "MB/s" else result["requests_per_s"])


def _summary(row: Row, access: str, pairs: list[dict[str, Any]]) -> dict[str, Any]:
    ours = [_metric(row, pair["headwater"]) for pair in pairs]
    theirs = [_metric(row, pair["nginx"]) for pair in pairs]
    ratios = [a / b if b else 0.0 for a, b in zip(ours, theirs, strict=True)]
    return {
        "row": row.name,
        "access": access,
        "unit": row.unit,
        "connections": row.connections,
        "headwater": spread(ours),
        "headwater_p99_ms": [pair["headwater"]["p99_ms"] for pair in pairs],
        "nginx": spread(theirs),
        "nginx_p99_ms": [pair["nginx"]["p99_ms"] for pair in pairs],
        "ratio": spread(ratios),
        "meets_target": spread(ratios)["median"] >= TARGET,
        "errors": {
            server_name: sum(
                pair[server_name]["non_2xx_3xx"] + sum(pair[server_name]["socket_errors"].values())
                for pair in pairs
            )
            for server_name in ("headwater", "nginx")
        },
        "per_run": pairs,
    }


def _table(report: dict[str, Any]) -> str:
    rows = []
    for entry in report["rows"]:
        per_run = entry["per_run"]
        unit = entry["unit"]
        errors = entry["errors"]
        rows.append(
            [
                f"{entry['row']}, {entry['access']}",
                str(entry["connections"]),
                f"{figure([_value(unit, p['headwater']) for p in per_run])} {unit}"
                + _errors(errors["headwater"]),
                f"{figure([p['headwater']['p99_ms'] for p in per_run])} ms",
                f"{figure([_value(unit, p['nginx']) for p in per_run])} {unit}"
                + _errors(errors["nginx"]),
                f"{figure([p['nginx']['p99_ms'] for p in per_run])} ms",
                figure([_ratio(unit, p) for p in per_run], 2)
                + ("" if entry["meets_target"] else " ✗"),
            ]
        )
    headers = ["row", "conn.", "Headwater", "p99", "nginx", "p99", "ratio"]
    return markdown_table(headers, rows)


def _errors(count: int) -> str:
    """Answers other than 2xx/3xx, and socket errors and timeouts, in all runs."""
    return f" ({count:,} errors)" if count else ""


def _value(unit: str, result: dict[str, Any]) -> float:
    return float(result["mb_per_s"] if unit == "MB/s" else result["requests_per_s"])


def _ratio(unit: str, pair: dict[str, Any]) -> float:
    theirs = _value(unit, pair["nginx"])
    return _value(unit, pair["headwater"]) / theirs if theirs else 0.0


if __name__ == "__main__":
    main(sys.argv[1:])
