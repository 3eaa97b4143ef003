"""OSV advisories written by tests, and importing them the way an administrator would."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import httpx

CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
HIGH = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"  # 7.5
MEDIUM_V2 = "AV:N/AC:L/Au:N/C:P/I:N/A:N"  # 5.0, CVSS v2 only


def osv(
    advisory_id: str,
    package: str,
    *,
    fixed: str | None = None,
    introduced: str = "0",
    versions: tuple[str, ...] = (),
    aliases: tuple[str, ...] = (),
    vector: str | None = None,
    summary: str | None = None,
    withdrawn: str | None = None,
) -> dict[str, Any]:
    events: list[dict[str, str]] = [{"introduced": introduced}]
    if fixed:
        events.append({"fixed": fixed})
    document: dict[str, Any] = {
        "schema_version": "1.4.0",
        "id": advisory_id,
        "modified": "2024-01-01T00:00:00Z",
        "published": "2023-06-01T00:00:00Z",
        "aliases": list(aliases),
        "summary": summary or f"{package} is vulnerable",
        "details": f"A test advisory about {package}.",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": package},
                "ranges": [{"type": "ECOSYSTEM", "events": events}] if not versions else [],
                "versions": list(versions),
            }
        ],
        "references": [{"type": "WEB", "url": f"https://example.org/{advisory_id}"}],
    }
    if vector:
        kind = "CVSS_V3" if vector.startswith("CVSS:3") else "CVSS_V2"
        document["severity"] = [{"type": kind, "score": vector}]
    if withdrawn:
        document["withdrawn"] = withdrawn
    return document


def zip_of(documents: dict[str, Any]) -> bytes:
    """A zip of advisory files (name → parsed document, or bytes kept as they are)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, document in documents.items():
            content = document if isinstance(document, bytes) else json.dumps(document).encode()
            archive.writestr(name, content)
    return buffer.getvalue()


def zip_of_files(root: Path, paths: list[Path]) -> bytes:
    return zip_of({str(path.relative_to(root)): path.read_bytes() for path in paths})


def import_zip(client: httpx.Client, content: bytes) -> dict[str, Any]:
    response = client.post(
        "/api/cves/import", files={"file": ("advisories.zip", content, "application/zip")}
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]
