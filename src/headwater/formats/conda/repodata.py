"""Reading upstream repodata.json into records, and rendering a channel's repodata.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from sys import intern
from typing import Any

import msgspec
import orjson

from headwater.errors import UpstreamFormatError
from headwater.formats.conda import (
    conda_version,
    is_package_filename,
    record_problem,
    timestamp_ms,
)
from headwater.inputs import SHA256

# Keys that conda adds when it re-serialises repodata, pointing back to where it came from.
# Published records must not carry them: clients would follow them to the upstream.
_ORIGIN_KEYS = ("url", "channel")
_DROPPED_KEYS = (*_ORIGIN_KEYS, "depends", "constrains")  # those, and the null ones


class _RecordFields(msgspec.Struct):
    """The fields of a repodata record Headwater reads; every other field passes through."""

    name: str
    version: str
    build: str = ""
    build_number: int = 0
    subdir: str | None = None
    sha256: str | None = None
    size: int | None = None
    timestamp: int | float | None = None
    license: str | None = None
    license_family: str | None = None
    # Looked at only for what clients cannot read: anything but a list (or null, which mamba
    # writes and rattler refuses a whole subdir over: the key is dropped) makes the record
    # unusable. Kept raw: decoding 1.2 million strings would double the cost of parsing.
    depends: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    constrains: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    url: Any = None
    channel: Any = None


class _Repodata(msgspec.Struct):
    info: dict[str, Any] | None = None
    packages: dict[str, msgspec.Raw] | None = None
    packages_conda: dict[str, msgspec.Raw] | None = msgspec.field(
        default=None, name="packages.conda"
    )
    repodata_version: int | None = None


class _RepodataFields(msgspec.Struct):
    """The same document decoded into fields in one pass: three times faster than record by
    record, which matters at half a million records."""

    packages: dict[str, _RecordFields] | None = None
    packages_conda: dict[str, _RecordFields] | None = msgspec.field(
        default=None, name="packages.conda"
    )


class CondaRecord(msgspec.Struct, frozen=True, gc=False):
    """One package file as an index lists it; `raw` is the record JSON to publish.

    Hundreds of thousands of these are alive during a conda-forge-sized run, so they keep only
    what filtering and storing need, repeated strings are interned, and (holding no references
    to containers) they stay out of the garbage collector's way.
    """

    filename: str
    name: str
    version: str
    build: str
    build_number: int
    sha256: str
    size: int
    timestamp: int | None  # milliseconds since the epoch
    license: str | None
    license_family: str | None
    raw: bytes


@dataclass
class ParsedRepodata:
    subdir: str
    records: list[CondaRecord] = field(default_factory=list)
    base_url: str | None = None
    skipped: list[str] = field(default_factory=list)  # one sentence per unusable record


_record_decoder = msgspec.json.Decoder(_RecordFields)
_repodata_decoder = msgspec.json.Decoder(_Repodata)
_fields_decoder = msgspec.json.Decoder(_RepodataFields)


def parse_repodata(
    body: bytes | bytearray, subdir: str, *, keep_raw: bool = True
) -> ParsedRepodata:
    """Parse an upstream subdir's repodata.json; records without sha256 and size are skipped.

    `keep_raw=False` leaves each record's JSON out (`raw` is empty), for readers that only
    judge records, such as a preview.
    """
    try:
        document = _repodata_decoder.decode(body)
    except msgspec.DecodeError as error:
        raise UpstreamFormatError(f"repodata.json for {subdir} is not valid: {error}") from None
    info = document.info or {}
    base_url = info.get("base_url") if document.repodata_version == 2 else None
    parsed = ParsedRepodata(subdir=subdir, base_url=base_url or None)
    try:
        fields = _fields_decoder.decode(body)
    except msgspec.DecodeError:
        fields = None  # some record is malformed: go record by record, skipping the bad ones
    for raws, decoded in (
        (document.packages, fields.packages if fields else None),
        (document.packages_conda, fields.packages_conda if fields else None),
    ):
        if not raws:
            continue
        for filename, raw in raws.items():
            record = _make_record(
                filename, raw, decoded[filename] if decoded else None, parsed.skipped, keep_raw
            )
            if record is not None:
                parsed.records.append(record)
    return parsed


def _make_record(
    filename: str,
    raw: msgspec.Raw,
    fields: _RecordFields | None,
    skipped: list[str],
    keep_raw: bool = True,
) -> CondaRecord | None:
    if not is_package_filename(filename):
        skipped.append(f"{filename!r} is not a conda package filename")
        return None
    if fields is None:
        try:
            fields = _record_decoder.decode(raw)
        except msgspec.DecodeError as error:
            skipped.append(f"{filename}: unreadable record ({error})")
            return None
    if fields.sha256 is None or not SHA256.fullmatch(fields.sha256) or fields.size is None:
        skipped.append(f"{filename}: record has no sha256 or size to verify the file against")
        return None
    problem = _record_problem(fields)
    if problem is not None:
        skipped.append(f"{filename}: {problem}")
        return None
    nulls = _relation_problem(fields)
    if isinstance(nulls, str):
        skipped.append(f"{filename}: {nulls}")
        return None
    body = bytes(raw) if keep_raw else b""
    if keep_raw and (fields.url is not None or fields.channel is not None or nulls):
        record = orjson.loads(body)
        for key in _DROPPED_KEYS:
            if key in _ORIGIN_KEYS or record.get(key, []) is None:
                record.pop(key, None)
        body = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    return CondaRecord(
        filename=filename,
        name=intern(fields.name),
        version=intern(fields.version),
        build=fields.build,
        build_number=fields.build_number,
        sha256=fields.sha256,
        size=fields.size,
        timestamp=timestamp_ms(fields.timestamp),
        license=intern(fields.license) if fields.license else None,
        license_family=intern(fields.license_family) if fields.license_family else None,
        raw=body,
    )


def _relation_problem(fields: _RecordFields) -> str | bool:
    """Whether `depends` or `constrains` is null (True: drop it), or what makes it unusable."""
    nulls = False
    for key in ("depends", "constrains"):
        value = getattr(fields, key)
        if value is msgspec.UNSET:
            continue
        first = memoryview(value)[:1].tobytes()
        if first == b"n":
            nulls = True
        elif first != b"[":
            return f"unreadable record ({key} is not a list)"
    return nulls


def _record_problem(fields: _RecordFields) -> str | None:
    """Why an upstream record cannot be kept, although it parsed: a value no column can hold,
    or a version conda clients cannot read (one such record makes them refuse the subdir)."""
    assert fields.size is not None
    problem = record_problem(
        fields.name,
        fields.version,
        fields.build,
        fields.build_number,
        fields.size,
        fields.timestamp,
    )
    if problem is None and conda_version(fields.version) is None:
        return f"version {fields.version[:60]!r} is not a conda version"
    return problem


def record_from_index_json(index: dict[str, Any], *, sha256: str, md5: str, size: int) -> bytes:
    """The repodata record of a package file, from its info/index.json and its digests."""
    record = dict(index)
    record.update(sha256=sha256, md5=md5, size=size)
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
