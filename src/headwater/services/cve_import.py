"""Importing advisories from files, uploads and feeds, then matching files against them."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from headwater.cves.names import CondaNames
from headwater.cves.sources import Reading, read_path
from headwater.db import Database
from headwater.errors import InvalidInputError, UpstreamError
from headwater.services.access.audit import Actor, record
from headwater.services.cve_matching import MatchReport, load_matcher, rematch
from headwater.services.cves import ImportReport, import_advisories
from headwater.upstreams.bodies import raw_chunks, too_large
from headwater.upstreams.http import (
    HttpPolicy,
    describe_transport_error,
    shown_url,
    status_error,
    upstream_client,
)


@dataclass(frozen=True)
class ImportOutcome:
    files: int
    imported: ImportReport
    matched: MatchReport | None  # None when no CVE changed


def import_reading(
    db: Database,
    names: CondaNames,
    reading: Reading,
    *,
    actor: Actor | None = None,
    source: str = "",
) -> ImportOutcome:
    """Store what a reading found; when any CVE changed, match every file again. An import an
    administrator made (`actor`) is written to the audit log; the feeds' refreshes are not."""
    if not reading.advisories and reading.problems:
        raise InvalidInputError(
            f"no advisory could be read: {'; '.join(reading.problems[:5])}"
            + (f" (and {len(reading.problems) - 5} more)" if len(reading.problems) > 5 else "")
        )
    # One transaction: if matching fails, the import is undone too, and the next import finds
    # the same changes and matches again, rather than leaving matches stale.
    with db.writing() as session:
        imported = import_advisories(session, reading.advisories)
        matched = None
        if imported.changed_cves:
            matched = rematch(session, load_matcher(session, names))
        if actor is not None:
            record(
                session,
                actor,
                "cve.import",
                source,
                read=imported.read,
                added=imported.added,
                updated=imported.updated,
            )
    imported.problems.extend(reading.problems)
    return ImportOutcome(reading.files, imported, matched)


def read_source(source: str, policy: HttpPolicy, *, limit: int) -> Reading:
    """A feed or a CLI argument: an http(s) URL to a file or zip, or a local path. A URL is
    fetched through the upstream policy (with the URL itself allowed, as the operator named
    it), and refused past `limit` bytes."""
    if not source.startswith(("http://", "https://")):
        return read_path(Path(source))
    suffix = ".zip" if source.split("?")[0].endswith(".zip") else Path(source).suffix or ".json"
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / f"feed{suffix}"
        asyncio.run(_fetch(source, policy.naming(source), target, limit))
        return read_path(target)


async def _fetch(source: str, policy: HttpPolicy, target: Path, limit: int) -> None:
    shown = shown_url(source)  # a feed's password is for fetching it, not for messages
    async with upstream_client(policy) as client:
        try:
            async with client.stream("GET", source) as response:
                if response.status_code != 200:
                    raise status_error(response)
                if response.headers.get("content-encoding", "identity") != "identity":
                    raise UpstreamError(f"{shown} came compressed, which was not asked for")
                written = 0
                with target.open("wb") as out:
                    async for chunk in raw_chunks(response, policy.timeout):
                        written += len(chunk)
                        if written > limit:
                            raise too_large(str(shown), limit)
                        out.write(chunk)
        except httpx.HTTPError as error:
            raise UpstreamError(
                f"could not fetch {shown}: {describe_transport_error(error)}"
            ) from None
