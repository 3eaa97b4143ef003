"""Issue 12's benchmark: dependency checks on the conda-forge-sized channel.

    python -m bench dependencies [--runs 5] [--profile closure|newest|check|headwater|rattler]

On the expansion of bench/data.py (linux-64 468,657 records, noarch 35,465), each measured
N times, every measurement in a fresh process (so its time and its peak memory, VmHWM, are its
own and no phase inherits another's peak):

1. *closure*: read and parse linux-64 and noarch (`parse_repodata`), judge every record with
   a mirror whose filter is `only_specs` naming 50 packages (`judge_all` into the run's `Pool`,
   as `sync_conda_mirror` does), then `take_dependencies` with the refusing rules: every
   version that satisfies a dependency (`all`), and in a separate process only the newest
   (`newest`). The closure step is timed alone and with the parse and judgement before it.
   The 50 names: the sample's linux-64 names whose records have dependencies, sorted, the
   i-th taken from copy 3i of the expansion (`-x<3i>`, or `-y<3i>` when only that half has
   dependencies), so that their closures overlap as little as the channel allows.
2. *check*: `SubdirIndex.of_repodata` of the expanded linux-64 and noarch repodata.json, then
   `check_revision` of every record of both (504,122), as a run checks the revision it built;
   the pool (what names the filter that removed a missing dependency) is empty here, as for a
   mirror that keeps everything.
3. *must_install*: an environment of 20 packages of the expansion's copy 0 that solves for
   linux-64, solved through Headwater's path (`solvability.solve_conda`, which is what a run's
   check calls, on the two repodata.json files) and by py-rattler alone
   (`rattler.solve_with_sparse_repodata` on SparseRepoData of the same files with the same
   virtual packages, channel priority and timestamp policy, no Headwater code), alternating
   which goes first. Both must find the same solution.

`--profile PHASE` runs one measurement of a phase under cProfile and prints where its time
goes.
"""

from __future__ import annotations

import asyncio
import cProfile
import datetime as dt
import json
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.data import REAL, expanded_channel
from bench.harness import ROOT, peak_rss_mib

SUBDIRS = ("linux-64", "noarch")
CLOSURE_NAMES = 50
CHANNEL_URL = "https://headwater.invalid/forge"
# 20 packages of the expansion's copy 0 (bench/data.py renames dependencies within a copy, so
# these find each other); they solve together into 38 packages.
ENVIRONMENT = tuple(
    f"{name}-x0"
    for name in (
        "pypy3.9",
        "curl",
        "libcurl",
        "krb5",
        "openssl",
        "sqlite",
        "libsqlite",
        "readline",
        "ncurses",
        "tk",
        "xorg-libx11",
        "libxcb",
        "zstd",
        "xz",
        "bzip2",
        "zlib",
        "libffi",
        "expat",
        "libssh2",
        "libnghttp2",
    )
)
# What solvability.virtual_packages gives linux-64, restated here so that the rattler-alone
# solve runs no Headwater code.
LINUX_VIRTUAL = (("__unix", "0"), ("__linux", "5.10"), ("__glibc", "2.28"), ("__archspec", "1"))
SOLVE_SECONDS = 120
TARGETS = {"closure": 10.0, "check": 10.0, "memory_mib": 2048.0, "must_install": 5.0}


def main(args: list[str]) -> None:
    runs = int(_option(args, "--runs") or 5)
    channel = expanded_channel()
    names = closure_names()
    profile = _option(args, "--profile")
    if profile:
        _child(profile, channel, names, profile=True)
        return
    measured: dict[str, list[dict[str, Any]]] = {
        phase: [] for phase in ("closure", "newest", "check", "headwater", "rattler")
    }
    for run in range(runs):
        for phase in ("closure", "newest", "check"):
            measured[phase].append(_child(phase, channel, names))
        solvers = ("headwater", "rattler") if run % 2 == 0 else ("rattler", "headwater")
        for phase in solvers:
            measured[phase].append(_child(phase, channel, names))
        print(f"run {run + 1}/{runs} done", file=sys.stderr, flush=True)
    solutions = {tuple(m["solution"]) for m in measured["headwater"] + measured["rattler"]}
    assert len(solutions) == 1, "Headwater's path and rattler alone solved differently"
    results = _summary(runs, names, measured)
    _print_table(results)
    print(json.dumps(results, indent=2))


def closure_names() -> list[str]:
    """The 50 names of the closure: see the module's docstring. Which half of a name
    (`-x`/`-y`) a sample record goes to is its position's parity, the same in every copy."""
    document = json.loads((REAL / "linux-64" / "repodata.json").read_text())
    records = sorted({**document["packages"], **document["packages.conda"]}.items())
    halves: dict[str, set[str]] = {}
    for position, (_, record) in enumerate(records):
        if record.get("depends"):
            halves.setdefault(record["name"], set()).add("x" if position % 2 == 0 else "y")
    chosen = sorted(halves)[:CLOSURE_NAMES]
    return [f"{name}-{'x' if 'x' in halves[name] else 'y'}{3 * i}" for i, name in enumerate(chosen)]


def _child(phase: str, channel: Path, names: list[str], *, profile: bool = False) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    command = [sys.executable, "-m", "bench.dependencies", "child", phase, str(channel)]
    done = subprocess.run(
        [*command, ",".join(names), "profile" if profile else "-"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    if profile:
        print(done.stdout)
        return {}
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


# In the measuring process: one phase, once.


def child(phase: str, channel: str, names: str, profile: str) -> None:
    work = {
        "closure": lambda: _closure(Path(channel), names.split(","), newest=False),
        "newest": lambda: _closure(Path(channel), names.split(","), newest=True),
        "check": lambda: _check(Path(channel)),
        "headwater": lambda: _solve_headwater(Path(channel)),
        "rattler": lambda: _solve_rattler(Path(channel)),
    }[phase]
    if profile == "profile":
        profiler = cProfile.Profile()
        result = profiler.runcall(work)
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(25)
        print(json.dumps({k: v for k, v in result.items() if k != "solution"}), flush=True)
        os._exit(0)
    result = work()
    result["peak_rss_mib"] = round(peak_rss_mib(), 1)
    print(json.dumps(result), flush=True)
    # Leave without finalizing the interpreter: py-rattler 0.28's runtime threads sometimes
    # abort it there ("Fatal Python error: PyGILState_Release ... finalizing", twice in
    # about 75 solving processes on this machine), after the measurement is done.
    os._exit(0)


def _closure(channel: Path, names: list[str], *, newest: bool) -> dict[str, Any]:
    from headwater.dependencies.conda import Pool, take_dependencies
    from headwater.dependencies.report import DependencyReport
    from headwater.filters import FilterSet, parse_filter_set
    from headwater.filters.rules import MirrorRules
    from headwater.formats.conda.repodata import parse_repodata
    from headwater.services.sync import judge_all

    mirror = parse_filter_set(
        {
            "only_specs": names,
            "include_dependencies": True,
            "dependencies": "newest" if newest else "all",
        }
    )
    started = time.perf_counter()
    rules = MirrorRules(mirror, FilterSet())
    pool = Pool(refusals=rules.refusals().judge)
    kept = 0
    records = 0
    parse_s = judge_s = 0.0
    for subdir in SUBDIRS:
        body = (channel / subdir / "repodata.json").read_bytes()
        began = time.perf_counter()
        parsed = parse_repodata(body, subdir)
        del body
        judging = time.perf_counter()
        chosen, _ = judge_all(rules, parsed.records, subdir, pool)
        judged = time.perf_counter()
        parse_s += judging - began
        judge_s += judged - judging
        kept += len(chosen)
        records += len(parsed.records)
        del parsed
    kept_names = {entry.record.name for entry in pool.kept()}
    assert len(kept_names) == len(names), f"only {len(kept_names)} of the names found"
    closing = time.perf_counter()
    report = DependencyReport()
    assert pool.refusals is not None
    taken = take_dependencies(pool, pool.refusals, newest=newest, report=report)
    finished = time.perf_counter()
    return {
        "records": records,
        "named_kept": kept,
        "taken": len(taken),
        "parse_s": round(parse_s, 3),
        "judge_s": round(judge_s, 3),
        "closure_s": round(finished - closing, 3),
        "total_s": round(finished - started, 3),
    }


def _check(channel: Path) -> dict[str, Any]:
    from headwater.dependencies.conda import Pool, SubdirIndex, check_revision
    from headwater.dependencies.report import DependencyReport

    started = time.perf_counter()
    revision = {
        subdir: SubdirIndex.of_repodata(
            subdir, (channel / subdir / "repodata.json").read_bytes(), keep_records=True
        )
        for subdir in SUBDIRS
    }
    checking = time.perf_counter()
    report = DependencyReport()
    check_revision(revision, Pool(), report)
    finished = time.perf_counter()
    return {
        "records": sum(len(index.records) for index in revision.values()),
        "findings": len(report.findings),
        "broken_files": len({(f.subdir, f.filename) for f in report.findings}),
        "index_s": round(checking - started, 3),
        "check_s": round(finished - checking, 3),
        "total_s": round(finished - started, 3),
    }


def _sources(channel: Path) -> list[tuple[str, str, Path]]:
    return [(CHANNEL_URL, subdir, channel / subdir / "repodata.json") for subdir in SUBDIRS]


def _solve_headwater(channel: Path) -> dict[str, Any]:
    from headwater.services.solvability import solve_conda

    started = time.perf_counter()
    solution = solve_conda(list(ENVIRONMENT), "linux-64", _sources(channel))
    return _solved(solution, time.perf_counter() - started)


def _solve_rattler(channel: Path) -> dict[str, Any]:
    import rattler

    started = time.perf_counter()
    sparse = [
        rattler.SparseRepoData(rattler.Channel(url), subdir, str(path))
        for url, subdir, path in _sources(channel)
    ]
    virtual = [
        rattler.GenericVirtualPackage(
            rattler.PackageName(name), rattler.Version(version), rattler.BuildString("0")
        )
        for name, version in LINUX_VIRTUAL
    ]
    solving = rattler.solve_with_sparse_repodata(
        specs=[rattler.MatchSpec(spec) for spec in ENVIRONMENT],
        sparse_repodata=sparse,
        virtual_packages=virtual,
        timeout=dt.timedelta(seconds=SOLVE_SECONDS),
        channel_priority=rattler.ChannelPriority.Strict,
        timestamp_policy="allow-missing",
    )
    solution = asyncio.run(solving)
    return _solved(solution, time.perf_counter() - started)


def _solved(solution: list[Any], seconds: float) -> dict[str, Any]:
    return {
        "solve_s": round(seconds, 3),
        "packages": len(solution),
        "solution": sorted(f"{r.name.normalized}={r.version}={r.build}" for r in solution),
    }


# Summary.


def _spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"min": ordered[0], "median": ordered[len(ordered) // 2], "max": ordered[-1]}


def _summary(
    runs: int, names: list[str], measured: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    def spread(phase: str, key: str) -> dict[str, float]:
        return _spread([m[key] for m in measured[phase]])

    headwater = spread("headwater", "solve_s")
    rattler = spread("rattler", "solve_s")
    ratios = [
        h["solve_s"] / r["solve_s"]
        for h, r in zip(measured["headwater"], measured["rattler"], strict=True)
    ]
    first = {phase: values[0] for phase, values in measured.items()}
    return {
        "runs": runs,
        "date": dt.date.today().isoformat(),
        "cores": os.cpu_count(),
        "closure_names": names,
        "environment": list(ENVIRONMENT),
        "closure_all": {
            "records": first["closure"]["records"],
            "named_kept": first["closure"]["named_kept"],
            "taken": first["closure"]["taken"],
            "closure_s": spread("closure", "closure_s"),
            "parse_s": spread("closure", "parse_s"),
            "judge_s": spread("closure", "judge_s"),
            "total_s": spread("closure", "total_s"),
            "peak_rss_mib": spread("closure", "peak_rss_mib"),
        },
        "closure_newest": {
            "taken": first["newest"]["taken"],
            "closure_s": spread("newest", "closure_s"),
            "total_s": spread("newest", "total_s"),
            "peak_rss_mib": spread("newest", "peak_rss_mib"),
        },
        "check": {
            "records": first["check"]["records"],
            "findings": first["check"]["findings"],
            "broken_files": first["check"]["broken_files"],
            "index_s": spread("check", "index_s"),
            "check_s": spread("check", "check_s"),
            "total_s": spread("check", "total_s"),
            "peak_rss_mib": spread("check", "peak_rss_mib"),
        },
        "must_install": {
            "packages": first["headwater"]["packages"],
            "headwater_s": headwater,
            "rattler_alone_s": rattler,
            "ratio_headwater_to_rattler": _spread([round(r, 2) for r in ratios]),
            "headwater_peak_rss_mib": spread("headwater", "peak_rss_mib"),
            "rattler_peak_rss_mib": spread("rattler", "peak_rss_mib"),
        },
    }


def _print_table(results: dict[str, Any]) -> None:
    def shown(spread: dict[str, float], unit: str = "s") -> str:
        return f"{spread['min']:.2f} / {spread['median']:.2f} / {spread['max']:.2f} {unit}"

    closure, newest = results["closure_all"], results["closure_newest"]
    check, solve = results["check"], results["must_install"]
    memory = TARGETS["memory_mib"]
    rows = [
        ("closure (all versions), closure step", shown(closure["closure_s"]), "< 10 s"),
        ("closure (all), parse + judge + closure", shown(closure["total_s"]), "< 10 s"),
        ("closure (all), peak memory", shown(closure["peak_rss_mib"], "MiB"), f"< {memory:.0f}"),
        ("closure (newest), closure step", shown(newest["closure_s"]), "< 10 s"),
        ("closure (newest), parse + judge + closure", shown(newest["total_s"]), "< 10 s"),
        ("closure (newest), peak memory", shown(newest["peak_rss_mib"], "MiB"), f"< {memory:.0f}"),
        ("full check, index", shown(check["index_s"]), ""),
        ("full check, check_revision", shown(check["check_s"]), ""),
        ("full check, index + check", shown(check["total_s"]), "< 10 s"),
        ("full check, peak memory", shown(check["peak_rss_mib"], "MiB"), f"< {memory:.0f}"),
        ("must_install, Headwater (solve_conda)", shown(solve["headwater_s"]), "< 5 s"),
        ("must_install, py-rattler alone", shown(solve["rattler_alone_s"]), ""),
        (
            "must_install, ratio Headwater / rattler",
            shown(solve["ratio_headwater_to_rattler"], "x"),
            "",
        ),
    ]
    print(f"runs: {results['runs']} (min / median / max)")
    print(
        f"closure: {closure['records']} records, {closure['named_kept']} named kept; "
        f"taken: {closure['taken']} (all), {newest['taken']} (newest)"
    )
    print(
        f"check: {check['records']} records, {check['findings']} findings "
        f"in {check['broken_files']} files"
    )
    print(f"must_install: 20 specs, {solve['packages']} packages solved")
    width = max(len(row[0]) for row in rows)
    for label, value, target in rows:
        print(f"  {label:<{width}}  {value:<32} {target}")


def _option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args and args.index(name) + 1 < len(args) else None


if __name__ == "__main__" and sys.argv[1:2] == ["child"]:
    child(*sys.argv[2:])
