"""Benchmark inputs: the real repodata in ../shared/data, and its conda-forge-sized expansion."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import zstandard

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
REAL = SHARED / "repodata" / "conda-forge-subchannel-python3.9"
CACHE = ROOT / "bench" / ".cache"

# conda-forge's linux-64 has about 466k records; the real sample has 2,709 in 63 names.
TARGET_RECORDS = 466_000
_ORIGIN_KEYS = ("url", "channel", "fn")


def require_shared_data() -> None:
    if not REAL.is_dir():
        raise SystemExit(
            f"{REAL} is absent: the benchmarks read the real repodata from ../shared/data"
        )


def real_channel() -> Path:
    """The real conda-forge sample, all eight subdirs, as an upstream directory."""
    require_shared_data()
    target = CACHE / "real"
    if not (target / "noarch" / "repodata.json").exists():
        for subdir in sorted(path.name for path in REAL.iterdir() if path.is_dir()):
            (target / subdir).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REAL / subdir / "repodata.json", target / subdir / "repodata.json")
    return target


def _records(subdir: str) -> dict[str, dict[str, Any]]:
    document = json.loads((REAL / subdir / "repodata.json").read_text())
    records = {**document.get("packages", {}), **document.get("packages.conda", {})}
    return {
        name: {k: v for k, v in record.items() if k not in _ORIGIN_KEYS}
        for name, record in records.items()
    }


def expand(records: dict[str, dict[str, Any]], copies: int) -> dict[str, dict[str, dict[str, Any]]]:
    """The deterministic expansion documented in docs/performance.md.

    Copy k of every record gets the name suffix `-x<k>` (and its dependencies on packages of
    the sample get the same suffix, so the copy is a consistent channel of its own), its
    records split into two names by the parity of their position, the sha256 and md5 of
    (original digest, k), and its timestamp moved by k seconds. Filenames stay unique and
    every record stays a valid repodata record.
    """
    names = {record["name"] for record in records.values()}
    ordered = sorted(records.items())
    packages: dict[str, dict[str, Any]] = {}
    conda: dict[str, dict[str, Any]] = {}
    for copy in range(copies):
        for position, (filename, record) in enumerate(ordered):
            suffix = f"-x{copy}" if position % 2 == 0 else f"-y{copy}"
            clone = dict(record)
            clone["name"] = record["name"] + suffix
            clone["depends"] = [_rename(dep, names, suffix) for dep in record.get("depends", [])]
            clone["sha256"] = hashlib.sha256(f"{record['sha256']}:{copy}".encode()).hexdigest()
            clone["md5"] = hashlib.md5(f"{record.get('md5')}:{copy}".encode()).hexdigest()
            if isinstance(record.get("timestamp"), int):
                clone["timestamp"] = record["timestamp"] + copy * 1000
            extension = ".conda" if filename.endswith(".conda") else ".tar.bz2"
            new_name = f"{clone['name']}-{record['version']}-{record['build']}{extension}"
            (conda if extension == ".conda" else packages)[new_name] = clone
    return {"packages": packages, "packages.conda": conda}


def _rename(dependency: str, names: set[str], suffix: str) -> str:
    name, _, rest = dependency.partition(" ")
    return f"{name}{suffix} {rest}".rstrip() if name in names else dependency


def expanded_channel() -> Path:
    """linux-64 expanded to conda-forge's size, noarch by the same factor; cached on disk."""
    require_shared_data()
    target = CACHE / "expanded"
    marker = target / "linux-64" / "repodata.json.zst"
    if marker.exists():
        return target
    base = _records("linux-64")
    copies = -(-TARGET_RECORDS // len(base))
    for subdir in ("linux-64", "noarch"):
        sample = base if subdir == "linux-64" else _records("noarch")
        document = {
            "info": {"subdir": subdir},
            "repodata_version": 1,
            "removed": [],
            **expand(sample, copies),
        }
        body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
        (target / subdir).mkdir(parents=True, exist_ok=True)
        (target / subdir / "repodata.json").write_bytes(body)
        (target / subdir / "repodata.json.zst").write_bytes(
            zstandard.ZstdCompressor(level=10).compress(body)
        )
    return target


def describe(channel: Path) -> dict[str, dict[str, int]]:
    summary = {}
    for subdir in sorted(path.name for path in channel.iterdir() if path.is_dir()):
        body = (channel / subdir / "repodata.json").read_bytes()
        document = json.loads(body)
        summary[subdir] = {
            "records": len(document.get("packages", {})) + len(document.get("packages.conda", {})),
            "json_bytes": len(body),
        }
    return summary
