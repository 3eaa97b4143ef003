"""The conda-forge-sized channel the serving and client benchmarks read, filled in Headwater.

Upstream (cached in bench/.cache/forge): the expansion of bench/data.py (linux-64 468,657
records, noarch 35,465) with the real sample's own records added under their real names
(python, openssl, pip, ...), so that a client can ask for real packages in a channel of
conda-forge's size. `--quick` benchmarks use the real sample's linux-64 and noarch alone.

Headwater's channel `bench` is filled from that upstream by one passive run in a fresh process,
as bench/passive_run.py does; the benchmarks then start `headwater serve` on its data dir.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import zstandard
from tests.support.upstream import serve_directory

from bench.compare import python_path
from bench.data import CACHE, REAL, _records, expanded_channel, require_shared_data
from bench.harness import ROOT, bench_settings, execute_one_run, setup_mirror

CHANNEL = "bench"  # the channel bench.harness.setup_mirror creates
SUBDIRS = ("linux-64", "noarch")


def upstream(quick: bool) -> Path:
    """The upstream channel directory: linux-64 and noarch, repodata.json and .zst."""
    require_shared_data()
    target = CACHE / ("forge-quick" if quick else "forge")
    if (target / "noarch" / "repodata.json.zst").exists():
        return target
    expanded = None if quick else expanded_channel()
    for subdir in SUBDIRS:
        document: dict[str, Any]
        if expanded is None:
            document = {"info": {"subdir": subdir}, "packages": {}, "packages.conda": {}}
        else:
            document = orjson.loads((expanded / subdir / "repodata.json").read_bytes())
        for filename, record in _records(subdir).items():
            key = "packages.conda" if filename.endswith(".conda") else "packages"
            document[key][filename] = record
        body = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
        (target / subdir).mkdir(parents=True, exist_ok=True)
        (target / subdir / "repodata.json").write_bytes(body)
        (target / subdir / "repodata.json.zst").write_bytes(
            zstandard.ZstdCompressor(level=3).compress(body)
        )
        del document, body
    return target


def records(quick: bool) -> int:
    total = 0
    for subdir in SUBDIRS:
        document = orjson.loads((upstream(quick) / subdir / "repodata.json").read_bytes())
        total += len(document["packages"]) + len(document["packages.conda"])
    return total


def fill(data_dir: Path, quick: bool) -> dict[str, Any]:
    """A Headwater data dir whose channel `bench` holds the upstream, by one passive run in a
    fresh process; the run's report."""
    channel = upstream(quick)
    with serve_directory(channel) as source:
        env = {**os.environ, "PYTHONPATH": python_path(ROOT)}
        done = subprocess.run(
            [sys.executable, "-m", "bench.forge", "child", str(data_dir), source.url],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if report["state"] != "completed":
        raise RuntimeError(f"filling the channel failed: {report}")
    return report


def child(data_dir: str, url: str) -> None:
    settings = bench_settings(Path(data_dir))
    mirror_id = setup_mirror(settings, url, {"subdirs": list(SUBDIRS)})
    print(json.dumps(execute_one_run(settings, mirror_id)))


def real_names(subdir: str) -> set[str]:
    document = json.loads((REAL / subdir / "repodata.json").read_text())
    return {r["name"] for r in {**document["packages"], **document["packages.conda"]}.values()}


def clear_cache() -> None:
    for name in ("forge", "forge-quick"):
        shutil.rmtree(CACHE / name, ignore_errors=True)


if __name__ == "__main__" and sys.argv[1:2] == ["child"]:
    child(*sys.argv[2:4])
