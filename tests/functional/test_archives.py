"""Uploads are read within limits: decompression bombs, members outside the archive, links out
of it and odd zip entries are refused with a 4xx, nothing is stored, the body of an upload is
read only after its caller is known, and a bomb costs the server little memory."""

from __future__ import annotations

import os
import socket
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings
from tests.support.archives import (
    Member,
    conda,
    index_json,
    tar_bz2,
    tar_bz2_bomb,
    wheel,
    wheel_bomb,
    with_zip_entry_patched,
)
from tests.support.flows import create_channel
from tests.support.server import (
    ADMIN,
    PASSWORD,
    Headwater,
    memory_kib,
    reset_peak_memory,
    run_headwater,
    serve_process,
)

INDEX = "info/index.json"


def upload(client: httpx.Client, channel: str, path: Path) -> httpx.Response:
    with path.open("rb") as stream:
        return client.post(f"/api/channels/{channel}/files", files={"file": (path.name, stream)})


def stored_files(headwater: Headwater) -> list[Path]:
    root = headwater.settings.resolved_blob_dir
    return sorted(p for p in root.rglob("*") if p.is_file() and ".staging" not in p.parts)


def refused_and_nothing_stored(
    headwater: Headwater, client: httpx.Client, path: Path, words: str, status: int = 422
) -> None:
    before = stored_files(headwater)
    response = upload(client, "up", path)
    assert response.status_code == status, (path.name, response.text)
    assert words in response.json()["detail"], (path.name, response.json())
    assert stored_files(headwater) == before
    assert client.get("/api/channels/up").json()["file_count"] == 0


@pytest.fixture
def client(headwater: Headwater, token: str) -> Iterator[httpx.Client]:
    with headwater.client(token) as client:
        create_channel(client, "up")
        yield client


def test_decompression_bombs_are_refused(
    headwater: Headwater, client: httpx.Client, tmp_path: Path
) -> None:
    # info/index.json itself expands to 1 GiB: refused by its header, before it is read.
    bomb = tar_bz2_bomb(tmp_path / "bomb-1.0-0.tar.bz2", INDEX)
    assert bomb.stat().st_size < 2048
    refused_and_nothing_stored(headwater, client, bomb, "info/index.json is larger than 16 MiB")
    # A member before it expands to 1 GiB: reading stops where the archive outgrows its limit.
    filler = tar_bz2_bomb(
        tmp_path / "filler-1.0-0.tar.bz2",
        "info/filler.bin",
        after=[Member(INDEX, index_json("filler"))],
    )
    refused_and_nothing_stored(headwater, client, filler, "expands past 256 MiB")
    # A wheel whose METADATA inflates to 1 GiB.
    refused_and_nothing_stored(
        headwater,
        client,
        wheel_bomb(tmp_path / "bomb-1.0-py3-none-any.whl"),
        "METADATA is larger than 16 MiB",
    )


@pytest.mark.parametrize(
    ("member", "words"),
    [
        (Member("../../evil.sh", b"#!/bin/sh\n"), "'../../evil.sh' lies outside the archive"),
        (Member("/etc/cron.d/evil", b"* * * * * root sh\n"), "lies outside the archive"),
        (Member("lib/libz.so", link="/etc/passwd"), "links to '/etc/passwd', outside the archive"),
        (Member("lib/up", link="../../../etc"), "outside the archive"),
        (Member("lib/hard", link="../x", kind=tarfile.LNKTYPE), "outside the archive"),
        (Member("dev/null", kind=tarfile.CHRTYPE, link=""), "is a device or a pipe"),
    ],
)
def test_members_outside_the_archive_are_refused(
    headwater: Headwater, client: httpx.Client, tmp_path: Path, member: Member, words: str
) -> None:
    members = [Member(INDEX, index_json("evil")), member, Member("lib/ok.txt", b"fine")]
    refused_and_nothing_stored(
        headwater, client, tar_bz2(tmp_path / "evil-1.0-0.tar.bz2", members), words
    )
    package = conda(tmp_path / "evil-1.0-0.conda", [Member(INDEX, index_json("evil"))], members[1:])
    refused_and_nothing_stored(headwater, client, package, words)


def test_relative_links_inside_the_archive_are_fine(
    headwater: Headwater, client: httpx.Client, tmp_path: Path
) -> None:
    members = [
        Member(INDEX, index_json("links")),
        Member("lib/libz.so.1.3", b"\x7fELF"),
        Member("lib/libz.so", link="libz.so.1.3"),
        Member("bin/tool", link="../lib/libz.so"),
    ]
    assert (
        upload(client, "up", tar_bz2(tmp_path / "links-1.0-0.tar.bz2", members)).status_code == 201
    )


def test_wheels_with_unsafe_or_unreadable_entries_are_refused(
    headwater: Headwater, client: httpx.Client, tmp_path: Path
) -> None:
    escaping = wheel(tmp_path / "esc-1.0-py3-none-any.whl", {"../../evil.pth": b"import os"})
    refused_and_nothing_stored(headwater, client, escaping, "lies outside the archive")
    absolute = wheel(tmp_path / "abs-1.0-py3-none-any.whl", {"/usr/lib/evil.py": b""})
    refused_and_nothing_stored(headwater, client, absolute, "lies outside the archive")
    method = with_zip_entry_patched(
        wheel(tmp_path / "meth-1.0-py3-none-any.whl"), "meth-1.0.dist-info/METADATA", method=99
    )
    refused_and_nothing_stored(headwater, client, method, "compression method 99")
    encrypted = with_zip_entry_patched(
        wheel(tmp_path / "enc-1.0-py3-none-any.whl"), "enc-1.0.dist-info/METADATA", flag_bits=1
    )
    refused_and_nothing_stored(headwater, client, encrypted, "is encrypted")


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"timestamp": "yesterday"}, "timestamp 'yesterday' is not a time"),
        ({"timestamp": 1e300}, "timestamp 1e+300 is out of range"),
        ({"build_number": "1"}, "build_number is not a whole number"),
        ({"build_number": 2**70}, "build_number"),
        ({"license": 5}, "license is not text"),
        ({"license": "MIT\x00"}, "license contains a control character"),
        ({"depends": "python"}, "depends is not a list of text"),
        ({"subdir": ["linux-64"]}, "subdir is not text"),
    ],
)
def test_index_json_of_the_wrong_type_or_size_is_refused(
    headwater: Headwater, client: httpx.Client, tmp_path: Path, fields: dict, words: str
) -> None:
    package = tar_bz2(tmp_path / "odd-1.0-0.tar.bz2", [Member(INDEX, index_json("odd", **fields))])
    refused_and_nothing_stored(headwater, client, package, words)


def test_a_duplicate_is_refused_before_its_archive_is_read(
    headwater: Headwater, client: httpx.Client, tmp_path: Path
) -> None:
    (tmp_path / "first").mkdir()
    first = wheel(tmp_path / "first" / "dup-1.0-py3-none-any.whl")
    assert upload(client, "up", first).status_code == 201
    again = tmp_path / "dup-1.0-py3-none-any.whl"
    again.write_bytes(b"not even a zip")
    response = upload(client, "up", again)
    assert response.status_code == 409, response.text
    assert "already in channel 'up'" in response.json()["detail"]
    package = tar_bz2(tmp_path / "same-1.0-0.tar.bz2", [Member(INDEX, index_json("same"))])
    assert upload(client, "up", package).status_code == 201
    assert upload(client, "up", package).status_code == 409


def test_an_upload_is_answered_before_its_body_is_read(
    headwater: Headwater, tmp_path: Path
) -> None:
    """Headers of a 64 MiB upload, then nothing: the server answers without waiting for it."""

    def answer(path: str, token: str | None) -> bytes:
        host, port = headwater.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            head = [
                f"POST {path} HTTP/1.1",
                f"Host: {host}",
                "Content-Type: multipart/form-data; boundary=x",
                f"Content-Length: {64 << 20}",
            ]
            if token:
                head.append(f"X-Auth: {token}")
            connection.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + b"--x\r\n")
            return connection.recv(65536)

    assert answer("/api/channels/up/files", None).startswith(b"HTTP/1.1 401")
    assert answer("/api/cves/import", None).startswith(b"HTTP/1.1 401")
    assert answer("/api/repo/up/", None).startswith(b"HTTP/1.1 401")
    headwater.add_user("bob", "bobs password")
    bob = headwater.login("bob", "bobs password")
    assert answer("/api/cves/import", bob).startswith(b"HTTP/1.1 403")


def test_bodies_past_the_upload_limit_are_refused_at_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var", max_upload_bytes=1 << 20)
    with run_headwater(settings) as headwater, headwater.client(headwater.login()) as client:
        create_channel(client, "up")
        big = tmp_path / "big-1.0-0.tar.bz2"
        big.write_bytes(os.urandom(2 << 20))
        response = upload(client, "up", big)
        assert response.status_code == 413, response.text
        assert response.json()["detail"] == (
            "the request body is larger than 1 MiB, the most this endpoint accepts"
        )


# --- memory ------------------------------------------------------------------------------------


def test_a_bomb_costs_the_server_little_memory(tmp_path: Path) -> None:
    with serve_process(tmp_path / "var", embedded_scheduler="false") as served:
        _upload_bombs(served.url, served.pid, tmp_path)


def _upload_bombs(url: str, pid: int, tmp_path: Path) -> None:
    bombs = [
        tar_bz2_bomb(tmp_path / "a-1.0-0.tar.bz2", INDEX),
        tar_bz2_bomb(
            tmp_path / "b-1.0-0.tar.bz2", "info/x", after=[Member(INDEX, index_json("b"))]
        ),
        wheel_bomb(tmp_path / "c-1.0-py3-none-any.whl"),
    ]
    with httpx.Client(base_url=url, timeout=120) as client:
        token = client.post("/api/auth/login", json={"username": ADMIN, "password": PASSWORD})
        client.headers["X-Auth"] = token.json()["token"]
        create_channel(client, "up")
        upload(
            client,
            "up",
            tar_bz2(tmp_path / "warm-1.0-0.tar.bz2", [Member(INDEX, index_json("warm"))]),
        )
        idle = memory_kib(pid)["VmRSS"]
        reset_peak_memory(pid)
        for bomb in bombs:
            assert upload(client, "up", bomb).status_code == 422
        peak = memory_kib(pid)["VmHWM"]
    assert peak - idle < 100 * 1024, f"peak {peak} kB, idle {idle} kB"
