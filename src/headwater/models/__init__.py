"""SQLAlchemy models, one module per noun. Importing this package registers every table."""

from headwater.models.blob import BlobSource
from headwater.models.channel import Channel, ChannelIndex, Privacy
from headwater.models.cve import Advisory, Cve, CveMatch
from headwater.models.file import PackageFile, PackageType
from headwater.models.mirror import Mirror, MirrorMode, MirrorSubdirState, MirrorType
from headwater.models.run import Run, RunLogLine, RunState, RunTrigger
from headwater.models.user import ApiToken, User

__all__ = [
    "Advisory",
    "ApiToken",
    "BlobSource",
    "Channel",
    "ChannelIndex",
    "Cve",
    "CveMatch",
    "Mirror",
    "MirrorMode",
    "MirrorSubdirState",
    "MirrorType",
    "PackageFile",
    "PackageType",
    "Privacy",
    "Run",
    "RunLogLine",
    "RunState",
    "RunTrigger",
    "User",
]
