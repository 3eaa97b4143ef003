"""A PyPI file as Headwater keeps it: what the upstream page and the core metadata say."""

from __future__ import annotations

import msgspec


class PythonRecord(msgspec.Struct, frozen=True):
    """One wheel or sdist of one project, judged by filters and stored as a file row."""

    filename: str
    project: str  # PEP 503 normalized
    version: str
    kind: str  # wheel or sdist
    platforms: frozenset[str]
    sha256: str
    size: int | None
    url: str  # where upstream serves it
    timestamp: int | None  # upload time, ms
    requires_python: str | None = None
    yanked: str | None = None  # None: not yanked
    core_metadata: str | None = None  # sha256 of the upstream's .metadata file, "" if no hash
    metadata_known: bool = False  # whether the license fields below were read
    license: str | None = None
    license_expression: str | None = None
    classifiers: tuple[str, ...] = ()
    # PEP 508 requirements from the core metadata; `dependencies_known` says they were read
    # (rows stored before they were kept decode with the defaults: unknown).
    requires_dist: tuple[str, ...] = ()
    dependencies_known: bool = False

    @property
    def name(self) -> str:
        return self.project


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(PythonRecord)


def encode_record(record: PythonRecord) -> bytes:
    return _encoder.encode(record)


def decode_record(content: bytes) -> PythonRecord:
    return _decoder.decode(content)
