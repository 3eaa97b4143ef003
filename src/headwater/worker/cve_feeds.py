"""Refreshing the CVE database from its feeds (HEADWATER_CVE_FEEDS) on their own cron."""

from __future__ import annotations

import logging
import threading

from headwater.cves.names import CondaNames
from headwater.db import Database, utcnow
from headwater.errors import HeadwaterError
from headwater.schedule import parse_schedule
from headwater.services.cve_import import import_reading, read_source
from headwater.upstreams.http import HttpPolicy

log = logging.getLogger(__name__)


def refresh_feeds(
    db: Database, names: CondaNames, feeds: tuple[str, ...], policy: HttpPolicy, limit: int
) -> None:
    """Import each feed in turn; a feed that fails is logged and the others still import."""
    for feed in feeds:
        try:
            outcome = import_reading(db, names, read_source(feed, policy, limit=limit))
        except HeadwaterError as error:
            log.warning("CVE feed %s: %s", feed, error.message)
            continue
        except Exception:  # one broken feed must not keep the others out
            log.exception("CVE feed %s failed", feed)
            continue
        report = outcome.imported
        log.info(
            "CVE feed %s: %d advisories, %d new, %d updated, %d unchanged",
            feed,
            report.read,
            report.added,
            report.updated,
            report.unchanged,
        )


class CveFeeds:
    """Runs in the process that runs the scheduler. Importing is idempotent, so replicas that
    each refresh the same feeds only repeat work."""

    def __init__(
        self,
        db: Database,
        names: CondaNames,
        feeds: tuple[str, ...],
        cron: str,
        policy: HttpPolicy,
        limit: int,
    ) -> None:
        self.db = db
        self.names = names
        self.feeds = feeds
        self.schedule = parse_schedule(cron)
        self.policy = policy
        self.limit = limit
        self._shutdown = threading.Event()

    def run_forever(self) -> None:
        while not self._shutdown.is_set():
            wait = (self.schedule.next_run(utcnow()) - utcnow()).total_seconds()
            if self._shutdown.wait(max(wait, 0.0)):
                return
            try:
                refresh_feeds(self.db, self.names, self.feeds, self.policy, self.limit)
            except Exception:
                log.exception("CVE feed refresh failed; trying again at the next firing")

    def shutdown(self) -> None:
        self._shutdown.set()
