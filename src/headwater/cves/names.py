"""Which PyPI project a conda package is, for matching it against PyPI advisories.

The mapping file is a JSON object from conda package name to PyPI name, as prefix-dev's
parselmouth publishes it: a name, `null` (not a Python package), or a list of the names found
in the package (a package that bundles several distributions matches none of them: its version
is not theirs). Names the file does not list map to the PyPI project of the same normalized
name; administrators' overrides win over both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from headwater.errors import InvalidInputError


class CondaNames:
    def __init__(
        self,
        mapping: dict[str, str | None] | None = None,
        overrides: dict[str, str | None] | None = None,
    ) -> None:
        self.mapping = mapping or {}
        self.overrides = {
            name: (canonicalize_name(v) if v else None) for name, v in (overrides or {}).items()
        }

    def pypi_name(self, conda_name: str) -> str | None:
        if conda_name in self.overrides:
            return self.overrides[conda_name]
        if conda_name in self.mapping:
            return self.mapping[conda_name]
        return canonicalize_name(conda_name)


def _one_name(conda_name: str, value: Any) -> str | None:
    if isinstance(value, str):
        return canonicalize_name(value)
    if isinstance(value, list):
        names = {canonicalize_name(str(item)) for item in value}
        if len(names) == 1:
            return names.pop()
        own = canonicalize_name(conda_name)
        return own if own in names else None
    return None


def load_mapping(path: Path) -> dict[str, str | None]:
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError) as error:
        raise InvalidInputError(f"cannot read the conda-to-PyPI mapping {path}: {error}") from None
    if not isinstance(document, dict):
        raise InvalidInputError(f"{path} is not a JSON object of conda names")
    return {name: _one_name(name, value) for name, value in document.items()}
