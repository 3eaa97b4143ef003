"""SQLAlchemy models, one module per noun. Importing this package registers every table."""

from headwater.models.audit import AuditEvent
from headwater.models.blob import Blob, BlobSource
from headwater.models.channel import (
    Channel,
    ChannelRevision,
    ChannelRole,
    ChannelRoleName,
    OnUnsolvable,
    PendingRemoval,
    Privacy,
    RevisionCause,
    RevisionIndex,
)
from headwater.models.cve import Advisory, Cve, CveMatch
from headwater.models.file import PackageFile, PackageType
from headwater.models.mirror import (
    Mirror,
    MirrorMode,
    MirrorSubdirState,
    MirrorType,
    OnMissingFile,
)
from headwater.models.organization import (
    Group,
    GroupMember,
    Membership,
    Organization,
    OrganizationRole,
)
from headwater.models.run import (
    JobKind,
    JobSchedule,
    Run,
    RunLogLine,
    RunState,
    RunTrigger,
    mirror_key,
)
from headwater.models.user import ApiToken, ApiTokenChannel, TokenKind, User, UserSource

__all__ = [
    "Advisory",
    "ApiToken",
    "ApiTokenChannel",
    "AuditEvent",
    "Blob",
    "BlobSource",
    "Channel",
    "ChannelRevision",
    "ChannelRole",
    "ChannelRoleName",
    "Cve",
    "CveMatch",
    "Group",
    "GroupMember",
    "JobKind",
    "JobSchedule",
    "Membership",
    "Mirror",
    "MirrorMode",
    "MirrorSubdirState",
    "MirrorType",
    "OnMissingFile",
    "OnUnsolvable",
    "Organization",
    "OrganizationRole",
    "PackageFile",
    "PackageType",
    "PendingRemoval",
    "Privacy",
    "RevisionCause",
    "RevisionIndex",
    "Run",
    "RunLogLine",
    "RunState",
    "RunTrigger",
    "TokenKind",
    "User",
    "UserSource",
    "mirror_key",
]
