"""docs/operations.md lists every setting, under its environment variable, in its table."""

from __future__ import annotations

import re
from pathlib import Path

from headwater.settings import Settings

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_every_setting_is_in_the_settings_table() -> None:
    text = OPERATIONS.read_text()
    table = text[text.index("| setting (environment variable) |") :]
    table = table[: table.index("\n\n")]
    named = set()
    for row in table.splitlines()[2:]:
        first_cell = row.split(" | ", 1)[0]
        named |= set(re.findall(r"`(HEADWATER_[A-Z0-9_]+)`", first_cell))
    wanted = {f"HEADWATER_{name.upper()}" for name in Settings.model_fields}
    assert sorted(wanted - named) == [], "settings missing from docs/operations.md"
    assert sorted(named - wanted) == [], "settings docs/operations.md names that do not exist"
