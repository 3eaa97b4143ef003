"""Real wheels and sdists built by the tests, and a static simple index that lists them.

A wheel here is a real wheel (PEP 427): a zip with the package, its `.dist-info` METADATA,
WHEEL and a RECORD of every file's hash, which pip and uv install. An sdist is a real `.tar.gz`
with PKG-INFO and a pyproject.toml. The index is what any web server would serve from a
directory: `simple/<project>/index.html` (PEP 503), and, when asked for, an `index.json`
(PEP 691) beside it that the test upstream serves to clients that accept JSON.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import io
import json
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name


@dataclass(frozen=True)
class Dist:
    """One distribution file to build."""

    name: str
    version: str
    kind: str = "wheel"  # wheel or sdist
    tag: str = "py3-none-any"  # the wheel's tags
    requires: tuple[str, ...] = ()
    requires_python: str | None = None
    license: str | None = None
    license_expression: str | None = None
    classifiers: tuple[str, ...] = ()
    uploaded: dt.datetime | None = None
    yanked: str | None = None

    @property
    def project(self) -> str:
        return canonicalize_name(self.name)

    @property
    def module(self) -> str:
        return self.project.replace("-", "_")

    @property
    def filename(self) -> str:
        stem = f"{self.module}-{self.version}"
        return f"{stem}-{self.tag}.whl" if self.kind == "wheel" else f"{stem}.tar.gz"


@dataclass
class Built:
    dist: Dist
    path: Path
    sha256: str
    metadata: bytes
    extra: dict[str, str] = field(default_factory=dict)


def core_metadata(dist: Dist) -> bytes:
    lines = ["Metadata-Version: 2.4", f"Name: {dist.name}", f"Version: {dist.version}"]
    if dist.requires_python:
        lines.append(f"Requires-Python: {dist.requires_python}")
    if dist.license_expression:
        lines.append(f"License-Expression: {dist.license_expression}")
    if dist.license:
        lines.append(f"License: {dist.license}")
    lines += [f"Classifier: {classifier}" for classifier in dist.classifiers]
    lines += [f"Requires-Dist: {requirement}" for requirement in dist.requires]
    return ("\n".join(lines) + "\n\n").encode()


def _record_hash(content: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
    return f"sha256={digest},{len(content)}"


def _wheel_bytes(dist: Dist, metadata: bytes) -> bytes:
    info = f"{dist.module}-{dist.version}.dist-info"
    files = {
        f"{dist.module}/__init__.py": f'__version__ = "{dist.version}"\n'.encode(),
        f"{info}/METADATA": metadata,
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: headwater-tests\n"
            f"Root-Is-Purelib: {'true' if dist.tag.endswith('-any') else 'false'}\n"
            f"Tag: {dist.tag}\n\n"
        ).encode(),
    }
    record = "".join(f"{name},{_record_hash(content)}\n" for name, content in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), content)
    return buffer.getvalue()


def _sdist_bytes(dist: Dist, metadata: bytes) -> bytes:
    root = f"{dist.module}-{dist.version}"
    files = {
        f"{root}/PKG-INFO": metadata,
        f"{root}/pyproject.toml": (
            '[build-system]\nrequires = ["flit_core>=3.2"]\nbuild-backend = "flit_core.buildapi"\n'
            f'[project]\nname = "{dist.name}"\nversion = "{dist.version}"\n'
            'description = "test"\n'
        ).encode(),
        f"{root}/{dist.module}/__init__.py": f'__version__ = "{dist.version}"\n'.encode(),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(content)
            member.mtime = 1_704_067_200
            archive.addfile(member, io.BytesIO(content))
    return buffer.getvalue()


def build_dist(directory: Path, dist: Dist) -> Built:
    metadata = core_metadata(dist)
    content = _wheel_bytes(dist, metadata) if dist.kind == "wheel" else _sdist_bytes(dist, metadata)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / dist.filename
    path.write_bytes(content)
    return Built(dist, path, hashlib.sha256(content).hexdigest(), metadata)


def build_index(root: Path, dists: list[Dist], *, json_pages: bool = False) -> list[Built]:
    """Build every distribution under `root/files/` and write `root/simple/`.

    The HTML pages carry sha256 fragments and `data-requires-python`, as a static index made by
    a tool like dumb-pypi would; with `json_pages`, each project also gets a PEP 691 page with
    upload times and PEP 658 `.metadata` files, as PyPI serves them.
    """
    built = [build_dist(root / "files", dist) for dist in dists]
    by_project: dict[str, list[Built]] = {}
    for item in built:
        by_project.setdefault(item.dist.project, []).append(item)
    simple = root / "simple"
    simple.mkdir(parents=True, exist_ok=True)
    links = "".join(f'<a href="{p}/">{p}</a><br>\n' for p in sorted(by_project))
    (simple / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n")
    for project, items in by_project.items():
        page = simple / project
        page.mkdir(exist_ok=True)
        (page / "index.html").write_text(_project_html(project, items))
        if json_pages:
            for item in items:
                if item.dist.kind == "wheel":
                    item.path.with_name(item.path.name + ".metadata").write_bytes(item.metadata)
            (page / "index.json").write_text(_project_json(project, items))
    return built


def _project_html(project: str, items: list[Built]) -> str:
    anchors = []
    for item in items:
        attributes = f'href="../../files/{item.dist.filename}#sha256={item.sha256}"'
        if item.dist.requires_python:
            attributes += f' data-requires-python="{html.escape(item.dist.requires_python)}"'
        if item.dist.yanked is not None:
            attributes += f' data-yanked="{html.escape(item.dist.yanked)}"'
        anchors.append(f"<a {attributes}>{item.dist.filename}</a><br>")
    body = "\n".join(anchors)
    return f"<!DOCTYPE html>\n<html><body>\n<h1>Links for {project}</h1>\n{body}\n</body></html>\n"


def _project_json(project: str, items: list[Built]) -> str:
    files = []
    for item in items:
        entry: dict[str, object] = {
            "filename": item.dist.filename,
            "url": f"../../files/{item.dist.filename}",
            "hashes": {"sha256": item.sha256},
            "requires-python": item.dist.requires_python,
            "size": item.path.stat().st_size,
            "yanked": item.dist.yanked if item.dist.yanked is not None else False,
        }
        if item.dist.kind == "wheel":
            entry["core-metadata"] = {"sha256": hashlib.sha256(item.metadata).hexdigest()}
        if item.dist.uploaded is not None:
            entry["upload-time"] = item.dist.uploaded.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        files.append(entry)
    document = {"meta": {"api-version": "1.1"}, "name": project, "files": files, "versions": []}
    return json.dumps(document)
