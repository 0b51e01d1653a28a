"""The daily rollup: UsageDaily rebuilt from raw UsageRecord rows, one local day at a time.

A day is rolled up only once it has ended (plus a grace period for a call that ends at
midnight and commits a moment later), and `RollupState.complete_through` says which
days are in. The report reads the rollup for those days and raw rows for the rest, so
it is exact whether or not the periodic task has run. Anything that writes records
into a closed day (reprice, generate_usage) calls `rebuild_days` for it.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Count, Min, Q, Sum
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


def _prefixed(metrics: dict[str, object]) -> dict[str, object]:
    return {PREFIX + k: v for k, v in metrics.items()}


def unprefixed(row: dict[str, object]) -> dict[str, object]:
    """A values() row with the metric names as Totals / UsageDaily spell them."""
    return {k.removeprefix(PREFIX): v for k, v in row.items()}


def raw_metrics() -> dict[str, object]:
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


def rollup_metrics() -> dict[str, object]:
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


def rebuild_days(first: date, last: date) -> int:
    """Replace the rollup rows of days first..last (inclusive) from raw rows."""
    written = 0
    day = first
    while day <= last:
        with transaction.atomic():
            UsageDaily.objects.filter(day=day).delete()
            rows = (
                UsageRecord.objects.filter(
                    created_at__gte=day_start(day),
                    created_at__lt=day_start(day + timedelta(days=1)),
                )
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


def last_closed_day(now: datetime | None = None) -> date:
    return local_day((now or timezone.now()) - GRACE) - timedelta(days=1)


def refresh(now: datetime | None = None) -> date | None:
    """Roll up every closed day not yet in; returns the new `complete_through`."""
    state, _ = RollupState.objects.get_or_create(pk=1)
    if state.complete_through is not None and state.time_zone != _tz_name():
        UsageDaily.objects.all().delete()  # built for other day boundaries: start over
        state.complete_through = None
    state.time_zone = _tz_name()
    target = last_closed_day(now)
    if state.complete_through is not None:
        first = state.complete_through + timedelta(days=1)
    else:
        earliest = UsageRecord.objects.aggregate(m=Min("created_at"))["m"]
        if earliest is None:
            return None
        first = local_day(earliest)
    if first <= target:
        rebuild_days(first, target)
    state.complete_through = max(target, state.complete_through or target)
    state.save()
    return state.complete_through


def rebuild_all() -> date | None:
    """Start over: drop the rollup and rebuild every closed day (after bulk imports)."""
    bounds = UsageRecord.objects.aggregate(lo=Min("created_at"))
    RollupState.objects.update_or_create(
        pk=1, defaults={"complete_through": None, "time_zone": _tz_name()}
    )
    UsageDaily.objects.all().delete()
    if bounds["lo"] is None:
        return None
    return refresh()


def _tz_name() -> str:
    return timezone.get_current_timezone_name()


def complete_through() -> date | None:
    """The last day the rollup holds, or None (then readers use raw rows only)."""
    state = RollupState.objects.filter(pk=1).first()
    if state is None or state.time_zone != _tz_name():
        return None
    return state.complete_through


def touch_range(start: datetime, end: datetime) -> None:
    """Raw rows between start and end changed: rebuild those days if already rolled up."""
    done = complete_through()
    if done is None:
        return
    first, last = local_day(start), min(local_day(end), done)
    if first <= last:
        rebuild_days(first, last)
