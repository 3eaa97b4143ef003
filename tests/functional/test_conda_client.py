"""A real conda client (py-rattler) solves and installs from Headwater's mirrored channels."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
import rattler

from tests.support.conda_packages import CHAIN, build_channel
from tests.support.flows import create_channel, create_mirror, run_mirror
from tests.support.server import Headwater
from tests.support.upstream import serve_directory


def solve_and_install(
    channel_url: str, spec: str, prefix: Path, cache: Path, *, sharded: bool = True
) -> list[str]:
    gateway = rattler.Gateway(
        cache_dir=cache / "repodata",
        default_config=rattler.SourceConfig(sharded_enabled=sharded),
    )

    async def go() -> list[str]:
        records = await rattler.solve(
            sources=[channel_url],
            specs=[spec],
            gateway=gateway,
            platforms=["linux-64", "noarch"],
            virtual_packages=[],
        )
        await rattler.install(
            records, target_prefix=prefix, cache_dir=cache / "pkgs", show_progress=False
        )
        return sorted(f"{record.name.normalized}-{record.version}" for record in records)

    return asyncio.run(go())


@pytest.fixture
def upstream(tmp_path: Path):
    build_channel(tmp_path / "upstream", CHAIN)
    with serve_directory(tmp_path / "upstream") as server:
        yield server


@pytest.mark.parametrize("mode", ["active", "passive"])
def test_rattler_installs_a_dependency_chain(
    headwater: Headwater, token: str, upstream, tmp_path: Path, mode: str
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "forge")
        mirror = create_mirror(client, "forge", upstream.url, mirror_mode=mode)
        run = run_mirror(client, "forge", mirror["id"])
    assert run["state"] == "completed", run["error"]
    assert run["counters"]["added"] == len(CHAIN)
    if mode == "passive":
        assert upstream.file_requests() == 0, "a passive run must not fetch package files"
    else:
        assert run["counters"]["downloaded"] == len(CHAIN)

    installed = solve_and_install(
        f"{headwater.url}/api/repo/forge", "hw-app", tmp_path / "env", tmp_path / "cache"
    )

    assert installed == ["hw-app-1.0", "hw-base-1.0", "hw-lib-2.0"]
    assert any((tmp_path / "cache" / "repodata").glob("*.shards-cache-v1")), (
        "rattler used CEP-16 shards"
    )
    assert (tmp_path / "env" / "share" / "hw-app" / "1.0.txt").read_text() == "hw-app 1.0 0\n"
    assert (tmp_path / "env" / "share" / "hw-base" / "1.0.txt").exists()


def test_passive_file_is_fetched_once_for_concurrent_clients(
    headwater: Headwater, token: str, upstream, tmp_path: Path
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "lazy")
        mirror = create_mirror(client, "lazy", upstream.url, mirror_mode="passive")
        assert run_mirror(client, "lazy", mirror["id"])["state"] == "completed"
    assert upstream.file_requests() == 0

    results: dict[int, list[str]] = {}

    def install(slot: int) -> None:
        results[slot] = solve_and_install(
            f"{headwater.url}/api/repo/lazy",
            "hw-app",
            tmp_path / f"env{slot}",
            tmp_path / f"cache{slot}",
        )

    threads = [threading.Thread(target=install, args=(slot,)) for slot in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results[0] == results[1] == ["hw-app-1.0", "hw-base-1.0", "hw-lib-2.0"]
    for filename in ("hw-app-1.0-0.tar.bz2", "hw-lib-2.0-0.conda"):
        assert upstream.count(f"/linux-64/{filename}") == 1, upstream.requests
    assert upstream.count("/noarch/hw-base-1.0-0.conda") == 1


def test_rattler_reads_plain_repodata_too(
    headwater: Headwater, token: str, upstream, tmp_path: Path
) -> None:
    with headwater.client(token) as client:
        create_channel(client, "plain")
        mirror = create_mirror(client, "plain", upstream.url, mirror_mode="active")
        assert run_mirror(client, "plain", mirror["id"])["state"] == "completed"
    installed = solve_and_install(
        f"{headwater.url}/api/repo/plain",
        "hw-lib 1.*",
        tmp_path / "env",
        tmp_path / "cache",
        sharded=False,
    )
    assert installed == ["hw-base-1.0", "hw-lib-1.0"]
    assert not any((tmp_path / "cache" / "repodata").glob("*.shards-cache-v1"))
