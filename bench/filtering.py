"""Issue 3's benchmark: filter throughput with every rule on, and preview latency.

    python -m bench filtering

Throughput: the records of a subdir are parsed once, then judged by a mirror's and a channel's
rule sets with every kind of rule on (subdirs, include and exclude specs, include and exclude
licenses, a date window, CVE rules through an in-memory lookup), on one core, caches cold.
Baseline in the same run: the same pass with no rules at all.

Preview latency: `preview_conda_mirror` end to end against an upstream on loopback (fetch,
decompress, parse, judge, count, keep one page), with the same rules. Baseline in the same run:
fetching and parsing the same repodata without judging it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.support.upstream import serve_directory

from bench.data import expanded_channel, real_channel
from headwater.filters import FilterSet, parse_filter_set
from headwater.filters.licenses import forget_license_families
from headwater.filters.rules import CveStanding, MirrorRules
from headwater.formats.conda.repodata import CondaRecord, parse_repodata
from headwater.services.preview import PreviewQuery, PreviewRequest, preview_conda_mirror
from headwater.services.sync import judge_all
from headwater.upstreams.conda import CondaUpstream
from headwater.upstreams.http import HttpPolicy, upstream_client

MIRROR = {
    "subdirs": ["linux-64", "noarch", "osx-arm64", "win-64"],
    "include_specs": ["python >=3.9", "openssl 3.*"],
    "exclude_specs": ["python", "r-*", "libgcc-ng <12", "numpy-x1*"],
    "exclude_licenses": ["agpl", "proprietary"],
    "date_from": "2019-01-01",
    "date_to": "2030-12-31",
    "cve_score_threshold": 9.0,
    "exclude_non_curated_cve": True,
}
CHANNEL = {
    "include_licenses": [
        "mit",
        "bsd",
        "apache",
        "psf",
        "gpl2",
        "gpl3",
        "lgpl",
        "public_domain",
        "other",
    ],
    "exclude_licenses": ["gpl3"],
}
POLICY = HttpPolicy(timeout=300, allowlist=("http://127.0.0.1:*",))


def rules(records: list[CondaRecord]) -> MirrorRules:
    # A CVE table as the CVE issue will give: a score for every tenth file.
    table = {
        record.sha256: CveStanding(score=float(i % 11), has_reported=i % 3 == 0)
        for i, record in enumerate(records[::10])
    }
    clean = CveStanding(score=None, has_reported=False)
    return MirrorRules(
        parse_filter_set(MIRROR),
        parse_filter_set(CHANNEL),
        cve=lambda r: table.get(r.sha256, clean),
    )


def throughput(
    subdirs: list[tuple[str, list[CondaRecord]]], judged: MirrorRules
) -> dict[str, object]:
    """One pass over every subdir, as a run makes it, with the license caches cold."""
    forget_license_families()
    gc.collect()
    records = sum(len(part) for _, part in subdirs)
    started = time.perf_counter()
    kept = 0
    excluded: Counter[str] = Counter()
    for subdir, part in subdirs:
        taken, dropped = judge_all(judged, part, subdir)
        kept += len(taken)
        excluded += dropped
    wall = time.perf_counter() - started
    return {
        "records": records,
        "wall_s": round(wall, 3),
        "records_per_s": round(records / wall),
        "kept": kept,
        "excluded": dict(excluded),
    }


def measure_throughput(channel: Path) -> dict[str, object]:
    subdirs = [
        (path.name, parse_repodata((path / "repodata.json").read_bytes(), path.name).records)
        for path in sorted(p for p in channel.iterdir() if p.is_dir())
    ]
    every = [record for _, part in subdirs for record in part]
    return {
        "every_rule": throughput(subdirs, rules(every)),
        "baseline_no_rules": throughput(subdirs, MirrorRules(FilterSet(), FilterSet())),
    }


async def preview_latency(channel: Path, subdir: str) -> dict[str, Any]:
    with serve_directory(channel) as upstream:
        request = PreviewRequest(
            mirror_type="conda",
            source_root=upstream.url,
            proxy=None,
            mirror_filters=parse_filter_set({**MIRROR, "subdirs": [subdir]}),
            channel_filters=parse_filter_set(CHANNEL),
        )
        started = time.perf_counter()
        preview = await preview_conda_mirror(
            request, POLICY, PreviewQuery(show="dropped", limit=100)
        )
        wall = time.perf_counter() - started
        started = time.perf_counter()
        async with upstream_client(POLICY) as client:
            download = await CondaUpstream(client, upstream.url, POLICY).fetch_repodata(subdir)
            assert download is not None and download.body is not None
            parsed = await asyncio.to_thread(parse_repodata, download.body, subdir)
        baseline = time.perf_counter() - started
    return {
        "subdir": subdir,
        "records": len(parsed.records),
        "preview_s": round(wall, 3),
        "taken": preview.subdirs[0].taken,
        "dropped": preview.subdirs[0].dropped,
        "baseline_fetch_and_parse_s": round(baseline, 3),
    }


def main(argv: list[str]) -> None:
    datasets = argv or ["real", "conda-forge-size"]
    report = {}
    for dataset in datasets:
        channel = real_channel() if dataset == "real" else expanded_channel()
        report[dataset] = {
            "throughput": measure_throughput(channel),
            "preview": asyncio.run(preview_latency(channel, "linux-64")),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
