"""python -m bench <benchmark> [args]: the benchmarks recorded in docs/performance.md.

BENCH_DATABASE=postgres and BENCH_BLOBS=s3 run Headwater on PostgreSQL and S3 (bench/backends.py).
"""

from __future__ import annotations

import sys

BENCHMARKS = {
    "passive-run": "bench.passive_run",
    "license-census": "bench.license_census",
    "filtering": "bench.filtering",
    "pypi": "bench.pypi",
    "cves": "bench.cves",
    "hardening": "bench.hardening",
    "revisions": "bench.revisions",
    "dependencies": "bench.dependencies",
    "serving": "bench.serving",
    "active-mirroring": "bench.active_mirroring",
    "client-solves": "bench.client_solves",
    "load-faults": "bench.load_faults",
}


def run(name: str, args: list[str]) -> None:
    from bench import backends

    module = __import__(BENCHMARKS[name], fromlist=["main"])
    print(f"backends: {backends.describe()}", file=sys.stderr, flush=True)
    with backends.session():  # BENCH_DATABASE=postgres, BENCH_BLOBS=s3
        module.main(args)


def main() -> None:
    if len(sys.argv) < 2:
        for name in BENCHMARKS:  # `make bench`: every one, in turn
            print(f"== {name}", flush=True)
            run(name, [])
        return
    if sys.argv[1] not in BENCHMARKS:
        print("usage: python -m bench [{" + ",".join(BENCHMARKS) + "} [args]]")
        print("       without a name, every benchmark runs in turn")
        raise SystemExit(2)
    run(sys.argv[1], sys.argv[2:])


if __name__ == "__main__":
    main()
