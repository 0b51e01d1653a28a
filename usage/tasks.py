"""Periodic upkeep of the usage rollup (huey)."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from usage import alerts, rollup


@db_periodic_task(crontab(minute="*/5"))  # type: ignore[untyped-decorator]  # huey: no types
def refresh_usage_rollup() -> str | None:
    # Cheap: rebuilds today's rows so far (and yesterday's, just after midnight).
    done = rollup.refresh()
    return done.isoformat() if done else None


@db_task(retries=2, retry_delay=30)  # type: ignore[untyped-decorator]  # huey: no types
def check_budget_alerts(user_id: int, team_ids: list[int]) -> None:
    # A failed send leaves no claim behind (alerts.check_alerts), so a retry sends it.
    # Returns nothing: huey would store a result nobody reads.
    alerts.check_alerts(user_id=user_id, team_ids=team_ids)
