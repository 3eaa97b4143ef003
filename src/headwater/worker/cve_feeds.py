"""Refreshing the CVE database from its feeds (HEADWATER_CVE_FEEDS): a job of the run queue,
queued by the scheduler on HEADWATER_CVE_REFRESH_CRON and executed by one worker."""

from __future__ import annotations

import logging
import threading

from headwater.cves.names import CondaNames
from headwater.db import Database
from headwater.errors import HeadwaterError
from headwater.services.cve_import import import_reading, read_source
from headwater.services.progress import RunProgress
from headwater.upstreams.http import HttpPolicy, shown_url

log = logging.getLogger(__name__)


def refresh_feeds(
    db: Database,
    names: CondaNames,
    feeds: tuple[str, ...],
    policy: HttpPolicy,
    limit: int,
    progress: RunProgress,
    stopping: threading.Event,
) -> list[str]:
    """Import each feed in turn, until `stopping` is set; a feed that fails is reported and
    the others still import. Returns what failed, one line per feed."""
    failures = []
    for feed in feeds:
        if stopping.is_set():
            progress.log("stopped before the next feed")
            break
        shown = shown_url(feed)
        try:
            outcome = import_reading(db, names, read_source(feed, policy, limit=limit))
        except HeadwaterError as error:
            failures.append(f"{shown}: {error.message}")
            progress.log(f"CVE feed {shown}: {error.message}", "error")
            continue
        except Exception as error:  # one broken feed must not keep the others out
            log.exception("CVE feed %s failed", shown)
            failures.append(f"{shown}: internal error ({type(error).__name__})")
            progress.log(f"CVE feed {shown}: internal error ({type(error).__name__})", "error")
            continue
        finally:
            progress.advance()
        report = outcome.imported
        progress.log(
            f"CVE feed {shown}: {report.read} advisories, {report.added} new, "
            f"{report.updated} updated, {report.unchanged} unchanged"
        )
    return failures
