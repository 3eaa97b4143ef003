"""Which upstream source delivered which blob, and whether a mirrored file may use stored bytes.

The blob store keeps one copy of each content, whoever brought it. Knowing a file's sha256 and
size is not knowing its bytes, so a mirror may use a stored blob for a file only once that
file's own source URL has delivered the same bytes (checked against the index's digest); until
then the bytes are fetched from that URL, like any file the store lacks. An upload delivers its
own bytes. docs/architecture.md, "Blobs", has the rule and why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from headwater.db import Database, insert_or_ignore, utcnow
from headwater.models import BlobSource

_BATCH = 900  # digests per query, under SQLite's bound-parameter limit
Delivery = tuple[str, str]  # (sha256, source URL)


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def is_proven(session: Session, sha256: str, url: str) -> bool:
    return session.get(BlobSource, (sha256, url_key(url))) is not None


def proven(session: Session, deliveries: Iterable[Delivery]) -> set[Delivery]:
    """Those of `deliveries` whose URL has delivered those bytes before."""
    wanted = {(sha256, url_key(url)): (sha256, url) for sha256, url in deliveries}
    digests = sorted({sha256 for sha256, _ in wanted})
    found: set[Delivery] = set()
    for start in range(0, len(digests), _BATCH):
        rows = session.execute(
            select(BlobSource.sha256, BlobSource.url_sha256).where(
                BlobSource.sha256.in_(digests[start : start + _BATCH])
            )
        )
        found.update(wanted[key] for key in map(tuple, rows) if key in wanted)
    return found


def record(session: Session, deliveries: Iterable[Delivery]) -> None:
    """Remember that each URL delivered the bytes with its sha256 (already recorded: kept)."""
    now = utcnow()
    rows = [
        {"sha256": sha256, "url_sha256": url_key(url), "url": url, "delivered_at": now}
        for sha256, url in dict.fromkeys(deliveries)
    ]
    for start in range(0, len(rows), _BATCH):
        session.execute(
            insert_or_ignore(session, BlobSource.__table__),  # type: ignore[arg-type]
            rows[start : start + _BATCH],
        )


def record_now(db: Database, deliveries: list[Delivery]) -> None:
    if deliveries:
        with db.writing() as session:
            record(session, deliveries)
