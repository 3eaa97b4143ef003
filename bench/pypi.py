"""Issue 4's benchmarks: serving a 500-file project page, and an active run of 20 projects.

    python -m bench pypi

Pages: a channel holds one project of 500 real wheels and sdists (a passive mirror of a
loopback index); `headwater serve` runs as a user starts it, in its own process; wrk drives it
with 64 connections for 10 s per page and reports the latency distribution. Targets: p99 under
20 ms for the HTML and the JSON page. The baseline in the same run is the cheapest route the
same server has: a channel's (empty) noarch repodata.json, served from its stored index.

Mirror run: 20 projects of 25 files each, every file downloaded and verified by an active run
from a loopback index. The baseline is the floor any mirror pays: fetching the same 500 files
with plain httpx at the same concurrency, without verifying or storing them.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from tests.support.python_packages import Dist, build_index
from tests.support.server import free_port
from tests.support.upstream import serve_directory

from bench.harness import ROOT, bench_settings, execute_one_run, in_child, setup_mirror

JSON_MEDIA = "application/vnd.pypi.simple.v1+json"
TAGS = [
    "py3-none-any",
    "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64",
    "cp311-cp311-musllinux_1_1_x86_64",
    "cp311-cp311-macosx_10_9_x86_64",
    "cp311-cp311-macosx_11_0_arm64",
    "cp311-cp311-win_amd64",
    "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp312-cp312-win_amd64",
]


def big_project(name: str, versions: int) -> list[Dist]:
    """Each version: an sdist and a wheel per tag, as a compiled project publishes them."""
    dists = []
    for minor in range(versions):
        version = f"1.{minor}"
        dists.append(Dist(name, version, kind="sdist", license_expression="BSD-3-Clause"))
        dists += [Dist(name, version, tag=tag, license_expression="BSD-3-Clause") for tag in TAGS]
    return dists


def _setup(data_dir: Path, source_root: str, projects: list[str], mode: str) -> int:
    settings = bench_settings(data_dir)
    return setup_mirror(settings, source_root, {"projects": projects}, mode, "python_simple")


def _wrk(url: str, accept: str | None) -> dict[str, Any]:
    command = ["wrk", "-t2", "-c64", "-d10s", "--latency", url]
    if accept:
        command += ["-H", f"Accept: {accept}"]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    latency = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, re.MULTILINE))
    rate = re.search(r"Requests/sec:\s+(\S+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "p50_ms": _ms(latency["50"]),
        "p90_ms": _ms(latency["90"]),
        "p99_ms": _ms(latency["99"]),
        "requests_per_s": round(float(rate.group(1))) if rate else None,
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 2)


def _serve(data_dir: Path, port: int, **settings: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update(HEADWATER_DATA_DIR=str(data_dir), HEADWATER_ADMIN_PASSWORD="bench")
    env.update({f"HEADWATER_{key.upper()}": value for key, value in settings.items()})
    server = subprocess.Popen(
        [sys.executable, "-m", "headwater", "serve", "--port", str(port), "--no-scheduler"],
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/api/repo/bench/noarch/repodata.json")
    except RuntimeError:
        server.kill()
        raise
    return server


def pages() -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: `make bench` installs it (scripts/ensure-wrk)")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        dists = big_project("big-project", 50)
        build_index(root / "index", dists, json_pages=True)
        with serve_directory(root / "index") as upstream:
            mirror_id = _setup(root / "var", upstream.url + "simple/", ["big-project"], "passive")
            run = execute_one_run(bench_settings(root / "var"), mirror_id)
        assert run["state"] == "completed", run
        report: dict[str, Any] = {"files_on_page": len(dists)}
        for label, settings in (("default", {}), ("access_log_off", {"access_log": "false"})):
            report[label] = _drive(root / "var", len(dists), settings)
        report["floor_bare_asgi_same_bytes"] = _floor(root)
        return report


def _floor(root: Path) -> dict[str, Any]:
    """The same HTML page's bytes from a bare ASGI app: what any Python server here can do."""
    body = root / "page.html"  # written by _drive
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bench.constant_asgi:app", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--no-access-log", "--log-level", "warning"],
        env={**os.environ, "PYTHONPATH": str(ROOT), "HEADWATER_BENCH_BODY": str(body)},
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/")
        return _wrk(f"http://127.0.0.1:{port}/", None)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def _drive(data_dir: Path, files: int, settings: dict[str, str]) -> dict[str, Any]:
    port = free_port()
    server = _serve(data_dir, port, **settings)
    try:
        base = f"http://127.0.0.1:{port}/api/repo/bench"
        page = httpx.get(f"{base}/simple/big-project/", headers={"Accept": JSON_MEDIA})
        assert len(page.json()["files"]) == files, len(page.json()["files"])
        html = httpx.get(f"{base}/simple/big-project/").content
        (data_dir.parent / "page.html").write_bytes(html)
        return {
            "html_bytes": len(html),
            "json_bytes": len(page.content),
            "html": _wrk(f"{base}/simple/big-project/", "text/html"),
            "json": _wrk(f"{base}/simple/big-project/", JSON_MEDIA),
            # Last: the slow route leaves requests queued in the server after wrk stops.
            "baseline_noarch_repodata": _wrk(f"{base}/noarch/repodata.json", None),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)


async def _fetch_all(urls: list[str], concurrency: int) -> int:
    semaphore = asyncio.Semaphore(concurrency)
    total = 0
    async with httpx.AsyncClient(timeout=300) as client:

        async def one(url: str) -> None:
            nonlocal total
            async with semaphore:
                response = await client.get(url)
                response.raise_for_status()
                total += len(response.content)

        await asyncio.gather(*(one(url) for url in urls))
    return total


def mirror_run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        dists = [d for n in range(20) for d in big_project(f"project-{n:02d}", 3)[:25]]
        built = build_index(root / "index", dists, json_pages=True)
        with serve_directory(root / "index") as upstream:
            urls = [f"{upstream.url}files/{item.path.name}" for item in built]
            started = time.perf_counter()
            fetched = asyncio.run(_fetch_all(urls, bench_settings(root).download_concurrency))
            floor = time.perf_counter() - started
            run = in_child("bench.pypi", "child", scratch, upstream.url + "simple/")
        return {
            "projects": 20,
            "files": len(dists),
            "bytes": fetched,
            "baseline_plain_fetch_s": round(floor, 3),
            "active_run": run,
        }


def child(scratch: str, source_root: str) -> None:
    root = Path(scratch)
    projects = [f"project-{n:02d}" for n in range(20)]
    mirror_id = _setup(root / "var", source_root, projects, "active")
    print(json.dumps(execute_one_run(bench_settings(root / "var"), mirror_id)))


def main(argv: list[str]) -> None:
    if argv[:1] == ["child"]:
        child(*argv[1:])
        return
    parts = argv or ["pages", "mirror-run"]
    report: dict[str, Any] = {}
    if "pages" in parts:
        report["pages"] = pages()
    if "mirror-run" in parts:
        report["mirror_run"] = mirror_run()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
