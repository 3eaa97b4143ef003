"""What the side-by-side benchmarks of issue 13 share: their options, the spread of N runs,
and the Markdown tables they print (the form docs/performance.md records them in)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Options:
    runs: int
    quick: bool
    rest: list[str]  # what else was on the command line

    @classmethod
    def parse(cls, args: list[str], *, runs: int = 3) -> Options:
        """`--runs N` (default `runs`, 1 with `--quick`), `--quick`; the rest kept."""
        rest = list(args)
        quick = "--quick" in rest
        if quick:
            rest.remove("--quick")
        value = option(rest, "--runs")
        if value is not None:
            index = rest.index("--runs")
            del rest[index : index + 2]
        return cls(runs=int(value) if value else (1 if quick else runs), quick=quick, rest=rest)


def option(args: Sequence[str], name: str) -> str | None:
    """The value after `name` on the command line, if any."""
    if name in args:
        index = list(args).index(name)
        if index + 1 < len(args):
            return args[index + 1]
    return None


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of the runs' values."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def figure(values: Sequence[float | None], digits: int = 1) -> str:
    """`median (min-max)` of the runs, or the one value of a single run."""
    present = [value for value in values if value is not None]
    if not present:
        return "—"
    middle = statistics.median(present)
    if len(present) == 1:
        return _number(middle, digits)
    low, high = _number(min(present), digits), _number(max(present), digits)
    return f"{_number(middle, digits)} ({low}-{high})"


def _number(value: float, digits: int) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def python_path(*entries: object) -> str:
    """PYTHONPATH for a process a benchmark starts: what this one was given first (so that
    `PYTHONPATH=<a tree>/src python -m bench ...` measures that tree's code in every process),
    then `entries`."""
    given = [part for part in os.environ.get("PYTHONPATH", "").split(os.pathsep) if part]
    return os.pathsep.join([*given, *(str(entry) for entry in entries)])


def load_average() -> list[float]:
    """The machine's 1-, 5- and 15-minute load averages: what else was running shows in every
    figure measured on two shared cores."""
    return [round(value, 2) for value in os.getloadavg()]


def die_with_parent() -> None:
    """`preexec_fn` for the servers a benchmark starts: they get SIGTERM when the benchmark's
    process dies, even by SIGKILL or a `timeout`, instead of living on as orphans (Linux's
    PR_SET_PDEATHSIG; nothing elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
