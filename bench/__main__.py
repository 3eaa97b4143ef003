"""python -m bench <benchmark> [args]: the benchmarks recorded in docs/performance.md."""

from __future__ import annotations

import sys

BENCHMARKS = {
    "passive-run": "bench.passive_run",
    "license-census": "bench.license_census",
    "filtering": "bench.filtering",
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in BENCHMARKS:
        print("usage: python -m bench {" + ",".join(BENCHMARKS) + "} [args]")
        print("       make bench runs every one of them")
        raise SystemExit(0 if len(sys.argv) < 2 else 2)
    module = __import__(BENCHMARKS[sys.argv[1]], fromlist=["main"])
    module.main(sys.argv[2:])


if __name__ == "__main__":
    main()
