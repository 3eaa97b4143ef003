"""REST for the blob store as administrators see it: its usage per channel and mirror, and the
last garbage collection (a collection is queued as the `blob-collect` job: POST /api/jobs)."""

from __future__ import annotations

from fastapi import APIRouter

from headwater.api.deps import ResourcesDep
from headwater.api.json_body import StrictJsonRoute
from headwater.requires import Allowed, requires
from headwater.schemas.storage import StorageOut
from headwater.services.access.rules import Action

router = APIRouter(prefix="/api/storage", tags=["storage"], route_class=StrictJsonRoute)


@router.get("")
def show_storage(
    resources: ResourcesDep, allowed: Allowed = requires(Action.read_storage)
) -> StorageOut:
    """How many blobs the store holds and their bytes, what nothing references any more, and
    what each channel and mirror holds."""
    with resources.db.reading() as session:
        return StorageOut.read(session, resources.store.backend, resources.settings.gc_grace_hours)
