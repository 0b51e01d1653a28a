"""Periodic upkeep of the usage rollup (huey)."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from usage import rollup


@db_periodic_task(crontab(minute="*/5"))  # type: ignore[untyped-decorator]  # huey: no types
def refresh_usage_rollup() -> str | None:
    # Cheap: rebuilds today's rows so far (and yesterday's, just after midnight).
    done = rollup.refresh()
    return done.isoformat() if done else None
