"""Input that once reached a 5xx now gets a 4xx that says what was wrong, and loses nothing:
on SQLite and on PostgreSQL, through one kept-alive connection as a client would send it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings
from tests.support.conda_packages import CHAIN, build_channel
from tests.support.flows import create_channel, create_mirror, run_mirror
from tests.support.python_packages import Dist, build_index
from tests.support.server import Headwater, run_headwater
from tests.support.upstream import serve_directory


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def headwater(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Headwater]:
    overrides = {}
    if request.param == "postgres":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    with run_headwater(make_settings(tmp_path / "var", **overrides)) as server:
        yield server


@pytest.fixture
def client(headwater: Headwater) -> Iterator[httpx.Client]:
    """One connection for the whole test: a 5xx used to cost the client its connection."""
    with headwater.client(headwater.login()) as client:
        yield client


@pytest.fixture
def upstream(tmp_path: Path):
    build_channel(tmp_path / "upstream", CHAIN)
    with serve_directory(tmp_path / "upstream") as server:
        yield server


def refused(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) <= {"detail", "errors"} and isinstance(body["detail"], str), body
    assert words in body["detail"], body


def test_numbers_beyond_what_a_column_holds(client: httpx.Client) -> None:
    create_channel(client, "forge")
    for path in (
        "/api/runs/99999999999999999999999",
        "/api/runs/2147483648",
        "/api/runs/0",
        "/api/channels/forge/mirrors/9223372036854775808",
        "/api/channels/forge/mirrors/2147483648/runs",
    ):
        refused(client.get(path), 422, "")
    refused(client.get("/api/channels", params={"offset": 2**64}), 422, "offset")
    refused(client.put("/api/cves/matches/2147483648", json={"status": "active"}), 422, "")
    # JSON numbers past 64 bits, in a field that takes a count.
    refused(
        client.post(
            "/api/channels/forge/mirrors",
            content=b'{"mirror_name": "m", "source_root": "http://127.0.0.1:1/", '
            b'"filters": {"keep_latest": 123456789012345678901234567890}}',
            headers={"Content-Type": "application/json"},
        ),
        422,
        "keep_latest",
    )
    assert client.get("/api/channels/forge").status_code == 200


def test_nul_characters_and_lone_surrogates(client: httpx.Client) -> None:
    create_channel(client, "forge")
    refused(client.get("/api/channels/for%00ge"), 400, "control character")
    refused(client.get("/api/cves/CVE-2099%000001"), 400, "control character")
    refused(client.get("/api/channels", params={"offset": "1\x00"}), 400, "control character")
    raw = {"Content-Type": "application/json"}
    refused(client.post("/api/channels", content=b'{"name": "a\\u0000b"}', headers=raw), 422, "NUL")
    refused(
        client.patch("/api/channels/forge", content=b'{"description": "x\\u0000"}', headers=raw),
        422,
        "NUL",
    )
    refused(client.post("/api/channels", content=b'{"name": "\\ud800"}', headers=raw), 422, "JSON")
    refused(
        client.patch("/api/channels/forge", content=b'{"description": "\\udfff"}', headers=raw),
        422,
        "JSON",
    )
    refused(client.patch("/api/channels/forge", json={"description": "ring\x07"}), 422, "control")
    assert client.get("/api/channels/forge").json()["description"] == ""


def test_numbers_json_cannot_hold(client: httpx.Client) -> None:
    create_channel(client, "forge")
    raw = {"Content-Type": "application/json"}
    body = b'{"filters": {"cve_score_threshold": 1e999999}}'
    refused(client.patch("/api/channels/forge", content=body, headers=raw), 422, "JSON")
    body = b'{"filters": {"cve_score_threshold": NaN}}'
    refused(client.patch("/api/channels/forge", content=body, headers=raw), 422, "JSON")
    assert client.get("/api/channels/forge").json()["filters"] == {}


def test_a_body_that_is_not_json(client: httpx.Client) -> None:
    refused(
        client.post("/api/auth/login", content=b'{"username": "admin"}', headers={}), 415, "JSON"
    )
    refused(
        client.post(
            "/api/auth/login", content=b"username=admin", headers={"Content-Type": "text/plain"}
        ),
        415,
        "Content-Type: application/json",
    )
    refused(
        client.post(
            "/api/auth/login",
            content=b"\xff\xfe not json",
            headers={"Content-Type": "application/json"},
        ),
        422,
        "not valid JSON",
    )


def test_names_with_a_trailing_newline(client: httpx.Client, upstream) -> None:
    refused(client.post("/api/channels", json={"name": "forge\n"}), 422, "is not valid")
    create_channel(client, "forge")
    body = {"mirror_name": "m\n", "source_root": upstream.url}
    refused(client.post("/api/channels/forge/mirrors", json=body), 422, "mirror_name")
    body = {
        "mirror_name": "py",
        "mirror_type": "python_simple",
        "source_root": upstream.url,
        "filters": {"projects": ["hwpkg\n"]},
    }
    refused(client.post("/api/channels/forge/mirrors", json=body), 422, "is not a project name")
    refused(
        client.post(
            "/api/channels/forge/mirrors",
            json={**body, "filters": {"projects": ["hwpkg"], "only_specs": ["hwpkg\x00"]}},
        ),
        422,
        "",
    )
    assert client.get("/api/channels/forge/mirrors").json()["total_count"] == 0


def test_renaming_a_mirror_to_a_name_its_channel_uses(client: httpx.Client, upstream) -> None:
    create_channel(client, "forge")
    first = create_mirror(client, "forge", upstream.url, mirror_name="first")
    second = create_mirror(client, "forge", upstream.url, mirror_name="second")
    refused(
        client.patch(f"/api/channels/forge/mirrors/{second['id']}", json={"mirror_name": "first"}),
        409,
        "already has a mirror named 'first'",
    )
    names = {
        m["id"]: m["mirror_name"] for m in client.get("/api/channels/forge/mirrors").json()["items"]
    }
    assert names == {first["id"]: "first", second["id"]: "second"}


def test_bodies_larger_than_their_kind_allows(headwater: Headwater, client: httpx.Client) -> None:
    create_channel(client, "forge")
    huge = "x" * (2 << 20)
    refused(
        client.patch("/api/channels/forge", json={"description": huge}), 413, "larger than 1 MiB"
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies as bytes arrive
        yield b'{"description": "'
        for _ in range(64):
            yield b"y" * 65536
        yield b'"}'

    refused(
        client.patch(
            "/api/channels/forge", content=chunks(), headers={"Content-Type": "application/json"}
        ),
        413,
        "larger than 1 MiB",
    )
    refused(
        client.patch("/api/channels/forge", json={"description": "z" * 5000}),
        422,
        "longer than 2000 characters",
    )
    with headwater.client() as anonymous:
        assert anonymous.get("/api/channels").json()["items"][0]["description"] == ""


def test_a_form_field_with_a_nul_character(headwater: Headwater) -> None:
    with headwater.client() as browser:
        response = browser.post("/login", data={"username": "adm\x00in", "password": "x"})
    assert response.status_code == 422
    assert "control character" in response.text


def poison(channel: Path) -> None:
    """Add records no column can hold to the upstream's linux-64 repodata (and its .zst)."""
    import json

    import zstandard

    path = channel / "linux-64" / "repodata.json"
    document = json.loads(path.read_text())
    good = next(iter(document["packages.conda"].values()))
    document["packages.conda"].update(
        {
            "future-1.0-0.conda": {**good, "name": "future", "timestamp": 1e300},
            "huge-1.0-0.conda": {**good, "name": "huge", "size": 10**20},
            "nul\u0000-1.0-0.conda": {**good, "name": "nul"},
            "long-1.0-0.conda": {**good, "name": "l" * 500},
        }
    )
    raw = json.dumps(document).encode()
    path.write_bytes(raw)
    path.with_name("repodata.json.zst").write_bytes(zstandard.ZstdCompressor().compress(raw))


def test_poisoned_upstream_records_are_skipped_and_the_run_completes(
    client: httpx.Client, upstream
) -> None:
    poison(upstream.root)
    create_channel(client, "forge")
    mirror = create_mirror(
        client, "forge", upstream.url, filters={"subdirs": ["linux-64", "noarch"]}
    )
    run = run_mirror(client, "forge", mirror["id"])
    assert run["state"] == "completed", run["error"]
    assert run["excluded_reasons"]["invalid"] == 4
    log = " ".join(line["message"] for line in run["log"])
    assert "timestamp 1e+300 is out of range" in log
    assert "name is longer than 200 characters" in log
    served = client.get("/api/repo/forge/linux-64/repodata.json").json()["packages.conda"]
    assert sorted(served) == ["hw-lib-1.0-0.conda", "hw-lib-2.0-0.conda", "hw-tool-0.1-0.conda"]


def test_poisoned_project_page_links_are_skipped_and_the_run_completes(
    client: httpx.Client, tmp_path: Path
) -> None:
    import json

    root = tmp_path / "index"
    build_index(root, [Dist("gamma", "1.0")], json_pages=True)
    page = root / "simple" / "gamma" / "index.json"
    document = json.loads(page.read_text())
    good = document["files"][0]
    document["files"] += [
        {**good, "filename": "gamma-1.1-py3-none-any.whl", "size": 10**20},
        {**good, "filename": "gamma-1.2\u0000-py3-none-any.whl"},
        {**good, "filename": "gamma-1.3.tar.gz", "hashes": {"sha256": "../../../secret"}},
        {**good, "filename": "gamma-" + "9" * 300 + ".tar.gz"},
    ]
    page.write_text(json.dumps(document))
    with serve_directory(root) as index:
        create_channel(client, "py")
        mirror = create_mirror(
            client,
            "py",
            index.url + "simple/",
            mirror_type="python_simple",
            mirror_mode="active",
            filters={"projects": ["gamma"]},
        )
        run = run_mirror(client, "py", mirror["id"])
    assert run["state"] == "completed", run["error"]
    assert run["excluded_reasons"]["invalid"] == 4
    listed = client.get(
        "/api/repo/py/simple/gamma/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    ).json()
    assert [f["filename"] for f in listed["files"]] == [good["filename"]]
