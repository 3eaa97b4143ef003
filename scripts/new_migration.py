"""Autogenerate an Alembic revision from the models: `python scripts/new_migration.py "message"`.

Migrations must not import application code, so Headwater's own column types are rewritten to
the plain SQLAlchemy types they store as.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from headwater.migrations import alembic_config, upgrade

PLAIN_TYPES = {
    "headwater.models.filter_set.FilterSetColumn()": "sa.JSON()",
    "headwater.db.UTCDateTime(timezone=True)": "sa.DateTime(timezone=True)",
}


def main(message: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{scratch}/schema.sqlite3"
        upgrade(create_engine(url))
        config = alembic_config()
        config.cmd_opts = type("Options", (), {"x": [f"url={url}"]})()
        head = ScriptDirectory.from_config(config).get_current_head()
        rev_id = f"{int(head or 0) + 1:04d}"
        script = command.revision(config, message=message, autogenerate=True, rev_id=rev_id)
    path = Path(script.path)  # type: ignore[union-attr]
    text = path.read_text()
    for custom, plain in PLAIN_TYPES.items():
        text = text.replace(custom, plain)
    path.write_text(text)
    ruff = Path(sys.executable).parent / "ruff"
    subprocess.run([ruff, "check", "--fix", "--quiet", path], check=False)
    subprocess.run([ruff, "format", "--quiet", path], check=False)
    print(path)


if __name__ == "__main__":
    main(" ".join(sys.argv[1:]) or "schema change")
