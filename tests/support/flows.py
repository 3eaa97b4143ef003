"""Steps many functional tests share: make a channel and a mirror, run it, wait for the end."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx


def create_channel(client: httpx.Client, name: str, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/channels", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def create_mirror(
    client: httpx.Client, channel: str, source_root: str, **fields: Any
) -> dict[str, Any]:
    body = {
        "mirror_name": fields.pop("mirror_name", "upstream"),
        "source_root": source_root,
        **fields,
    }
    response = client.post(f"/api/channels/{channel}/mirrors", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def wait_for_run(client: httpx.Client, run_id: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = client.get(f"/api/runs/{run_id}").json()
        if run["state"] in ("completed", "failed"):
            return run  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {run['state']} after {timeout}s: {run}")
        time.sleep(0.05)


def run_mirror(client: httpx.Client, channel: str, mirror_id: int) -> dict[str, Any]:
    """Run now, and wait for the run to end."""
    response = client.post(f"/api/channels/{channel}/mirrors/{mirror_id}/run")
    assert response.status_code == 202, response.text
    return wait_for_run(client, response.json()["id"])


def repodata(client: httpx.Client, channel: str, subdir: str) -> dict[str, Any]:
    response = client.get(f"/api/repo/{channel}/{subdir}/repodata.json")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def filenames(document: dict[str, Any]) -> set[str]:
    return set(document.get("packages", {})) | set(document.get("packages.conda", {}))


def form_proof(client: httpx.Client, page: str = "/login") -> str:
    """The CSRF value a page's forms carry, as a browser would find it in the page."""
    found = re.search(r'name="csrf" value="([^"]*)"', client.get(page).text)
    assert found, f"{page} has no form proof"
    return found.group(1)


def sign_in_page(client: httpx.Client, username: str, password: str) -> httpx.Response:
    """Sign in through the UI's form, as a browser does (the page first, for its form proof)."""
    data = {"username": username, "password": password, "csrf": form_proof(client)}
    return client.post("/login", data=data)
