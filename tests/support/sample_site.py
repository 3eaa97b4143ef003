"""A Headwater with realistic content on every page, for the layout test and the screenshots.

A channel whose conda mirror has run (long package names, long build strings), a failed run
of an unreachable upstream, an uploaded wheel with CVE matches of every severity, an empty
channel, an organization with a group, a token and a garbage collection.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from headwater.settings import Settings
from tests.support.advisories import CRITICAL, HIGH, MEDIUM_V2, import_zip, osv, zip_of
from tests.support.conda_packages import CHAIN, PackageSpec, build_channel
from tests.support.flows import create_channel, create_mirror, run_mirror
from tests.support.python_packages import Dist, build_dist
from tests.support.server import Headwater, run_headwater
from tests.support.upstream import serve_directory

CHANNEL = "data-science-platform-team"
EMPTY = "empty"
ORGANIZATION = "platform-engineering"
CVE = "CVE-2099-31337"
LONG_NAME = "hw-exceptionally-long-package-name-for-checking-the-layout-of-tables"
LONG_WHEEL = "headwater-layout-check-with-a-really-long-distribution-name"
PACKAGES = [
    *CHAIN,
    PackageSpec(
        LONG_NAME,
        "2026.12.07.post1234567890",
        build="py312h1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d_0",
        depends=("hw-lib >=2", "hw-base >=1.0,<2.0a0"),
        license="Apache-2.0 OR BSD-3-Clause OR MIT WITH LLVM-exception",
    ),
]


def advisories(package: str, cve: str = CVE) -> dict[str, Any]:
    """Three advisories of `package` (PyPI), Critical (`cve`), High and Medium."""
    number = int(cve.rsplit("-", 1)[1])
    return {
        "critical.json": osv(
            "GHSA-abcd-efgh-ijkl",
            package,
            aliases=(cve,),
            vector=CRITICAL,
            summary=(
                f"Improper neutralization of special elements used in an OS command in {package} "
                "allows remote code execution through a crafted requirement"
            ),
        ),
        "high.json": osv(
            "PYSEC-2099-77", package, aliases=(f"CVE-2099-{number + 1}",), vector=HIGH
        ),
        "medium.json": osv(
            "PYSEC-2099-78", package, aliases=(f"CVE-2099-{number + 2}",), vector=MEDIUM_V2
        ),
    }


UNREACHABLE = "http://127.0.0.1:9/a/rather/long/path/to/an/upstream/that/does/not/answer/"


@dataclass
class Site:
    headwater: Headwater
    params: dict[str, str]  # a page route's path parameter → a value that exists
    overrides: dict[str, dict[str, str]]  # a route path → values of its own


def _api(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    response = client.request(method, path, **kwargs)
    assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
    return response.json() if response.content else None


def _upload(client: httpx.Client, channel: str, path: Path) -> None:
    with path.open("rb") as stream:
        response = client.post(
            f"/api/channels/{channel}/files",
            files={"file": (path.name, stream, "application/octet-stream")},
        )
    assert response.status_code == 201, response.text


def _wait_for_job(client: httpx.Client, run_id: int) -> None:
    deadline = time.monotonic() + 30
    while _api(client, "GET", f"/api/jobs/{run_id}")["state"] not in ("completed", "failed"):
        assert time.monotonic() < deadline, f"job {run_id} did not end"
        time.sleep(0.1)


@contextmanager
def sample_site(
    root: Path,
    settings: Settings,
    *,
    channel: str = CHANNEL,
    packages: list[PackageSpec] = PACKAGES,
    package: str = LONG_NAME,
    mirror_name: str = "conda-forge-mirror-of-everything-we-use",
    dist: Dist = Dist(LONG_WHEEL, "10.20.30"),
) -> Iterator[Site]:
    """Headwater running on `settings`, filled with the sample content (built under `root`):
    `packages` mirrored into `channel`, `dist` uploaded there and matched by three CVEs;
    `package` is the one whose page Site.params names."""
    build_channel(root / "upstream", packages)
    wheel = build_dist(root / "dist", dist).path
    with run_headwater(settings) as headwater, serve_directory(root / "upstream") as upstream:
        with headwater.client(headwater.login()) as client:
            create_channel(
                client,
                channel,
                description="Everything the data science teams install, mirrored nightly "
                "from conda-forge with the licences and CVEs the platform team allows",
            )
            create_channel(client, EMPTY)
            mirror = create_mirror(
                client,
                channel,
                upstream.url,
                mirror_name=mirror_name,
                mirror_mode="active",
                cron="0 3 * * *",
                filters={"subdirs": ["noarch", "linux-64"]},
            )
            run = run_mirror(client, channel, mirror["id"])
            assert run["state"] == "completed", run
            dead = create_mirror(
                client,
                channel,
                UNREACHABLE,
                mirror_name="unreachable-upstream",
                filters={"subdirs": ["noarch"]},
            )
            failed = run_mirror(client, channel, dead["id"])
            assert failed["state"] == "failed", failed
            _upload(client, channel, wheel)
            import_zip(client, zip_of(advisories(dist.name)))
            file_id = _api(client, "GET", f"/api/cves/{CVE}/files")["items"][0]["file_id"]
            _api(client, "POST", "/api/organizations", json={"name": ORGANIZATION})
            _api(
                client,
                "POST",
                f"/api/organizations/{ORGANIZATION}/groups",
                json={"name": "data-science-maintainers"},
            )
            _api(
                client,
                "POST",
                "/api/account/tokens",
                json={
                    "name": "ci-upload-token-for-the-nightly-build-pipeline",
                    "scopes": ["artifact:view", "artifact:create"],
                },
            )
            collection = _api(client, "POST", "/api/jobs", json={"kind": "blob-collect"})
            _wait_for_job(client, collection["id"])
        yield Site(
            headwater,
            params={
                "channel": channel,
                "package": package,
                "mirror_id": str(mirror["id"]),
                "run_id": str(run["id"]),
                "file_id": str(file_id),
                "cve_id": CVE,
                "organization": ORGANIZATION,
            },
            overrides={"/admin/jobs/{run_id}": {"run_id": str(collection["id"])}},
        )
