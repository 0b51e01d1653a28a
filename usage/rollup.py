"""The daily rollup: UsageDaily rebuilt from raw UsageRecord rows, one local day at a time.

`RollupState.rolled_until` is a watermark: every record made before it is in the rollup
(the day holding it partly), nothing after it is. A refresh (the periodic huey task,
every 5 minutes) moves it to now minus a grace period, which covers a call that stamps
its record a moment before it commits. The report reads the rollup before the watermark
and raw rows after it, so it is exact whether or not the task has run. Anything that
changes records before the watermark (reprice, generate_usage) rebuilds those days.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Aggregate, Count, Min, Q, Sum
from django.utils import timezone

from usage.models import OUTCOME_OK, OUTCOME_OVER_BUDGET, RollupState, UsageDaily, UsageRecord

GRACE = timedelta(minutes=10)
DIMENSIONS = ("provider_id", "model", "user_id", "source", "outcome")
TOKEN_FIELDS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "output_tokens",
    "total_tokens",
)
# Errors are failed upstream attempts; a budget refusal never reached upstream.
ERROR_Q = ~Q(outcome__in=[OUTCOME_OK, OUTCOME_OVER_BUDGET])
REFUSED_Q = Q(outcome=OUTCOME_OVER_BUDGET)


# Aggregates are named "m_<metric>": a bare name would clash with the model's own field.
PREFIX = "m_"


def _prefixed(metrics: dict[str, Aggregate]) -> dict[str, Aggregate]:
    return {PREFIX + k: v for k, v in metrics.items()}


def unprefixed(row: dict[str, Any]) -> dict[str, Any]:
    """A values() row with the metric names as Totals / UsageDaily spell them."""
    return {k.removeprefix(PREFIX): v for k, v in row.items()}


def raw_metrics() -> dict[str, Aggregate]:
    return _prefixed(
        {
            "requests": Count("id"),
            "cache_hits": Count("id", filter=Q(cache_hit=True)),
            "unpriced": Count("id", filter=Q(cost_nanos__isnull=True)),
            "errors": Count("id", filter=ERROR_Q),
            "refused": Count("id", filter=REFUSED_Q),
            "cost_nanos": Sum("cost_nanos"),
            **{f: Sum(f) for f in TOKEN_FIELDS},
        }
    )


def rollup_metrics() -> dict[str, Aggregate]:
    return _prefixed(
        {
            "requests": Sum("requests"),
            "cache_hits": Sum("cache_hits"),
            "unpriced": Sum("unpriced"),
            "errors": Sum("requests", filter=ERROR_Q),
            "refused": Sum("requests", filter=REFUSED_Q),
            "cost_nanos": Sum("cost_nanos"),
            **{f: Sum(f) for f in TOKEN_FIELDS},
        }
    )


def day_start(day: date) -> datetime:
    """Local midnight at the start of `day`, in settings.TIME_ZONE."""
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def local_day(at: datetime) -> date:
    return timezone.localtime(at).date()


def rebuild_days(first: date, last: date, until: datetime | None = None) -> int:
    """Replace the rollup rows of days first..last (inclusive) from raw rows.

    With `until`, only records made before it are rolled up (the current day, partly).
    Each day is one transaction holding the state row's lock, so two workers never
    interleave a delete and an insert of the same day (duplicate rows on PostgreSQL).
    """
    written = 0
    day = first
    while day <= last:
        upper = day_start(day + timedelta(days=1))
        if until is not None:
            upper = min(upper, until)
        with transaction.atomic():
            RollupState.objects.select_for_update().filter(pk=1).first()
            UsageDaily.objects.filter(day=day).delete()
            rows = (
                UsageRecord.objects.filter(created_at__gte=day_start(day), created_at__lt=upper)
                .values(*DIMENSIONS)
                .annotate(**raw_metrics())
                .order_by()
            )
            objs = [
                UsageDaily(
                    day=day,
                    **{k: row[k] for k in DIMENSIONS},
                    requests=row["requests"],
                    cache_hits=row["cache_hits"],
                    unpriced=row["unpriced"],
                    cost_nanos=row["cost_nanos"] or 0,
                    **{f: row[f] or 0 for f in TOKEN_FIELDS},
                )
                for row in map(unprefixed, rows)
            ]
            UsageDaily.objects.bulk_create(objs, batch_size=2000)
            written += len(objs)
        day += timedelta(days=1)
    return written


def _tz_name() -> str:
    return timezone.get_current_timezone_name()


def refresh(now: datetime | None = None) -> date | None:
    """Roll up every record older than now - GRACE; returns the last complete day.

    The day holding the previous watermark is rebuilt in full up to the new one, so the
    current day is rolled up in part and the raw remainder stays minutes long.
    """
    state, _ = RollupState.objects.get_or_create(pk=1)
    if state.rolled_until is not None and state.time_zone != _tz_name():
        UsageDaily.objects.all().delete()  # built for other day boundaries: start over
        state.rolled_until = None
    state.time_zone = _tz_name()
    until = (now or timezone.now()) - GRACE
    if state.rolled_until is not None:
        if until <= state.rolled_until:
            return complete_through()
        first = local_day(state.rolled_until)
    else:
        earliest = UsageRecord.objects.aggregate(m=Min("created_at"))["m"]
        if earliest is None:
            return None
        first = local_day(earliest)
    rebuild_days(first, local_day(until), until=until)
    state.rolled_until = until
    state.complete_through = local_day(until) - timedelta(days=1)
    state.save()
    return state.complete_through


def rebuild_all() -> date | None:
    """Start over: drop the rollup and rebuild it (after bulk imports or repairs)."""
    RollupState.objects.update_or_create(
        pk=1, defaults={"complete_through": None, "rolled_until": None, "time_zone": _tz_name()}
    )
    UsageDaily.objects.all().delete()
    return refresh()


def rolled_until() -> datetime | None:
    """Every record made before this is in the rollup; None = read raw rows only."""
    state = RollupState.objects.filter(pk=1).first()
    if state is None or state.time_zone != _tz_name():
        return None
    return state.rolled_until


def complete_through() -> date | None:
    """The last day the rollup holds in full, or None."""
    until = rolled_until()
    return None if until is None else local_day(until) - timedelta(days=1)


def touch_range(start: datetime, end: datetime) -> None:
    """Raw rows between start and end changed: rebuild those days where rolled up."""
    until = rolled_until()
    if until is None or start >= until:
        return
    rebuild_days(local_day(start), local_day(min(end, until)), until=until)
