"""The long-lived collaborators one process holds, chosen once from settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError

from headwater.cves.names import CondaNames, load_mapping
from headwater.db import Database
from headwater.migrations import upgrade
from headwater.models import JobKind
from headwater.page_cache import PageCache, PublicChannels
from headwater.services.access.ldap import Directory, LdapConfig
from headwater.services.access.oidc import OidcConfig, OidcProvider
from headwater.services.access.sign_in import SignInGuard, SignInLimits
from headwater.services.access.tokens import TokenUses
from headwater.services.access.users import ensure_admin
from headwater.services.passive import PassiveFetcher
from headwater.services.preview import PreviewGate
from headwater.settings import Settings
from headwater.storage import BlobStore, LocalBlobStore
from headwater.storage.s3 import S3BlobStore
from headwater.upstreams.http import HttpPolicy
from headwater.worker.runner import WorkerConfig
from headwater.worker.scheduler import DeploymentJob


@dataclass
class Resources:
    settings: Settings
    db: Database
    store: BlobStore
    policy: HttpPolicy
    fetcher: PassiveFetcher
    pages: PageCache = field(default_factory=PageCache)
    public_channels: PublicChannels = field(default_factory=PublicChannels)
    cve_names: CondaNames = field(default_factory=CondaNames)
    sign_in: SignInGuard = field(default_factory=lambda: SignInGuard(SignInLimits()))
    token_uses: TokenUses = field(default_factory=TokenUses)
    previews: PreviewGate = field(default_factory=PreviewGate)
    oidc: OidcProvider | None = None


def http_policy(settings: Settings) -> HttpPolicy:
    return HttpPolicy(
        timeout=settings.http_timeout,
        attempts=settings.http_attempts,
        backoff=settings.http_backoff,
        concurrency=settings.download_concurrency,
        allowlist=settings.upstream_allowlist,
        private_networks=settings.upstream_private_networks,
        proxies=settings.proxy_allowlist,
    )


def sign_in_guard(settings: Settings) -> SignInGuard:
    return SignInGuard(
        SignInLimits(
            per_account=settings.sign_in_limit_per_account,
            per_address=settings.sign_in_limit_per_address,
            storage=settings.rate_limit_storage,
        ),
        directory(settings),
    )


def directory(settings: Settings) -> Directory | None:
    """The LDAP directory users sign in against, when one is set."""
    if not settings.ldap_url:
        return None
    secret = settings.ldap_bind_password
    return Directory(
        LdapConfig(
            url=settings.ldap_url,
            user_dn_template=settings.ldap_user_dn_template,
            bind_dn=settings.ldap_bind_dn,
            bind_password=secret.get_secret_value() if secret else None,
            user_search_base=settings.ldap_user_search_base,
            user_filter=settings.ldap_user_filter,
            group_search_base=settings.ldap_group_search_base,
            group_filter=settings.ldap_group_filter,
            group_name_attribute=settings.ldap_group_name_attribute,
            email_attribute=settings.ldap_email_attribute,
            start_tls=settings.ldap_start_tls,
        )
    )


def oidc_provider(settings: Settings) -> OidcProvider | None:
    """The OpenID Connect provider users may sign in through, when one is set."""
    if not settings.oidc_issuer:
        return None
    secret = settings.oidc_client_secret
    return OidcProvider(
        OidcConfig(
            issuer=settings.oidc_issuer,
            client_id=settings.oidc_client_id,
            client_secret=secret.get_secret_value() if secret else None,
            scopes=settings.oidc_scopes,
            username_claim=settings.oidc_username_claim,
            groups_claim=settings.oidc_groups_claim,
        )
    )


def worker_config(settings: Settings, names: CondaNames | None = None) -> WorkerConfig:
    """`names`: the conda-to-PyPI names already loaded, if the process has them."""
    return WorkerConfig(
        poll_interval=settings.worker_poll_interval,
        heartbeat_interval=settings.heartbeat_interval,
        heartbeat_timeout=settings.heartbeat_timeout,
        cve_names=names if names is not None else cve_names(settings),
        import_limit=settings.max_import_bytes,
    )


def deployment_jobs(settings: Settings) -> list[DeploymentJob]:
    """The jobs of the whole deployment the scheduler queues on their cron: pruning channels'
    revisions, and the CVE feeds' refresh when feeds are set."""
    kept = {"revisions_kept": settings.revisions_kept}
    grace = {"grace_hours": settings.gc_grace_hours}
    jobs = [
        DeploymentJob(JobKind.revision_prune, settings.revision_prune_cron, kept),
        DeploymentJob(JobKind.blob_collect, settings.gc_cron, grace),
    ]
    if settings.cve_feeds:
        feeds = {"feeds": list(settings.cve_feeds)}
        jobs.append(DeploymentJob(JobKind.cve_refresh, settings.cve_refresh_cron, feeds))
    return jobs


def cve_names(settings: Settings) -> CondaNames:
    """How conda names map to PyPI names for CVE matching: the mapping file, the overrides."""
    mapping = load_mapping(settings.cve_name_mapping) if settings.cve_name_mapping else None
    return CondaNames(mapping, settings.cve_name_overrides)


def open_database(settings: Settings) -> Database:
    """The database, migrated to the newest schema."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    upgrade(db.engine)
    return db


def open_blob_store(settings: Settings) -> BlobStore:
    if settings.blob_backend == "local":
        return LocalBlobStore(settings.resolved_blob_dir)
    assert settings.s3_bucket is not None  # Settings refuses s3 without a bucket
    secret = settings.s3_secret_access_key
    return S3BlobStore(
        settings.s3_bucket,
        settings.resolved_staging_dir,
        prefix=settings.s3_prefix,
        endpoint=settings.s3_endpoint,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=secret.get_secret_value() if secret is not None else None,
        presigned_seconds=settings.presigned_url_seconds,
    )


def bootstrap(settings: Settings) -> tuple[Database, str | None]:
    """Migrate and make sure an administrator exists; returns a generated password, if any."""
    db = open_database(settings)
    password = settings.admin_password.get_secret_value() if settings.admin_password else None
    try:
        with db.writing() as session:
            generated = ensure_admin(session, settings.admin_user, password)
    except IntegrityError:  # another process starting at the same moment created it first
        with db.writing() as session:
            generated = ensure_admin(session, settings.admin_user, password)
    return db, generated
