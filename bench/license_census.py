"""How the license families of the real repodata in ../shared/data come out.

    python -m bench license-census

Counts records per family (a record with a compound license counts in each of its families),
and lists the license strings that land in `other` or `none`, most frequent first.
"""

from __future__ import annotations

import json
from collections import Counter

from bench.data import SHARED, require_shared_data
from headwater.filters.licenses import FAMILIES, license_families


def records() -> list[dict[str, object]]:
    require_shared_data()
    found = []
    for path in sorted((SHARED / "repodata").rglob("*.json")):
        document = json.loads(path.read_text())
        if not isinstance(document, dict):
            continue
        if "packages" in document or "packages.conda" in document:
            for section in ("packages", "packages.conda"):
                found += document.get(section, {}).values()
        else:  # the flat {filename: record} test indexes
            found += [v for v in document.values() if isinstance(v, dict) and "name" in v]
    return [record for record in found if isinstance(record, dict)]


def main(argv: list[str]) -> None:
    every = records()
    per_family: Counter[str] = Counter()
    only_other: Counter[str] = Counter()
    none: Counter[str] = Counter()
    for record in every:
        families = license_families(record.get("license"), record.get("license_family"))  # type: ignore[arg-type]
        per_family.update(families)
        if families == {"other"}:
            only_other[str(record.get("license"))] += 1
        if families == {"none"}:
            none[str(record.get("license"))] += 1
    total = len(every)
    print(
        json.dumps(
            {
                "records": total,
                "per_family": {family: per_family[family] for family in FAMILIES},
                "only_other": sum(only_other.values()),
                "only_other_share": round(sum(only_other.values()) / total, 4),
                "none": sum(none.values()),
                "none_share": round(sum(none.values()) / total, 4),
                "other_strings": only_other.most_common(25),
                "none_strings": none.most_common(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
