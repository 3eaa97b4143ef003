"""Building real conda packages and indexed channels for tests (conda-package-handling, rattler)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from conda_package_handling import api as cph
from rattler.index import index_fs


@dataclass(frozen=True)
class PackageSpec:
    name: str
    version: str
    build: str = "0"
    build_number: int = 0
    depends: tuple[str, ...] = ()
    subdir: str = "linux-64"
    license: str = "MIT"
    license_family: str | None = "MIT"
    timestamp: int | None = field(default_factory=lambda: int(time.time() * 1000))
    extension: str = ".conda"
    payload: str = ""
    random_bytes: int = 0  # incompressible payload of this size, for large files

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-{self.build}{self.extension}"


def build_package(spec: PackageSpec, out_dir: Path) -> Path:
    """A real package archive: info/index.json, info/paths.json and one file it installs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        payload_path = f"share/{spec.name}/{spec.version}.txt"
        content = (spec.payload or f"{spec.name} {spec.version} {spec.build}\n").encode()
        if spec.random_bytes:
            content += random.Random(spec.filename).randbytes(spec.random_bytes)
        (root / payload_path).parent.mkdir(parents=True)
        (root / payload_path).write_bytes(content)
        index = {
            "name": spec.name,
            "version": spec.version,
            "build": spec.build,
            "build_number": spec.build_number,
            "depends": list(spec.depends),
            "license": spec.license,
            "subdir": spec.subdir,
        }
        if spec.license_family:
            index["license_family"] = spec.license_family
        if spec.timestamp is not None:
            index["timestamp"] = spec.timestamp
        if spec.subdir == "noarch":
            index["noarch"] = "generic"
        else:
            index["arch"] = spec.subdir.split("-", 1)[1] if "-" in spec.subdir else None
            index["platform"] = spec.subdir.split("-", 1)[0]
        paths = {
            "paths": [
                {
                    "_path": payload_path,
                    "path_type": "hardlink",
                    "sha256": hashlib.sha256(content).hexdigest(),
                    "size_in_bytes": len(content),
                }
            ],
            "paths_version": 1,
        }
        info = root / "info"
        info.mkdir()
        (info / "index.json").write_text(json.dumps(index, sort_keys=True))
        (info / "paths.json").write_text(json.dumps(paths))
        (info / "files").write_text(payload_path + "\n")
        files = ["info/index.json", "info/paths.json", "info/files", payload_path]
        cph.create(str(root), files, spec.filename, out_folder=str(out_dir))
    return out_dir / spec.filename


def build_channel(root: Path, specs: list[PackageSpec], *, shards: bool = False) -> Path:
    """A conda channel directory indexed by rattler, as a real channel would be."""
    for spec in specs:
        build_package(spec, root / spec.subdir)
    (root / "noarch").mkdir(parents=True, exist_ok=True)
    asyncio.run(index_fs(root, write_zst=True, write_shards=shards, force=True))
    return root


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# A small dependency chain: hw-app needs hw-lib which needs hw-base (noarch).
CHAIN = [
    PackageSpec("hw-base", "1.0", subdir="noarch"),
    PackageSpec("hw-lib", "1.0", depends=("hw-base >=1.0",)),
    PackageSpec("hw-lib", "2.0", depends=("hw-base >=1.0",)),
    PackageSpec("hw-app", "1.0", depends=("hw-lib >=2",), extension=".tar.bz2"),
    PackageSpec("hw-tool", "0.1", license="GPL-3.0-only", license_family="GPL3"),
]
