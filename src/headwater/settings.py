"""All settings, read once at the edge: HEADWATER_* environment variables and a TOML file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from limits import parse as parse_limit
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from headwater.allowlist import PROXY_SCHEMES, AllowedPrefix, parse_networks
from headwater.errors import InvalidCronError
from headwater.inputs import has_control_characters
from headwater.schedule import parse_schedule

DEFAULT_UPSTREAM_ALLOWLIST = (
    "https://conda.anaconda.org/",
    "https://repo.anaconda.com/",
    "https://repo.prefix.dev/",
    "https://prefix.dev/",
    "https://pypi.org/",
    "https://files.pythonhosted.org/",
)

CONFIG_FILE_VARIABLE = "HEADWATER_CONFIG"


class Settings(BaseSettings):
    """Every knob Headwater has. Environment wins over the TOML file, which wins over defaults."""

    model_config = SettingsConfigDict(env_prefix="HEADWATER_", extra="ignore")

    data_dir: Path = Path("var")
    database_url: str | None = None
    blob_dir: Path | None = None
    # The blob store: "local" (blob_dir) or "s3" (an S3-compatible bucket; docs/operations.md).
    blob_backend: Literal["local", "s3"] = "local"
    s3_bucket: str | None = None
    s3_endpoint: str | None = None  # MinIO, Ceph, moto: their URL; unset for AWS
    s3_region: str | None = None
    s3_prefix: str = ""
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    staging_dir: Path | None = None  # where writes to an S3 store are staged (data_dir/staging)
    blob_redirects: bool = False  # package downloads as redirects to presigned URLs (S3)
    presigned_url_seconds: int = Field(default=300, ge=10, le=7 * 24 * 3600)
    # Garbage collection: unreferenced blobs go once untouched this long, on this schedule.
    gc_grace_hours: float = Field(default=24.0, ge=0)
    gc_cron: str = "15 3 * * *"
    # Serving conda at the limit (docs/architecture.md): how many bytes of immutable index
    # artifacts, shards and small package files each process keeps in memory; for how long the
    # fast path reuses a token's decision to read a channel (a token revoked, a role taken away
    # or a channel made private reaches token holders within it); and a front proxy that sends
    # blob files itself (docs/operations.md, "A front proxy"): the answer carries
    # `<accel_header>: <accel_redirect_prefix><blob key>` and no body.
    serve_cache_bytes: int = Field(default=256 << 20, ge=0)
    token_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    accel_redirect_prefix: str | None = None
    accel_header: Literal["X-Accel-Redirect", "X-Sendfile"] = "X-Accel-Redirect"

    admin_user: str = "admin"
    admin_password: SecretStr | None = None
    token_ttl_days: int = Field(default=30, ge=1)  # sessions: signing in, `headwater login`
    max_token_days: int = Field(default=365, ge=1)  # personal tokens: the longest they may last
    # Sign-in limits (`limits` notation; docs/operations.md).
    sign_in_limit_per_account: str = "10 per 5 minutes"
    sign_in_limit_per_address: str = "60 per minute"
    rate_limit_storage: str = "async+memory://"

    upstream_allowlist: Annotated[tuple[str, ...], NoDecode] = DEFAULT_UPSTREAM_ALLOWLIST
    # Networks whose addresses allowlisted hosts may resolve to (internal upstreams); other
    # non-public addresses are refused unless an allowlist entry names the address itself.
    upstream_private_networks: Annotated[tuple[str, ...], NoDecode] = ()
    # The proxies mirrors may use; only administrators set a mirror's proxy.
    proxy_allowlist: Annotated[tuple[str, ...], NoDecode] = ()

    # How large a request body may be, by kind; larger ones are answered 413 before being read.
    max_request_bytes: int = Field(default=1 << 20, ge=1024)  # JSON and form bodies
    max_upload_bytes: int = Field(default=4 << 30, ge=1 << 20)  # package files
    max_import_bytes: int = Field(default=1 << 30, ge=1 << 20)  # advisory uploads and feeds

    # Single sign-on (docs/operations.md): OpenID Connect when an issuer is set, LDAP when a
    # URL is set; local accounts sign in with their passwords either way.
    oidc_issuer: str | None = None
    oidc_client_id: str = "headwater"
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: str = "openid profile email"
    oidc_username_claim: str = "preferred_username"
    oidc_groups_claim: str = "groups"
    oidc_label: str = "single sign-on"
    ldap_url: str | None = None
    ldap_user_dn_template: str | None = None
    ldap_bind_dn: str | None = None
    ldap_bind_password: SecretStr | None = None
    ldap_user_search_base: str | None = None
    ldap_user_filter: str = "(uid={username})"
    ldap_group_search_base: str | None = None
    ldap_group_filter: str = "(|(member={dn})(uniqueMember={dn})(memberUid={username}))"
    ldap_group_name_attribute: str = "cn"
    ldap_email_attribute: str = "mail"
    ldap_start_tls: bool = False
    # Where browsers reach this server (https://headwater.corp): the address the identity
    # provider sends them back to. Unset, it is taken from each request.
    public_url: str | None = None

    host: str = "127.0.0.1"
    port: int = 8000
    # The HTTP server `headwater serve` runs the app on (docs/operations.md): Granian parses
    # HTTP on a thread of its own (more requests a second on two cores than uvicorn, for the
    # same CPU per request) and sends files without a thread hop (ASGI pathsend).
    server: Literal["granian", "uvicorn"] = "granian"
    # One log line per request. Behind a reverse proxy that logs requests already, turning it
    # off gives the busiest routes about 40% more throughput (docs/performance.md).
    access_log: bool = True

    # Operations (docs/operations.md): log lines as text or one JSON object each, and their
    # least level; the bearer token /metrics asks for (unset: open, restrict it at the
    # network); where `headwater worker` serves its own /metrics (unset: nowhere); how long
    # /readyz waits for each dependency.
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    metrics_token: SecretStr | None = None
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    readiness_timeout: float = Field(default=5.0, gt=0, le=60)

    # Work done in the background.
    embedded_worker: bool = True
    embedded_scheduler: bool = True
    scheduler_interval: float = Field(default=15.0, gt=0)
    worker_poll_interval: float = Field(default=2.0, gt=0)
    heartbeat_interval: float = Field(default=2.0, gt=0)
    # Well above SQLite's 60 s busy timeout, which a heartbeat may spend waiting for a publish.
    heartbeat_timeout: float = Field(default=120.0, gt=0)

    # Talking to upstreams.
    http_timeout: float = Field(default=60.0, gt=0)
    http_attempts: int = Field(default=4, ge=1)
    http_backoff: float = Field(default=1.0, ge=0)
    download_concurrency: int = Field(default=8, ge=1)

    # The CVE database (docs/cves.md).
    cve_feeds: Annotated[tuple[str, ...], NoDecode] = ()  # URLs or paths of OSV/NVD files
    cve_refresh_cron: str = "0 * * * *"
    cve_name_mapping: Path | None = None  # conda name → PyPI name, JSON (parselmouth's)
    cve_name_overrides: dict[str, str | None] = Field(default_factory=dict)

    # Channel revisions (docs/architecture.md): how many of each channel's latest revisions
    # stay pinnable (a channel may say otherwise), and when older ones are pruned.
    revisions_kept: int = Field(default=30, ge=1, le=100_000)
    revision_prune_cron: str = "30 * * * *"

    @field_validator(
        "upstream_allowlist",
        "upstream_private_networks",
        "proxy_allowlist",
        "cve_feeds",
        mode="before",
    )
    @classmethod
    def _split_allowlist(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _lower_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("upstream_allowlist")
    @classmethod
    def _check_allowlist(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            AllowedPrefix.parse(entry)
        return value

    @field_validator("sign_in_limit_per_account", "sign_in_limit_per_address")
    @classmethod
    def _check_limit(cls, value: str) -> str:
        parse_limit(value)  # ValueError says what is wrong
        return value

    @model_validator(mode="after")
    def _check_blob_store(self) -> Settings:
        if self.blob_backend == "s3" and not self.s3_bucket:
            raise ValueError("HEADWATER_BLOB_BACKEND=s3 needs HEADWATER_S3_BUCKET")
        if self.blob_redirects and self.blob_backend != "s3":
            raise ValueError("HEADWATER_BLOB_REDIRECTS needs HEADWATER_BLOB_BACKEND=s3")
        if self.accel_redirect_prefix is not None and self.blob_backend != "local":
            raise ValueError("HEADWATER_ACCEL_REDIRECT_PREFIX needs HEADWATER_BLOB_BACKEND=local")
        return self

    @field_validator("accel_redirect_prefix")
    @classmethod
    def _check_accel_prefix(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith("/") or not value.endswith("/") or has_control_characters(value):
            raise ValueError(
                f"accel_redirect_prefix {value!r} must start and end with '/' "
                "(an internal location of the front proxy, or the blob directory as it sees it)"
            )
        return value

    @field_validator("cve_refresh_cron", "revision_prune_cron", "gc_cron")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        try:
            parse_schedule(value)
        except InvalidCronError as error:
            raise ValueError(error.message) from None
        return value

    @field_validator("upstream_private_networks")
    @classmethod
    def _check_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        parse_networks(value)
        return value

    @field_validator("proxy_allowlist")
    @classmethod
    def _check_proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            if urlsplit(entry).scheme not in PROXY_SCHEMES or not urlsplit(entry).hostname:
                raise ValueError(f"proxy {entry!r} is not an http or https URL")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_VARIABLE)
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'headwater.sqlite3').resolve()}"

    @property
    def resolved_blob_dir(self) -> Path:
        return (self.blob_dir or self.data_dir / "blobs").resolve()

    @property
    def resolved_staging_dir(self) -> Path:
        return (self.staging_dir or self.data_dir / "staging").resolve()
