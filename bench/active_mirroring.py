"""Issue 13's mirroring benchmark: an active conda mirror run against the physical limit and
against conda-mirror, from the same loopback nginx upstream, in the same run.

    python -m bench active-mirroring [--runs 3] [--quick] [--concurrency 8,32]

Upstream (cached in bench/.cache/active-upstream): a conda channel whose linux-64
repodata.json lists 2,000 small files (10-100 KB, sizes drawn from a seeded generator) and 4
large ones of 52 MB, 312 MB in all, every record with its sha256, md5 and size. The files are
random bytes named `.conda`: an active run checks each download's sha256 and size against the
index and never opens the archive (services/downloads.py), and conda-mirror checks the md5 the
index gives and opens the archive only when there is none. nginx (bench/nginx.py) serves it.

Each run, in turn, into an empty target:

- *curl* (the physical limit): `xargs -P16 -n16 curl --remote-name-all` over the same URLs,
  the four large files at the head of four different batches so that they start at once.
- *conda-mirror* (PyPI's, installed into bench/.cache/conda-mirror-venv): `conda-mirror
  --upstream-channel <url> --platform linux-64 --target-directory ...`, its defaults otherwise
  (it downloads one file at a time and validates them in batches).
- *Headwater* at each download concurrency (`HEADWATER_DOWNLOAD_CONCURRENCY`, 8 and 32): a
  fresh `headwater serve` (its worker inside, as a user runs it); the channel and the active
  mirror are created through the REST API, then `POST .../run`; the wall time runs from that
  request to the run read back `completed` (polled every 0.1 s), so it includes the wait for
  the embedded worker to claim the run (at once since the queueing rings it; up to
  `HEADWATER_WORKER_POLL_INTERVAL`, 2 s, before); the run's own time (its `started_at` to
  `finished_at`) is reported beside it.

Reported: seconds (median, min, max of the runs) and each one's ratio to curl's.
`--quick`: 200 small files and 2 large ones of 10 MB.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import zstandard

from bench import nginx, server
from bench.compare import Options, figure, load_average, markdown_table, option
from bench.data import CACHE, require_shared_data

SMALL, LARGE, LARGE_BYTES = 2000, 4, 52 * 1000 * 1000
QUICK_SMALL, QUICK_LARGE, QUICK_LARGE_BYTES = 200, 2, 10 * 1000 * 1000
CHANNEL_DIR = "channel"  # the upstream is <nginx>/channel/ (conda-mirror wants a channel name)
CURL_PARALLEL, CURL_BATCH = 16, 16
CONDA_MIRROR_VENV = CACHE / "conda-mirror-venv"


def main(args: list[str]) -> None:
    options = Options.parse(args, runs=3)
    concurrencies = [int(c) for c in (option(options.rest, "--concurrency") or "8,32").split(",")]
    require_shared_data()  # like the other benchmarks, though this one makes its own data
    upstream = _upstream(options.quick)
    venv = conda_mirror_venv()
    measured: dict[str, list[dict[str, Any]]] = {}
    load = load_average()
    with nginx.serve(upstream, access_log=False) as source:
        channel_url = f"{source.url}/{CHANNEL_DIR}/"
        files = _files(upstream)
        for run in range(options.runs):
            with tempfile.TemporaryDirectory(prefix="bench-active-") as scratch:
                place = Path(scratch)
                measured.setdefault("curl", []).append(_curl(channel_url, files, place))
                measured.setdefault("conda-mirror", []).append(
                    _conda_mirror(venv, channel_url, files, place)
                )
                for concurrency in concurrencies:
                    measured.setdefault(f"headwater-{concurrency}", []).append(
                        _headwater(channel_url, files, place / f"hw{concurrency}", concurrency)
                    )
            print(f"run {run + 1}/{options.runs} done", file=sys.stderr, flush=True)
    version = subprocess.run(
        [str(venv / "bin" / "conda-mirror"), "--version"], capture_output=True, text=True
    )
    report = {
        "conda_mirror_version": (version.stdout or version.stderr).strip().split()[-1],
        "runs": options.runs,
        "quick": options.quick,
        "load_average": {"start": load, "end": load_average()},
        "files": len(files),
        "bytes": sum(size for _, size in files),
        "measured": measured,
    }
    print(_table(report))
    print(json.dumps(report, indent=2))


def _upstream(quick: bool) -> Path:
    """The channel directory (cached): linux-64 with its files and repodata, empty noarch."""
    small, large, large_bytes = (
        (QUICK_SMALL, QUICK_LARGE, QUICK_LARGE_BYTES) if quick else (SMALL, LARGE, LARGE_BYTES)
    )
    root = CACHE / ("active-upstream-quick" if quick else "active-upstream")
    subdir = root / CHANNEL_DIR / "linux-64"
    if (subdir / "repodata.json.zst").exists():
        return root
    subdir.mkdir(parents=True, exist_ok=True)
    generator = random.Random(13)
    sizes = [(f"bench-small-{i:04d}", generator.randint(10_000, 100_000)) for i in range(small)]
    sizes += [(f"bench-large-{i}", large_bytes) for i in range(large)]
    records = {}
    for name, size in sizes:
        filename = f"{name}-1.0-0.conda"
        body = generator.randbytes(size)
        (subdir / filename).write_bytes(body)
        records[filename] = {
            "name": name,
            "version": "1.0",
            "build": "0",
            "build_number": 0,
            "depends": [],
            "license": "MIT",
            "subdir": "linux-64",
            "size": size,
            "sha256": hashlib.sha256(body).hexdigest(),
            "md5": hashlib.md5(body).hexdigest(),
            "timestamp": 1_700_000_000_000,
        }
    for name, document in (
        ("linux-64", {"info": {"subdir": "linux-64"}, "packages": {}, "packages.conda": records}),
        ("noarch", {"info": {"subdir": "noarch"}, "packages": {}, "packages.conda": {}}),
    ):
        body = json.dumps(document, sort_keys=True).encode()
        (root / CHANNEL_DIR / name).mkdir(parents=True, exist_ok=True)
        (root / CHANNEL_DIR / name / "repodata.json").write_bytes(body)
        (root / CHANNEL_DIR / name / "repodata.json.zst").write_bytes(
            zstandard.ZstdCompressor().compress(body)
        )
    return root


def _files(root: Path) -> list[tuple[str, int]]:
    """(filename, size) of every file the index lists, the large ones first."""
    subdir = root / CHANNEL_DIR / "linux-64"
    document = json.loads((subdir / "repodata.json").read_text())
    files = [(name, record["size"]) for name, record in document["packages.conda"].items()]
    return sorted(files, key=lambda item: (-item[1], item[0]))


def _curl(channel_url: str, files: list[tuple[str, int]], place: Path) -> dict[str, Any]:
    """`xargs -P16 -n16 curl` over every URL: the fastest these files come off this upstream."""
    target = place / "curl"
    target.mkdir()
    large = [name for name, size in files if size >= 1_000_000]
    small = [name for name, size in files if size < 1_000_000]
    ordered: list[str] = []
    for name in large:  # each large file at the head of its own batch
        ordered += [name, *small[: CURL_BATCH - 1]]
        small = small[CURL_BATCH - 1 :]
    ordered += small
    urls = "".join(f"{channel_url}linux-64/{name}\n" for name in ordered)
    command = (
        f"xargs -P{CURL_PARALLEL} -n{CURL_BATCH} "
        f"curl -sS --fail --remote-name-all --output-dir {target}"
    )
    started = time.perf_counter()
    subprocess.run(command, shell=True, input=urls, text=True, check=True)
    wall = time.perf_counter() - started
    fetched = sum(path.stat().st_size for path in target.iterdir())
    assert fetched == sum(size for _, size in files), "curl did not fetch every byte"
    return {"wall_s": round(wall, 3)}


def conda_mirror_venv() -> Path:
    """conda-mirror from PyPI in a venv of its own (cached)."""
    if not (CONDA_MIRROR_VENV / "bin" / "conda-mirror").exists():
        subprocess.run([sys.executable, "-m", "venv", str(CONDA_MIRROR_VENV)], check=True)
        pip = [str(CONDA_MIRROR_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "conda-mirror"], check=True)
    return CONDA_MIRROR_VENV


def _conda_mirror(
    venv: Path, channel_url: str, files: list[tuple[str, int]], place: Path
) -> dict[str, Any]:
    target, temporary = place / "conda-mirror", place / "conda-mirror-tmp"
    target.mkdir()
    temporary.mkdir()
    command = [
        str(venv / "bin" / "conda-mirror"),
        "--upstream-channel",
        channel_url,
        "--target-directory",
        str(target),
        "--temp-directory",
        str(temporary),
        "--platform",
        "linux-64",
        "--no-progress",
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.perf_counter() - started
    mirrored = [path for path in (target / "linux-64").iterdir() if path.suffix == ".conda"]
    assert len(mirrored) == len(files), f"conda-mirror mirrored {len(mirrored)} of {len(files)}"
    return {"wall_s": round(wall, 3)}


def _headwater(
    channel_url: str, files: list[tuple[str, int]], data_dir: Path, concurrency: int
) -> dict[str, Any]:
    settings = {"download_concurrency": str(concurrency), "access_log": "false"}
    with server.serve(data_dir, settings=settings) as headwater, headwater.api() as api:
        api.post("/api/channels", json={"name": "mirrored"}).raise_for_status()
        created = api.post(
            "/api/channels/mirrored/mirrors",
            json={
                "mirror_name": "upstream",
                "mirror_type": "conda",
                "source_root": channel_url,
                "mirror_mode": "active",
                "filters": {"subdirs": ["linux-64", "noarch"]},
            },
        )
        created.raise_for_status()
        mirror_id = created.json()["id"]
        started = time.perf_counter()
        queued = api.post(f"/api/channels/mirrored/mirrors/{mirror_id}/run")
        queued.raise_for_status()
        run = _until_done(api, queued.json()["id"])
        wall = time.perf_counter() - started
    if run["state"] != "completed":
        raise RuntimeError(f"the active run did not complete: {run.get('error')}")
    downloaded = run["counters"]["downloaded"]
    assert downloaded == len(files), f"downloaded {downloaded} of {len(files)}"
    own = _seconds(run["started_at"], run["finished_at"])
    return {
        "wall_s": round(wall, 3),
        "run_s": round(own, 3),
        "queued_s": round(_seconds(run["created_at"], run["started_at"]), 3),
        "bytes": run["counters"]["bytes"],
    }


def _until_done(api: httpx.Client, run_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        run: dict[str, Any] = api.get(f"/api/runs/{run_id}").json()
        if run["state"] not in ("pending", "running"):
            return run
        time.sleep(0.1)
    raise RuntimeError(f"run {run_id} still running after 30 minutes")


def _seconds(start: str, end: str) -> float:
    return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()


def _table(report: dict[str, Any]) -> str:
    measured = report["measured"]
    limit = [entry["wall_s"] for entry in measured["curl"]]
    rows = []
    for label, entries in measured.items():
        walls = [entry["wall_s"] for entry in entries]
        ratios = [wall / floor for wall, floor in zip(walls, limit, strict=True)]
        own = [entry["run_s"] for entry in entries if "run_s" in entry]
        rows.append(
            [
                _label(label, report["conda_mirror_version"]),
                f"{figure(walls, 2)} s",
                f"{figure(own, 2)} s" if own else "",
                figure(ratios, 2),
            ]
        )
    headers = [
        f"{report['files']:,} files, {report['bytes'] / 1e6:,.0f} MB",
        "wall time",
        "the run itself",
        "÷ curl",
    ]
    return markdown_table(headers, rows)


def _label(key: str, conda_mirror: str) -> str:
    if key == "curl":
        return f"curl, xargs -P{CURL_PARALLEL} (the physical limit)"
    if key == "conda-mirror":
        return f"conda-mirror {conda_mirror} (one download at a time)"
    return f"Headwater active run, download concurrency {key.split('-')[1]}"


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main(sys.argv[1:])
