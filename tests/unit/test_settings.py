"""Settings: defaults, the TOML file, and the environment winning over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.settings import DEFAULT_UPSTREAM_ALLOWLIST, Settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "HEADWATER_CONFIG",
        "HEADWATER_DATA_DIR",
        "HEADWATER_DATABASE_URL",
        "HEADWATER_UPSTREAM_ALLOWLIST",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.data_dir == Path("var")
    assert settings.resolved_database_url == f"sqlite:///{Path('var/headwater.sqlite3').resolve()}"
    assert settings.upstream_allowlist == DEFAULT_UPSTREAM_ALLOWLIST
    assert settings.admin_user == "admin" and settings.admin_password is None


def test_toml_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "headwater.toml"
    config.write_text(
        'data_dir = "/srv/hw"\n'
        'database_url = "postgresql+psycopg://hw@db/hw"\n'
        'upstream_allowlist = "https://mirror.internal/, http://127.0.0.1:*"\n'
        "download_concurrency = 3\n"
    )
    monkeypatch.setenv("HEADWATER_CONFIG", str(config))
    monkeypatch.setenv("HEADWATER_DOWNLOAD_CONCURRENCY", "5")
    settings = Settings()
    assert settings.data_dir == Path("/srv/hw")
    assert settings.resolved_database_url == "postgresql+psycopg://hw@db/hw"
    assert settings.upstream_allowlist == ("https://mirror.internal/", "http://127.0.0.1:*")
    assert settings.download_concurrency == 5, "the environment wins over the file"
