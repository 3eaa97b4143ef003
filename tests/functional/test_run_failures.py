"""Runs that meet a broken upstream fail with the reason, and leave the channel as it was."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from headwater.storage import content_key
from tests.support.conda_packages import CHAIN, PackageSpec, build_channel, build_package
from tests.support.flows import create_channel, create_mirror, filenames, repodata, run_mirror
from tests.support.server import Headwater
from tests.support.upstream import Fault, serve_directory


@pytest.fixture
def upstream(tmp_path: Path):
    build_channel(tmp_path / "upstream", CHAIN)
    with serve_directory(tmp_path / "upstream") as server:
        yield server


def published(client, channel: str) -> tuple[bytes, str]:
    response = client.get(f"/api/repo/{channel}/linux-64/repodata.json")
    return response.content, response.headers.get("etag", "")


def test_corrupt_file_fails_active_run_and_keeps_the_index(
    headwater: Headwater, token: str, upstream, tmp_path: Path
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "forge")
        mirror = create_mirror(client, "forge", upstream.url, mirror_mode="active")
        assert run_mirror(client, "forge", mirror["id"])["state"] == "completed"
        before = published(client, "forge")

        # Upstream publishes a new build whose bytes then get corrupted on the way.
        build_package(
            PackageSpec("hw-lib", "3.0", depends=("hw-base",)), upstream.root / "linux-64"
        )
        build_channel(upstream.root, [])
        upstream.faults["/linux-64/hw-lib-3.0-0.conda"] = Fault(
            body=b"this is not the package the index promised"
        )

        run = run_mirror(client, "forge", mirror["id"])
        assert run["state"] == "failed"
        assert "checksum mismatch for hw-lib-3.0-0.conda" in run["error"]
        assert any("checksum mismatch" in line["message"] for line in run["log"])
        assert published(client, "forge") == before
        assert client.get("/api/repo/forge/linux-64/hw-lib-3.0-0.conda").status_code == 404


def test_passive_corrupt_file_gives_the_client_an_error_and_stores_nothing(
    headwater: Headwater, token: str, upstream
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "lazy")
        mirror = create_mirror(client, "lazy", upstream.url, mirror_mode="passive")
        assert run_mirror(client, "lazy", mirror["id"])["state"] == "completed"
        path = "/linux-64/hw-lib-2.0-0.conda"
        original = (upstream.root / path.lstrip("/")).read_bytes()
        # Same length, different bytes: only the checksum can tell.
        upstream.faults[path] = Fault(body=bytes(reversed(original)), times=1)

        # The mismatch shows either before the response starts (a 502 saying so) or while the
        # body streams (the body is cut short); never does the client get the file whole.
        try:
            refused = client.get(f"/api/repo/lazy{path}")
        except httpx.HTTPError:
            pass
        else:
            assert refused.status_code == 502
            assert "checksum mismatch for hw-lib-2.0-0.conda" in refused.json()["detail"]
        store = headwater.resources.store  # type: ignore[attr-defined]
        sha256 = repodata(client, "lazy", "linux-64")["packages.conda"]["hw-lib-2.0-0.conda"][
            "sha256"
        ]
        assert store.stat(content_key(sha256)) is None

        # The upstream is fine again: the next client gets the real file, fetched again.
        response = client.get(f"/api/repo/lazy{path}")
        assert response.status_code == 200
        assert response.content == original
        assert upstream.count(path) == 2
        assert store.stat(content_key(sha256)) is not None


def test_passive_corruption_found_midway_cuts_the_body_short(
    headwater: Headwater, token: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A large file already streaming when the mismatch shows: the client never gets it whole,
    and the log says why in a line (anyone could fill it with tracebacks otherwise)."""
    big = PackageSpec("hw-big", "1.0", random_bytes=2_000_000)
    build_channel(tmp_path / "big", [big])
    with serve_directory(tmp_path / "big") as upstream, headwater.client(token) as client:
        create_channel(client, "big")
        mirror = create_mirror(client, "big", upstream.url, filters={"subdirs": ["linux-64"]})
        assert run_mirror(client, "big", mirror["id"])["state"] == "completed"
        path = f"/linux-64/{big.filename}"
        original = (upstream.root / path.lstrip("/")).read_bytes()
        upstream.faults[path] = Fault(body=original[:-1] + b"!", trickle=0.005, times=1)

        received = b""
        with (
            pytest.raises(httpx.HTTPError),
            client.stream("GET", f"/api/repo/big{path}") as response,
        ):
            assert response.status_code == 200  # the mismatch shows only at the end
            for chunk in response.iter_bytes():
                received += chunk
        assert 0 < len(received) < len(original)
        sha256 = repodata(client, "big", "linux-64")["packages.conda"][big.filename]["sha256"]
        assert headwater.resources.store.stat(content_key(sha256)) is None  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if r.exc_info], "no traceback for an upstream's fault"
    assert any("checksum mismatch for hw-big" in r.getMessage() for r in caplog.records)


def test_a_stalled_client_does_not_hold_back_other_clients(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    big = PackageSpec("hw-big", "1.0", random_bytes=16_000_000)
    build_channel(tmp_path / "big", [big])
    with serve_directory(tmp_path / "big") as upstream, headwater.client(token) as client:
        create_channel(client, "big")
        mirror = create_mirror(client, "big", upstream.url, filters={"subdirs": ["linux-64"]})
        assert run_mirror(client, "big", mirror["id"])["state"] == "completed"
        path = f"/linux-64/{big.filename}"
        original = (upstream.root / path.lstrip("/")).read_bytes()
        # A small receive buffer, so the stalled client's kernel cannot soak up the whole file.
        small_buffer = httpx.HTTPTransport(
            socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)]
        )
        with (
            httpx.Client(base_url=headwater.url, timeout=30, transport=small_buffer) as stalled,
            stalled.stream("GET", f"/api/repo/big{path}") as slow,
        ):
            assert slow.status_code == 200
            next(slow.iter_raw(4096))  # read a little, then stop reading
            fast = client.get(f"/api/repo/big{path}")
            assert fast.status_code == 200 and fast.content == original
        assert upstream.count(path) == 1


@pytest.mark.parametrize(
    ("zst_fault", "json_fault", "reason"),
    [
        (Fault(status=500), Fault(status=500), "upstream answered 500 Internal Server Error"),
        (Fault(delay=3.0), Fault(delay=3.0), "upstream timed out"),
        (
            Fault(status=404),
            Fault(body=b'{"packages": {"broken'),
            "repodata.json for linux-64 is not valid",
        ),
        (Fault(body=b"not zstd at all"), None, "is not valid zstd"),
    ],
    ids=["http-500", "timeout", "malformed-json", "malformed-zst"],
)
def test_broken_upstream_fails_the_run_cleanly(
    tmp_path: Path, upstream, zst_fault: Fault, json_fault: Fault | None, reason: str
) -> None:
    from tests.conftest import make_settings
    from tests.support.server import run_headwater

    with run_headwater(make_settings(tmp_path / "var", http_timeout=1.0)) as headwater:
        token = headwater.login()
        with headwater.client(token) as client:
            create_channel(client, "forge")
            mirror = create_mirror(
                client,
                "forge",
                upstream.url,
                mirror_mode="passive",
                filters={"subdirs": ["linux-64", "noarch"]},
            )
            assert run_mirror(client, "forge", mirror["id"])["state"] == "completed"
            before = published(client, "forge")
            build_package(PackageSpec("hw-new", "1.0"), upstream.root / "linux-64")
            build_channel(upstream.root, [])
            upstream.faults["/linux-64/repodata.json.zst"] = zst_fault
            if json_fault is not None:
                upstream.faults["/linux-64/repodata.json"] = json_fault

            run = run_mirror(client, "forge", mirror["id"])

            assert run["state"] == "failed"
            assert reason in run["error"], run["error"]
            assert published(client, "forge") == before
            assert "hw-new-1.0-0.conda" not in filenames(repodata(client, "forge", "linux-64"))


def test_redirects_outside_the_allowlist_are_not_followed(
    headwater: Headwater, token: str, upstream
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "forge")
        mirror = create_mirror(
            client, "forge", upstream.url, mirror_mode="active", filters={"subdirs": ["noarch"]}
        )
        # 127.0.0.2 is loopback too, but the allowlist names 127.0.0.1 only.
        elsewhere = upstream.url.replace("127.0.0.1", "127.0.0.2") + "noarch/hw-base-1.0-0.conda"
        upstream.faults["/noarch/hw-base-1.0-0.conda"] = Fault(redirect=elsewhere)
        run = run_mirror(client, "forge", mirror["id"])
        assert run["state"] == "failed"
        assert (
            "127.0.0.2" in run["error"] and "outside HEADWATER_UPSTREAM_ALLOWLIST" in run["error"]
        )


def test_a_zstd_bomb_is_refused(tmp_path: Path, upstream, monkeypatch: pytest.MonkeyPatch) -> None:
    import zstandard

    from headwater.upstreams import conda as conda_upstream
    from tests.conftest import make_settings
    from tests.support.server import run_headwater

    monkeypatch.setattr(conda_upstream, "MAX_REPODATA_BYTES", 1 << 20)
    bomb = zstandard.ZstdCompressor(level=19).compress(b" " * (8 << 20))  # 8 MiB from a few KiB
    upstream.faults["/noarch/repodata.json.zst"] = Fault(body=bomb)
    with (
        run_headwater(make_settings(tmp_path / "var")) as headwater,
        headwater.client(headwater.login()) as client,
    ):
        create_channel(client, "forge")
        mirror = create_mirror(client, "forge", upstream.url, filters={"subdirs": ["noarch"]})
        run = run_mirror(client, "forge", mirror["id"])
        assert run["state"] == "failed"
        assert "is larger than 1 MiB; refusing it" in run["error"]
