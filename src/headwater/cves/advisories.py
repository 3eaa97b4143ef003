"""Advisories as Headwater reads them: OSV (JSON or YAML) and NVD CVE JSON 2.0 records.

An advisory is one document from one source. Several can speak of one CVE (PYSEC-2018-28 and
GHSA-x84v-xcm2-53pg are both CVE-2018-18074, and NVD has its own record); they are stored each
as it came and merged into the CVE when read (services/cves.py). A CVE is keyed by its CVE id;
an advisory with no CVE alias keeps its own id as the key.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from packaging.utils import canonicalize_name

from headwater.cves.scoring import vector_score
from headwater.errors import InvalidInputError
from headwater.inputs import has_control_characters

# OSV range types that compare package versions; GIT ranges name commits and are ignored.
VERSION_RANGES = ("ECOSYSTEM", "SEMVER")


@dataclass(frozen=True)
class AffectedPackage:
    """The versions of one package an advisory names: ranges of OSV events, and versions."""

    ecosystem: str
    name: str  # PEP 503 normalized for PyPI
    ranges: tuple[tuple[tuple[str, str], ...], ...]  # each: ((event, version), ...) in order
    versions: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "ecosystem": self.ecosystem,
            "name": self.name,
            "ranges": [[list(event) for event in events] for events in self.ranges],
            "versions": list(self.versions),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AffectedPackage:
        return cls(
            data["ecosystem"],
            data["name"],
            tuple(tuple((kind, version) for kind, version in events) for events in data["ranges"]),
            tuple(data["versions"]),
        )


@dataclass(frozen=True)
class Score:
    version: str  # "3.1", "3.0", "2.0", "4.0"
    vector: str | None
    score: float | None


@dataclass(frozen=True)
class Advisory:
    id: str  # the document's own id
    source: str  # "osv" or "nvd"
    cve_id: str  # the key of the CVE it speaks of
    aliases: tuple[str, ...]
    summary: str | None
    description: str | None
    published: dt.datetime | None
    modified: dt.datetime | None
    withdrawn: bool
    cvss3: Score | None
    cvss2: Score | None
    references: tuple[str, ...]
    affected: tuple[AffectedPackage, ...] = field(default=())


MAX_ID_LENGTH = 100  # of an advisory's and a CVE's id, as the database keeps them
MAX_VECTOR_LENGTH = 200


def _identifier(value: Any) -> str | None:
    """An id as the database can key it: text of at most MAX_ID_LENGTH, no control character."""
    if isinstance(value, str) and value and len(value) <= MAX_ID_LENGTH:
        return None if has_control_characters(value) else value
    return None


def _prose(value: Any) -> str | None:
    """A summary or a description: text, without the NUL characters no database keeps."""
    return value.replace("\x00", "") if isinstance(value, str) else None


SUMMARY_LENGTH = 200  # of a summary taken from an advisory's details
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_MARKUP = re.compile(r"[*_`]+")


def summary_from_details(details: str | None) -> str | None:
    """A summary for an advisory that has none (PYSEC's rarely do): the first sentence of its
    first paragraph that is not a Markdown heading, on one line, at most SUMMARY_LENGTH
    characters (cut at a word, with an ellipsis)."""
    if not details:
        return None
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", details)]
    prose = [p for p in paragraphs if p and not p.startswith("#")]
    if not prose:
        return None
    text = " ".join(_MARKUP.sub("", prose[0]).split())
    text = _SENTENCE_END.split(text, maxsplit=1)[0]
    if len(text) <= SUMMARY_LENGTH:
        return text or None
    cut = text[: SUMMARY_LENGTH - 1].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


def _moment(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        moment = value
    else:
        text = str(value).strip().replace("Z", "+00:00")
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _cve_key(own_id: str, aliases: list[str]) -> str:
    """The advisory's own id if it is a CVE id, else its earliest CVE alias, else its own id."""
    if own_id.startswith("CVE-"):
        return own_id
    cves = sorted((alias for alias in aliases if alias.startswith("CVE-")), key=_cve_order)
    return cves[0] if cves else own_id


def _cve_order(cve_id: str) -> tuple[int, int, str]:
    """CVE-2019-9999 before CVE-2019-10000."""
    parts = cve_id.split("-")
    try:
        return int(parts[1]), int(parts[2]), cve_id
    except (IndexError, ValueError):
        return 0, 0, cve_id


def _osv_scores(document: dict[str, Any]) -> tuple[Score | None, Score | None]:
    cvss3 = cvss2 = None
    for entry in document.get("severity") or []:
        kind, vector = entry.get("type"), entry.get("score")
        if not isinstance(vector, str) or len(vector) > MAX_VECTOR_LENGTH:
            continue
        if kind == "CVSS_V3" and cvss3 is None:
            version = "3.0" if vector.startswith("CVSS:3.0") else "3.1"
            cvss3 = Score(version, vector, vector_score(vector))
        elif kind == "CVSS_V2" and cvss2 is None:
            cvss2 = Score("2.0", vector, vector_score(vector))
    return cvss3, cvss2


def _links(references: Any) -> tuple[str, ...]:
    """The references' URLs, http(s) only: they become links in the UI."""
    urls = []
    for reference in references or []:
        url = reference.get("url") if isinstance(reference, dict) else None
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            urls.append(url)
    return tuple(urls)


def _affected(entry: dict[str, Any]) -> AffectedPackage | None:
    package = entry.get("package") or {}
    ecosystem, name = package.get("ecosystem"), package.get("name")
    if not ecosystem or not name:
        return None
    ranges = []
    for found in entry.get("ranges") or []:
        if found.get("type") not in VERSION_RANGES:
            continue
        events = []
        for event in found.get("events") or []:
            for kind in ("introduced", "fixed", "last_affected", "limit"):
                if kind in event:
                    events.append((kind, str(event[kind])))
        if events:
            ranges.append(tuple(events))
    versions = tuple(str(v) for v in entry.get("versions") or [])
    if not ranges and not versions:
        return None
    normalized = canonicalize_name(name) if ecosystem == "PyPI" else name
    return AffectedPackage(ecosystem, normalized, tuple(ranges), versions)


def parse_osv(document: dict[str, Any]) -> Advisory:
    own_id = _identifier(document.get("id"))
    if own_id is None:
        raise InvalidInputError(
            f"an OSV advisory needs an 'id' of at most {MAX_ID_LENGTH} characters"
        )
    aliases = [alias for a in document.get("aliases") or [] if (alias := _identifier(a))]
    cvss3, cvss2 = _osv_scores(document)
    affected = tuple(a for e in document.get("affected") or [] if (a := _affected(e)) is not None)
    references = _links(document.get("references"))
    return Advisory(
        id=own_id,
        source="osv",
        cve_id=_cve_key(own_id, aliases),
        aliases=tuple(aliases),
        summary=_prose(document.get("summary")),
        description=_prose(document.get("details")),
        published=_moment(document.get("published")),
        modified=_moment(document.get("modified")),
        withdrawn=document.get("withdrawn") is not None,
        cvss3=cvss3,
        cvss2=cvss2,
        references=references,
        affected=affected,
    )


def _nvd_metric(metrics: dict[str, Any], keys: tuple[str, ...]) -> Score | None:
    """NVD's own (`nvd@nist.gov`) metric under any of `keys` first, then any other source's."""
    entries = [
        (key, entry)
        for key in keys
        for entry in metrics.get(key) or []
        if isinstance(entry, dict) and isinstance(entry.get("cvssData"), dict)
    ]
    entries.sort(key=lambda item: item[1].get("source") != "nvd@nist.gov")  # stable
    for key, entry in entries:
        data = entry["cvssData"]
        vector = data.get("vectorString")
        if not isinstance(vector, str) or len(vector) > MAX_VECTOR_LENGTH:
            vector = None
        score = data.get("baseScore")
        if vector or score is not None:
            computed = float(score) if score is not None else vector_score(vector)
            return Score(str(data.get("version", key[-2:])), vector, computed)
    return None


def parse_nvd(record: dict[str, Any]) -> Advisory:
    """One NVD CVE API 2.0 record (the `cve` object)."""
    cve_id = _identifier(record.get("id"))
    if cve_id is None or not cve_id.startswith("CVE-") or len(cve_id) > MAX_ID_LENGTH - 4:
        raise InvalidInputError("an NVD record needs a CVE 'id'")
    metrics = record.get("metrics") or {}
    descriptions = record.get("descriptions") or []
    english = next((d.get("value") for d in descriptions if d.get("lang") == "en"), None)
    return Advisory(
        id=f"NVD-{cve_id}",
        source="nvd",
        cve_id=cve_id,
        aliases=(),
        summary=None,
        description=_prose(english),
        published=_moment(record.get("published")),
        modified=_moment(record.get("lastModified")),
        withdrawn=record.get("vulnStatus") == "Rejected",
        cvss3=_nvd_metric(metrics, ("cvssMetricV31", "cvssMetricV30")),
        cvss2=_nvd_metric(metrics, ("cvssMetricV2",)),
        references=_links(record.get("references")),
    )


def parse_document(document: Any) -> list[Advisory]:
    """Every advisory in one parsed JSON or YAML document: an OSV advisory, a list of them, an
    NVD record, or an NVD API response (`{"vulnerabilities": [{"cve": …}, …]}`)."""
    if isinstance(document, list):
        return [advisory for item in document for advisory in parse_document(item)]
    if not isinstance(document, dict):
        raise InvalidInputError("not an OSV advisory or an NVD record")
    if "vulnerabilities" in document:
        return [parse_nvd(item.get("cve") or item) for item in document["vulnerabilities"]]
    if "cve" in document and isinstance(document["cve"], dict):
        return [parse_nvd(document["cve"])]
    if "descriptions" in document and "metrics" in document:
        return [parse_nvd(document)]
    if "id" in document and ("affected" in document or "modified" in document):
        return [parse_osv(document)]
    raise InvalidInputError("not an OSV advisory or an NVD record")
