"""Driving wrk and reading what it prints, for every benchmark that measures an HTTP server.

wrk prints durations in the unit that fits (`820.00us`, `12.31ms`, `1.02s`, `2.50m`, `1.00h`),
sizes the same way (`512.00B`, `35.16KB`, `1.02GB`), and pads them to a column. A request
slower than wrk's `--timeout` (2 s unless told) is counted as a timeout and left out of the
latency distribution, so `run` passes a timeout well above anything measured and reports the
timeouts it still saw.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# wrk's units (its src/units.c): durations are scaled by 1000 up to seconds, then by 60.
_DURATION_MS = {
    "ns": 1e-6,
    "us": 1e-3,
    "ms": 1.0,
    "s": 1000.0,
    "m": 60_000.0,
    "h": 3_600_000.0,
}
_SIZE_BYTES = {
    "B": 1,
    "KB": 1024,
    "MB": 1024**2,
    "GB": 1024**3,
    "TB": 1024**4,
    "PB": 1024**5,
}
_NUMBER = r"(\d+(?:\.\d+)?)"


@dataclass(frozen=True)
class WrkResult:
    requests: int  # completed in the run
    seconds: float  # the run's own duration as wrk measured it
    requests_per_s: float
    bytes_per_s: float  # Transfer/sec
    latency_avg_ms: float | None
    latency_max_ms: float | None
    p50_ms: float | None
    p75_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    non_2xx_3xx: int
    socket_errors: dict[str, int]  # connect, read, write, timeout

    @property
    def mb_per_s(self) -> float:
        return self.bytes_per_s / 1e6

    def as_dict(self) -> dict[str, Any]:
        report = asdict(self)
        report["mb_per_s"] = round(self.mb_per_s, 1)
        return report


def duration_ms(text: str) -> float:
    """A duration as wrk prints it (`820.00us`, `1.02s`, `2.50m`) in milliseconds."""
    match = re.fullmatch(_NUMBER + r"\s*([a-z]+)", text.strip())
    if match is None or match.group(2) not in _DURATION_MS:
        raise ValueError(f"not a wrk duration: {text!r}")
    # wrk prints two decimals: rounded, 2.03s is 2030.0 ms, not 2029.9999999999998
    return round(float(match.group(1)) * _DURATION_MS[match.group(2)], 3)


def size_bytes(text: str) -> float:
    """A size as wrk prints it (`512.00B`, `35.16KB`, `1.02GB`) in bytes (wrk's units are
    powers of 1024)."""
    match = re.fullmatch(_NUMBER + r"\s*([KMGTP]?B)", text.strip())
    if match is None:
        raise ValueError(f"not a wrk size: {text!r}")
    return float(match.group(1)) * _SIZE_BYTES[match.group(2)]


def _count(text: str) -> float:
    """A count as wrk prints it in its thread table (`12.34k`, `1.20M`) or plainly."""
    match = re.fullmatch(_NUMBER + r"([kMGTP]?)", text.strip())
    if match is None:
        raise ValueError(f"not a wrk count: {text!r}")
    scale = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}[match.group(2)]
    return float(match.group(1)) * scale


def parse(output: str) -> WrkResult:
    """What wrk printed (with `--latency` for the percentiles) as figures."""
    percentiles = {
        percent: duration_ms(value)
        for percent, value in re.findall(
            r"^\s*(50|75|90|99(?:\.\d+)?)(?:\.0+)?%\s+(\S+)\s*$", output, re.MULTILINE
        )
    }
    latency = re.search(r"^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)", output, re.MULTILINE)
    done = re.search(
        r"(\d+) requests in " + _NUMBER + r"([a-z]+),\s+(\S+) read", output, re.MULTILINE
    )
    if done is None:
        raise ValueError(f"wrk printed no summary:\n{output}")
    if latency is not None and _latency(latency, 3) == 0.0:
        # Nothing completed within the timeout: wrk prints a distribution of zeros.
        percentiles = {}
    rate = re.search(r"Requests/sec:\s+(\S+)", output)
    transfer = re.search(r"Transfer/sec:\s+(\S+)", output)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        requests=int(done.group(1)),
        seconds=duration_ms(done.group(2) + done.group(3)) / 1000,
        requests_per_s=float(rate.group(1)) if rate else 0.0,
        bytes_per_s=size_bytes(transfer.group(1)) if transfer else 0.0,
        latency_avg_ms=_latency(latency, 1) if percentiles else None,
        latency_max_ms=_latency(latency, 3) if percentiles else None,
        p50_ms=percentiles.get("50"),
        p75_ms=percentiles.get("75"),
        p90_ms=percentiles.get("90"),
        p99_ms=percentiles.get("99"),
        non_2xx_3xx=int(errors.group(1)) if errors else 0,
        socket_errors=dict(
            zip(
                ("connect", "read", "write", "timeout"),
                (int(n) for n in sockets.groups()) if sockets else (0, 0, 0, 0),
                strict=True,
            )
        ),
    )


def _latency(match: re.Match[str] | None, group: int) -> float | None:
    if match is None:
        return None
    try:
        return duration_ms(match.group(group))
    except ValueError:  # wrk prints "-nan" or "0.00us" when nothing completed
        return None


def require() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is missing: `make bench` installs it (scripts/ensure-wrk)")
    return found


def run(
    url: str,
    *,
    connections: int = 64,
    threads: int = 2,
    seconds: float = 10,
    headers: Sequence[str] = (),
    paths: Sequence[str] | None = None,
    timeout_s: int = 60,
) -> WrkResult:
    """wrk against `url` (with `paths`: each connection asks for them in turn, through a Lua
    script, the host and port taken from `url`)."""
    threads = max(1, min(threads, connections))
    command = [
        require(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={timeout_s}s",
        "--latency",
    ]
    for header in headers:
        command += ["-H", header]
    with tempfile.TemporaryDirectory() as scratch:
        if paths:
            script = Path(scratch) / "rotate.lua"
            script.write_text(rotation_script(paths))
            command += ["-s", str(script)]
        done = subprocess.run([*command, url], check=True, capture_output=True, text=True)
    return parse(done.stdout)


def rotation_script(paths: Sequence[str]) -> str:
    """A wrk script whose requests go through `paths` in turn, each thread from its own
    starting point (so that the threads do not ask for the same path at once)."""
    quoted = ",\n".join(f'  "{_lua_escape(path)}"' for path in paths)
    return (
        f"local paths = {{\n{quoted}\n}}\n"
        "local i = 0\n"
        "local threads = 0\n"
        "function setup(thread)\n"
        "  thread:set('offset', threads)\n"
        "  threads = threads + 1\n"
        "end\n"
        "function init(args)\n"
        "  i = ((offset or 0) * 7919) % #paths\n"
        "end\n"
        "function request()\n"
        "  i = i % #paths + 1\n"
        "  return wrk.format(nil, paths[i])\n"
        "end\n"
    )


def _lua_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
