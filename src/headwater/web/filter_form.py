"""The Filters section of the mirror form and of the channel's settings: read from a form."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData

from headwater.filters import SPEC_KEYS
from headwater.filters.licenses import FAMILIES
from headwater.formats.conda import KNOWN_SUBDIRS

# What each filter key is called on the pages, in the order the form shows them: people read
# "Leave out licenses", not `exclude_licenses`.
FILTER_LABELS = {
    "subdirs": "Platforms (subdirs)",
    "projects": "Projects",
    "include_prereleases": "Include pre-releases",
    "keep_latest": "Keep the latest versions",
    "only_specs": "Only these packages",
    "include_specs": "Always take these packages",
    "exclude_specs": "Leave out packages",
    "include_licenses": "Take only licenses",
    "exclude_licenses": "Leave out licenses",
    "date_from": "Published from",
    "date_to": "Published to",
    "include_dependencies": "Take dependencies of kept packages",
    "dependencies": "Dependency versions",
    "cve_score_threshold": "Leave out CVE scores above",
    "cve_unscored_score": "Count an unscored CVE as",
    "exclude_non_curated_cve": "Leave out CVE matches nobody has curated",
}

# The subdirs offered as checkboxes, most used first.
COMMON_SUBDIRS = ["noarch", "linux-64", "linux-aarch64", "osx-64", "osx-arm64", "win-64"]
OTHER_SUBDIRS = sorted(KNOWN_SUBDIRS - set(COMMON_SUBDIRS))


def filters_from_form(form: FormData) -> dict[str, Any]:
    """Every filter key from the form; a key the form leaves empty is None, which removes it.

    The form shows the whole set, so what it sends replaces what was stored.
    """
    filters: dict[str, Any] = {
        "subdirs": [str(value) for value in form.getlist("subdirs")] or None,
        "include_licenses": [str(value) for value in form.getlist("include_licenses")] or None,
        "exclude_licenses": [str(value) for value in form.getlist("exclude_licenses")] or None,
        "date_from": str(form.get("date_from", "")).strip() or None,
        "date_to": str(form.get("date_to", "")).strip() or None,
        "cve_score_threshold": None,
        "cve_unscored_score": None,
        "exclude_non_curated_cve": True if form.get("exclude_non_curated_cve") == "on" else None,
        "include_dependencies": True if form.get("include_dependencies") == "on" else None,
        "dependencies": str(form.get("dependencies", "")).strip() or None,
    }
    filters.update(_python_filters_from_form(form))
    for key in SPEC_KEYS:
        lines = [line.strip() for line in str(form.get(key, "")).splitlines()]
        filters[key] = [line for line in lines if line] or None
    if form.get("cve_threshold_enabled") == "on":
        text = str(form.get("cve_score_threshold", "")).strip()
        try:
            filters["cve_score_threshold"] = float(text)
        except ValueError:
            filters["cve_score_threshold"] = text  # validation says what is wrong with it
        # Only with a threshold: it says how the threshold counts an unscored CVE.
        if form.get("cve_unscored_enabled") == "on":
            filters["cve_unscored_score"] = _number(form.get("cve_unscored_score"))
    return filters


def _number(value: Any) -> Any:
    text = str(value or "").strip()
    try:
        return float(text)
    except ValueError:
        return text  # validation says what is wrong with it


def _python_filters_from_form(form: FormData) -> dict[str, Any]:
    """The keys only PyPI mirrors read. The form sends none of them for a conda mirror: the
    PyPI section is a disabled fieldset then."""
    keep = str(form.get("keep_latest", "")).strip()
    return {
        "projects": [str(value) for value in form.getlist("projects") if str(value).strip()]
        or None,
        "include_prereleases": True if form.get("include_prereleases") == "on" else None,
        "keep_latest": (int(keep) if keep.isdigit() else keep) if keep else None,
    }


def filter_context() -> dict[str, Any]:
    return {
        "common_subdirs": COMMON_SUBDIRS,
        "other_subdirs": OTHER_SUBDIRS,
        "license_families": FAMILIES,
        "filter_labels": FILTER_LABELS,
    }


def labelled_filters(filters: dict[str, Any]) -> list[tuple[str, str]]:
    """A stored filter set as the read-only list shows it: (label, value) in the form's order,
    unknown keys last under their own name."""
    order = {key: index for index, key in enumerate(FILTER_LABELS)}
    shown = []
    for key in sorted(filters, key=lambda key: (order.get(key, len(order)), key)):
        value = filters[key]
        if value is None:
            continue
        if isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, list | tuple):
            text = ", ".join(str(item) for item in value)
        else:
            text = str(value)
        shown.append((FILTER_LABELS.get(key, key), text))
    return shown
