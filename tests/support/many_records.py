"""A conda upstream of many records of one package, written as repodata only: a passive mirror
takes them without any file being built or fetched."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def record(name: str, version: str, subdir: str, build: str = "0") -> tuple[str, dict]:
    filename = f"{name}-{version}-{build}.conda"
    return filename, {
        "name": name,
        "version": version,
        "build": build,
        "build_number": 0,
        "depends": [],
        "license": "MIT",
        "sha256": hashlib.sha256(f"{subdir}/{filename}".encode()).hexdigest(),
        "md5": hashlib.md5(f"{subdir}/{filename}".encode()).hexdigest(),
        "size": 1000 + len(filename),
        "subdir": subdir,
        "timestamp": 1700000000000,
    }


def write_upstream(root: Path, records: dict[str, list[tuple[str, str]]]) -> None:
    """`records`: subdir → (name, version) of each record; noarch is always written."""
    for subdir in {"noarch", *records}:
        packages = dict(record(name, version, subdir) for name, version in records.get(subdir, []))
        document = {"info": {"subdir": subdir}, "packages": {}, "packages.conda": packages}
        (root / subdir).mkdir(parents=True, exist_ok=True)
        (root / subdir / "repodata.json").write_bytes(json.dumps(document).encode())
