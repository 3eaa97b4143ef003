"""The exception family: every error a user can be told about, with the HTTP status it maps to."""

from __future__ import annotations


class HeadwaterError(Exception):
    """Base of every error Headwater raises on purpose; the message is meant for the user."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- input the user sent ---------------------------------------------------------------------


class InvalidInputError(HeadwaterError):
    status_code = 422


class InvalidCronError(InvalidInputError):
    pass


class InvalidFilterError(InvalidInputError):
    pass


class InvalidChannelNameError(InvalidInputError):
    pass


class UpstreamNotAllowedError(InvalidInputError):
    pass


class PackageArchiveError(InvalidInputError):
    """An uploaded file is not a readable package archive."""


class PreviewFailedError(InvalidInputError):
    """A preview could not read the upstream it was given: the mirror as drafted cannot be
    previewed (a 4xx: the answer is about the request's upstream, not about Headwater)."""


# --- things that do not exist ----------------------------------------------------------------


class NotFoundError(HeadwaterError):
    status_code = 404


class ChannelNotFoundError(NotFoundError):
    pass


class MirrorNotFoundError(NotFoundError):
    pass


class RunNotFoundError(NotFoundError):
    pass


class PackageFileNotFoundError(NotFoundError):
    pass


class IndexNotFoundError(NotFoundError):
    pass


class CveMatchNotFoundError(NotFoundError):
    pass


# --- state that forbids the request ----------------------------------------------------------


class ConflictError(HeadwaterError):
    status_code = 409


class ChannelExistsError(ConflictError):
    pass


class MirrorExistsError(ConflictError):
    pass


class MirrorBusyError(ConflictError):
    """The mirror already has a pending or running run."""


class RunNotActiveError(ConflictError):
    pass


class ChannelBusyError(ConflictError):
    """Other changes kept landing on the channel while this one was built."""


class RevisionNotFoundError(NotFoundError):
    pass


class PackageFileExistsError(ConflictError):
    pass


# --- who is asking ---------------------------------------------------------------------------


class NotAuthenticatedError(HeadwaterError):
    status_code = 401


class PermissionDeniedError(HeadwaterError):
    status_code = 403


class TooManyRequestsError(HeadwaterError):
    """A limit on how often something may be tried was reached; `retry_after` seconds."""

    status_code = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# --- failures while talking to an upstream or storing bytes ------------------------------------


class UpstreamError(HeadwaterError):
    """An upstream could not be read; the run that met it fails with this message."""

    status_code = 502


class UpstreamFormatError(UpstreamError):
    """An upstream answered, but with an index Headwater cannot read."""


class UpstreamFileMissingError(UpstreamError):
    """An upstream's index lists a file the upstream answers 404 or 410 for."""

    def __init__(self, message: str, url: str, upstream_status: int) -> None:
        super().__init__(message)
        self.url = url
        self.upstream_status = upstream_status


class ChecksumMismatchError(UpstreamError):
    """Downloaded bytes do not match the digest or size the index promised."""


class UnavailableError(HeadwaterError):
    """Something Headwater depends on (the blob store, the database) cannot be reached now:
    try again shortly."""

    status_code = 503
    retry_after = 5


class BlobStoreUnavailableError(UnavailableError):
    pass


class RunStoppedError(HeadwaterError):
    """A run was asked to stop, or lost its claim; nothing it did is published."""

    status_code = 409


class UnsolvableError(HeadwaterError):
    """A run's revision cannot install the channel's must_install specs, and the channel says
    fail: nothing is published (services/solvability.py)."""

    status_code = 409
