"""What an upstream sends is read within limits however it sends it: compressed answers are
decoded by Headwater within the document's limit, encodings nobody asked for are refused, and
an upstream that drips a byte at a time is given up on instead of holding a preview or a run."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import zstandard

from tests.support.conda_packages import CHAIN, build_channel
from tests.support.flows import create_channel, create_mirror, run_mirror
from tests.support.python_packages import Dist, build_index
from tests.support.server import Headwater
from tests.support.upstream import Fault, Upstream, serve_directory

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Upstream]:
    build_channel(tmp_path / "up" / "conda", CHAIN)
    build_index(tmp_path / "up" / "pypi", [Dist("gamma", "1.0")], json_pages=True)
    with serve_directory(tmp_path / "up") as server:
        yield server


def pypi_mirror(client: httpx.Client, upstream: Upstream) -> dict:
    create_channel(client, "py")
    return create_mirror(
        client,
        "py",
        upstream.url + "pypi/simple/",
        mirror_type="python_simple",
        filters={"projects": ["gamma"]},
    )


def test_a_gzip_answer_is_decoded_and_a_gzip_bomb_refused_at_the_limit(
    headwater: Headwater, token: str, upstream: Upstream
) -> None:
    page = "/pypi/simple/gamma/"
    html = (upstream.root / "pypi" / "simple" / "gamma" / "index.html").read_bytes()
    gzipped = {"Content-Encoding": "gzip", "Content-Type": "text/html"}
    with headwater.client(token) as client:
        mirror = pypi_mirror(client, upstream)
        upstream.faults[page] = Fault(body=gzip.compress(html), headers=gzipped)
        assert run_mirror(client, "py", mirror["id"])["state"] == "completed"
        listed = client.get("/api/repo/py/simple/gamma/", headers=JSON).json()["files"]
        assert [f["filename"] for f in listed] == ["gamma-1.0-py3-none-any.whl"]

        bomb = gzip.compress(html + b" " * (80 << 20))  # 80 MiB of page in 80 KiB
        assert len(bomb) < 200_000
        upstream.faults[page] = Fault(body=bomb, headers=gzipped)
        client.patch(
            f"/api/channels/py/mirrors/{mirror['id']}", json={"filters": {"keep_latest": 1}}
        )
        run = run_mirror(client, "py", mirror["id"])
    assert run["state"] == "failed"
    assert "is larger than 64 MiB; refusing it" in run["error"]


def test_an_encoding_nobody_asked_for_is_refused(
    headwater: Headwater, token: str, upstream: Upstream
) -> None:
    """zstd frames of zeros: a few kilobytes that httpx would have expanded a read at a time."""
    frame = zstandard.ZstdCompressor().compress(bytes(64 << 20))
    upstream.faults["/conda/noarch/repodata.json.zst"] = Fault(
        body=frame * 8, headers={"Content-Encoding": "zstd"}
    )
    with headwater.client(token) as client:
        create_channel(client, "forge")
        response = client.post(
            "/api/channels/forge/mirrors/preview",
            json={"source_root": upstream.url + "conda/", "filters": {"subdirs": ["noarch"]}},
        )
    assert response.status_code == 422, response.text
    assert "came as 'zstd', which was not asked for" in response.json()["detail"]


def test_an_upstream_that_drips_is_given_up_on(
    headwater: Headwater, token: str, upstream: Upstream
) -> None:
    """A byte every 0.3 s never trips a read timeout (5 s here); the pace check does."""
    path = "/conda/noarch/repodata.json.zst"
    body = (upstream.root / path.lstrip("/")).read_bytes()
    upstream.faults[path] = Fault(body=body, drip=0.3)
    with headwater.client(token) as client:
        client.timeout = httpx.Timeout(60.0)
        create_channel(client, "forge")
        preview = client.post(
            "/api/channels/forge/mirrors/preview",
            json={"source_root": upstream.url + "conda/", "filters": {"subdirs": ["noarch"]}},
        )
        assert preview.status_code == 422, preview.text
        assert "giving up on it" in preview.json()["detail"]
        mirror = create_mirror(
            client, "forge", upstream.url + "conda/", filters={"subdirs": ["noarch"]}
        )
        run = run_mirror(client, "forge", mirror["id"])
    assert run["state"] == "failed"
    assert "less than 16 KiB per 5 s; giving up on it" in run["error"]
