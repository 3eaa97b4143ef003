"""Which upstream delivered which blob, and whether a mirrored file may use bytes in the store.

The blob store keeps one copy of each content, whoever brought it. Knowing a file's sha256 and
size is not knowing its bytes, so a mirror may use a stored blob for a file only once the
mirror's own upstream (its source_root) has delivered the same bytes, checked against the
digest its index gave; until then the bytes are fetched from that upstream, like any file the
store lacks. An upload delivers its own bytes. docs/architecture.md, "Blobs", has the rule.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from headwater.db import Database, insert_or_ignore, utcnow
from headwater.models import BlobSource
from headwater.services import blobs
from headwater.services.blobs import Stored
from headwater.upstreams.http import shown_url

_BATCH = 900  # digests per query, under SQLite's bound-parameter limit
Delivery = tuple[str, str, int]  # (sha256, upstream, size)


def upstream_key(upstream: str) -> str:
    return hashlib.sha256(upstream.encode()).hexdigest()


def is_proven(session: Session, sha256: str, upstream: str) -> bool:
    return session.get(BlobSource, (sha256, upstream_key(upstream))) is not None


def delivered_by_some_upstream(session: Session, sha256: str) -> bool:
    """Whether any upstream delivered the bytes: what a file whose mirror was deleted may be
    served by (its own upstream is no longer known; bytes no upstream delivered, an upload's,
    are never served on a digest alone)."""
    found = session.scalar(select(BlobSource.sha256).where(BlobSource.sha256 == sha256).limit(1))
    return found is not None


def proven(session: Session, upstream: str, digests: Iterable[str]) -> set[str]:
    """Those of `digests` whose bytes `upstream` has delivered before."""
    key = upstream_key(upstream)
    wanted = sorted(set(digests))
    found: set[str] = set()
    for start in range(0, len(wanted), _BATCH):
        found.update(
            session.scalars(
                select(BlobSource.sha256).where(
                    BlobSource.upstream_sha256 == key,
                    BlobSource.sha256.in_(wanted[start : start + _BATCH]),
                )
            )
        )
    return found


def record(session: Session, deliveries: Iterable[Delivery]) -> None:
    """Remember that each upstream delivered the bytes with its sha256 (known ones are kept),
    and that the store holds them (services/blobs)."""
    now = utcnow()
    delivered = list(dict.fromkeys(deliveries))
    blobs.record(session, [Stored.content(sha256, size) for sha256, _, size in delivered])
    rows = [
        {
            "sha256": sha256,
            "upstream_sha256": upstream_key(upstream),
            "upstream": shown_url(upstream),  # the key holds it whole; no password is kept
            "delivered_at": now,
        }
        for sha256, upstream, _ in delivered
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
