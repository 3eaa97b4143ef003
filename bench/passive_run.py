"""Issue 2's benchmark: a passive run over real and conda-forge-sized repodata, then a re-run.

    python -m bench passive-run

Each run executes in a fresh process (so peak RSS is the run's own) against an upstream served
on loopback. Reported: wall time, records per second and peak memory of the first run, and of
a re-run when nothing changed upstream. The baseline in the same run is the floor any mirror
pays: downloading the same repodata.json.zst and parsing it with orjson.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
import zstandard
from tests.support.upstream import serve_directory

from bench.data import describe, expanded_channel, real_channel
from bench.harness import bench_settings, execute_one_run, in_child, peak_rss_mib, setup_mirror


def baseline(url: str, subdirs: list[str]) -> dict[str, float]:
    """Fetch and parse each subdir's repodata.json.zst with orjson: no filtering, no storing."""
    started = time.perf_counter()
    records = 0
    with httpx.Client(timeout=300) as client:
        for subdir in subdirs:
            for name in ("repodata.json.zst", "repodata.json"):
                response = client.get(f"{url}{subdir}/{name}")
                if response.status_code == 200:
                    body = response.content
                    if name.endswith(".zst"):
                        body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
                    document = orjson.loads(body)
                    records += len(document.get("packages", {})) + len(
                        document.get("packages.conda", {})
                    )
                    break
    wall = time.perf_counter() - started
    return {"wall_s": round(wall, 3), "records": records, "records_per_s": round(records / wall)}


def measure(name: str, channel: Path) -> dict[str, object]:
    subdirs = sorted(path.name for path in channel.iterdir() if path.is_dir())
    with serve_directory(channel) as upstream, tempfile.TemporaryDirectory() as scratch:
        floor = baseline(upstream.url, subdirs)
        first = in_child(
            "bench.passive_run", "child", scratch, upstream.url, ",".join(subdirs), "setup"
        )
        rerun = in_child(
            "bench.passive_run", "child", scratch, upstream.url, ",".join(subdirs), "rerun"
        )
    return {
        "dataset": name,
        "upstream": describe(channel),
        "baseline_fetch_and_parse": floor,
        "first_run": first,
        "unchanged_rerun": rerun,
    }


def child(scratch: str, url: str, subdirs: str, stage: str) -> None:
    settings = bench_settings(Path(scratch) / "var")
    if stage == "setup":
        mirror_id = setup_mirror(settings, url, {"subdirs": subdirs.split(",")})
        (Path(scratch) / "mirror_id").write_text(str(mirror_id))
    mirror_id = int((Path(scratch) / "mirror_id").read_text())
    report = execute_one_run(settings, mirror_id)
    report["peak_rss_mib"] = round(peak_rss_mib(), 1)
    print(json.dumps(report))


def main(argv: list[str]) -> None:
    datasets = argv or ["real", "conda-forge-size"]
    results = []
    for dataset in datasets:
        channel = real_channel() if dataset == "real" else expanded_channel()
        results.append(measure(dataset, channel))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(*sys.argv[2:6])
    else:
        main(sys.argv[1:])
