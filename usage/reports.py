"""The staff usage report: totals, per-day series and breakdowns, aggregated in the database.

Closed days come from the UsageDaily rollup, the rest (today, and any day the rollup
task has not reached) from raw UsageRecord rows; the two partial aggregates are added
per group key. Only aggregated rows (days, providers, models, users) reach Python.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Aggregate, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from providers.models import Provider
from usage.models import UsageDaily, UsageRecord, nanos_to_usd
from usage.rollup import (
    day_start,
    local_day,
    raw_metrics,
    rolled_until,
    rollup_metrics,
    unprefixed,
)

# A group's values, in the order of its fields: provider ids (UUID), model names, user
# ids (int or None), local days (date).
GroupKey = tuple[Any, ...]
# The rollup's rows or the raw records: both have the dimension and metric fields, and
# only the raw records a created_at (the type checker cannot tell which one a part has).
UsageRows = QuerySet[Any]


@dataclass(frozen=True)
class ReportQuery:
    first_day: date
    last_day: date  # inclusive, local days in settings.TIME_ZONE
    provider_id: uuid.UUID | None = None
    model: str = ""
    user_id: int | None = None
    source: str = ""
    outcome: str = ""
    # A team (a group's id): the records counted toward it when they were made. The
    # rollup has no teams, so a team-filtered report reads raw rows only.
    team_id: int | None = None

    def team_filter(self) -> dict[str, object]:
        return {} if self.team_id is None else {"team_links__team_id": self.team_id}

    def dimension_filter(self) -> dict[str, object]:
        wanted = {
            "provider_id": self.provider_id,
            "model": self.model,
            "user_id": self.user_id,
            "source": self.source,
            "outcome": self.outcome,
        }
        return {k: v for k, v in wanted.items() if v not in (None, "")}

    def raw_records(self) -> QuerySet[UsageRecord]:
        """Every raw record in range and filter (for the CSV and the percentiles)."""
        return UsageRecord.objects.filter(
            created_at__gte=day_start(self.first_day),
            created_at__lt=day_start(self.last_day + timedelta(days=1)),
            **self.dimension_filter(),
            **self.team_filter(),
        )


@dataclass
class Totals:
    requests: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost_nanos: int = 0  # priced records only; `unpriced` counts the others
    unpriced: int = 0
    errors: int = 0
    refused: int = 0
    cache_hits: int = 0

    def add(self, row: dict[str, Any]) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + int(row.get(f.name) or 0))

    def merge(self, other: Totals) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def cost(self) -> Decimal:
        return nanos_to_usd(self.cost_nanos) or Decimal(0)

    def _rate(self, part: int) -> Decimal | None:
        if not self.requests:
            return None
        return (Decimal(part) * 100 / self.requests).quantize(Decimal("0.1"))

    @property
    def error_rate(self) -> Decimal | None:
        return self._rate(self.errors)

    @property
    def cache_hit_rate(self) -> Decimal | None:
        return self._rate(self.cache_hits)


@dataclass
class Row:
    key: Any  # a GroupKey value: a date for the days
    label: str
    totals: Totals = field(default_factory=Totals)


def _sources(q: ReportQuery) -> list[tuple[bool, UsageRows, date]]:
    """(is_rollup, queryset, first day) parts that together cover the range exactly once:
    the rollup up to its watermark, raw rows from there (normally the last few minutes)."""
    dims = q.dimension_filter()
    start, end = day_start(q.first_day), day_start(q.last_day + timedelta(days=1))
    until = rolled_until() if q.team_id is None else None
    parts: list[tuple[bool, UsageRows, date]] = []
    raw_start = start
    if until is not None and until > start:
        last = min(q.last_day, local_day(until))
        rolled = UsageDaily.objects.filter(day__gte=q.first_day, day__lte=last, **dims)
        parts.append((True, rolled, q.first_day))
        raw_start = max(start, until)
    if raw_start < end:
        raw = UsageRecord.objects.filter(
            created_at__gte=raw_start, created_at__lt=end, **dims, **q.team_filter()
        )
        parts.append((False, raw, local_day(raw_start)))
    return parts


# The breakdown dimensions: one grouped query by all three serves the totals and all
# three tables (folded in Python over at most providers x models x users group rows).
GROUPS = ("provider_id", "model", "user_id")


# Raw days not yet rolled up (normally just today) are grouped by day with one range
# query each, which uses the created_at index; a per-row TruncDate cannot (and on SQLite
# it is a Python function call per row). Beyond this many days, TruncDate it is.
RAW_DAY_QUERIES = 7


def _raw_by_day(
    qs: UsageRows, first: date, last: date, rest: tuple[str, ...], metrics: dict[str, Aggregate]
) -> Iterator[dict[str, Any]]:
    day = first
    while day <= last:
        part = qs.filter(
            created_at__gte=day_start(day), created_at__lt=day_start(day + timedelta(days=1))
        )
        if rest:
            rows = part.values(*rest).annotate(**metrics).order_by()
        else:
            rows = [part.aggregate(**metrics)]
        yield from ({**row, "day": day} for row in rows)
        day += timedelta(days=1)


def _aggregate_part(
    is_rollup: bool, qs: UsageRows, first: date, last: date, group: tuple[str, ...]
) -> dict[GroupKey, Totals]:
    metrics = rollup_metrics() if is_rollup else raw_metrics()
    by_raw_day = "day" in group and not is_rollup
    rows: Iterable[dict[str, Any]]
    if by_raw_day and (last - first).days < RAW_DAY_QUERIES:
        rest = tuple(g for g in group if g != "day")
        rows = _raw_by_day(qs, first, last, rest, metrics)
    elif not group:
        rows = [qs.aggregate(**metrics)]
    else:
        if by_raw_day:
            tz = timezone.get_current_timezone()
            qs = qs.annotate(day=TruncDate("created_at", tzinfo=tz))
        rows = qs.values(*group).annotate(**metrics).order_by()
    out: dict[GroupKey, Totals] = {}
    for row in map(unprefixed, rows):
        out.setdefault(tuple(row[g] for g in group), Totals()).add(row)
    return out


def _merge(parts: list[dict[GroupKey, Totals]]) -> dict[GroupKey, Totals]:
    out: dict[GroupKey, Totals] = {}
    for part in parts:
        for key, t in part.items():
            out.setdefault(key, Totals()).merge(t)
    return out


def aggregate(q: ReportQuery, group: tuple[str, ...] = ()) -> dict[GroupKey, Totals]:
    """Totals per combination of `group` fields (GROUPS and/or "day"); () = overall."""
    return _merge(
        [_aggregate_part(r, qs, first, q.last_day, group) for r, qs, first in _sources(q)]
    )


def totals(q: ReportQuery) -> Totals:
    return aggregate(q).get((), Totals())


def _sum(items: Iterable[Totals]) -> Totals:
    out = Totals()
    for t in items:
        out.merge(t)
    return out


def daily(q: ReportQuery) -> list[Row]:
    """One row per local day in range, zero-filled."""
    return _zero_filled(q, aggregate(q, ("day",)))


def _zero_filled(q: ReportQuery, per_day: dict[GroupKey, Totals]) -> list[Row]:
    rows, day = [], q.first_day
    while day <= q.last_day:
        rows.append(Row(day, day.isoformat(), per_day.get((day,), Totals())))
        day += timedelta(days=1)
    return rows


SORT_KEYS: dict[str, Callable[[Row], str | int | Decimal]] = {
    "label": lambda r: r.label.lower(),
    "requests": lambda r: r.totals.requests,
    "input": lambda r: r.totals.input_tokens,
    "output": lambda r: r.totals.output_tokens,
    "cost": lambda r: r.totals.cost_nanos,
    "errors": lambda r: r.totals.error_rate or 0,
    "cache": lambda r: r.totals.cache_hit_rate or 0,
}
DEFAULT_SORT = "-cost"


def _labels(group: str, keys: list[Any]) -> dict[Any, str]:
    if group == "provider_id":
        return dict(Provider.objects.filter(pk__in=keys).values_list("pk", "name"))
    if group == "user_id":
        user_model = get_user_model()
        names = user_model.objects.filter(pk__in=[k for k in keys if k is not None])
        return {**dict(names.values_list("pk", user_model.USERNAME_FIELD)), None: "(no user)"}
    return {k: str(k) for k in keys}


@dataclass
class Report:
    query: ReportQuery
    combos: dict[GroupKey, Totals]  # keyed by GROUPS values
    # The raw-row part of the combos and its first day, when the range has one.
    raw_part: tuple[date, dict[GroupKey, Totals]] | None = None

    def days(self) -> list[Row]:
        """Like `daily`, but a one-day raw tail (today) is summed from the combos
        already fetched rather than read again."""
        parts = []
        for is_rollup, qs, first in _sources(self.query):
            if not is_rollup and self.raw_part and first == self.query.last_day:
                parts.append({(first,): _sum(self.raw_part[1].values())})
            else:
                parts.append(_aggregate_part(is_rollup, qs, first, self.query.last_day, ("day",)))
        return _zero_filled(self.query, _merge(parts))

    @property
    def totals(self) -> Totals:
        return _sum(self.combos.values())

    def breakdown(self, group: str, sort: str = DEFAULT_SORT) -> list[Row]:
        at = GROUPS.index(group)
        per_key: dict[Any, Totals] = {}
        for key, t in self.combos.items():
            per_key.setdefault(key[at], Totals()).merge(t)
        labels = _labels(group, list(per_key))
        return sorted_rows([Row(k, labels.get(k, str(k)), t) for k, t in per_key.items()], sort)


def sorted_rows(rows: list[Row], sort: str = DEFAULT_SORT) -> list[Row]:
    """A breakdown's rows in the order a column header asks for ("-cost": dearest first)."""
    name = sort.lstrip("-")
    if name not in SORT_KEYS:
        name, sort = DEFAULT_SORT.lstrip("-"), DEFAULT_SORT
    rows.sort(key=lambda r: r.label.lower())  # stable tie-break
    rows.sort(key=SORT_KEYS[name], reverse=sort.startswith("-"))
    return rows


def build(q: ReportQuery) -> Report:
    parts, raw_part = [], None
    for is_rollup, qs, first in _sources(q):
        part = _aggregate_part(is_rollup, qs, first, q.last_day, GROUPS)
        parts.append(part)
        if not is_rollup:
            raw_part = (first, part)
    return Report(q, _merge(parts), raw_part)
