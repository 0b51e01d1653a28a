"""Each provider's health over a recent span, from the usage records: upstream attempts,
error rate by kind, and time to first token p50/p95 (for the provider admin).

A constant number of queries for any number of providers: one grouped count, and one
query per percentile ranking the TTFTs per provider in the database (a window function),
so no TTFT list reaches Python whatever the traffic.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, F, QuerySet, Window
from django.db.models.functions import RowNumber

from providers.errors import ErrorKind
from usage.models import OUTCOME_OK, OUTCOME_OVER_BUDGET, UsageRecord

PERCENTILES = (50, 95)


@dataclass(frozen=True)
class ErrorShare:
    kind: str
    label: str
    count: int
    rate: Decimal  # percent of the attempts


@dataclass
class ProviderHealth:
    attempts: int = 0  # upstream attempts: cache hits and budget refusals left out
    failures: dict[str, int] = field(default_factory=dict)  # by error kind
    ttft_ms: dict[int, int] = field(default_factory=dict)  # percentile -> milliseconds

    @property
    def errors(self) -> int:
        return sum(self.failures.values())

    @property
    def error_rate(self) -> Decimal | None:
        return _percent(self.errors, self.attempts)

    def by_kind(self) -> list[ErrorShare]:
        """Error kinds, most frequent first."""
        labels = dict(ErrorKind.choices)
        return [
            ErrorShare(
                kind, str(labels.get(kind, kind)), n, _percent(n, self.attempts) or Decimal(0)
            )
            for kind, n in sorted(self.failures.items(), key=lambda item: (-item[1], item[0]))
        ]

    @property
    def ttft_p50(self) -> int | None:
        return self.ttft_ms.get(50)

    @property
    def ttft_p95(self) -> int | None:
        return self.ttft_ms.get(95)


def _percent(part: int, whole: int) -> Decimal | None:
    return (Decimal(part) * 100 / whole).quantize(Decimal("0.1")) if whole else None


def _attempts(ids: list[uuid.UUID], since: datetime) -> QuerySet[UsageRecord]:
    return (
        UsageRecord.objects.filter(provider_id__in=ids, created_at__gte=since, cache_hit=False)
        .exclude(outcome=OUTCOME_OVER_BUDGET)
        .order_by()
    )


def _percentile(ids: list[uuid.UUID], since: datetime, pct: int) -> dict[uuid.UUID, int]:
    """Nearest-rank percentile of ttft_ms per provider: the value at rank ceil(pct% of n)."""
    ranked = (
        _attempts(ids, since)
        .filter(ttft_ms__isnull=False)
        .annotate(
            rank=Window(
                RowNumber(), partition_by=[F("provider_id")], order_by=[F("ttft_ms").asc()]
            ),
            n=Window(Count("id"), partition_by=[F("provider_id")]),
        )
    )
    # rank = ceil(n * pct / 100) <=> rank * 100 >= n * pct > (rank - 1) * 100
    picked = ranked.filter(rank__gte=F("n") * pct / 100.0, rank__lt=F("n") * pct / 100.0 + 1)
    rows = picked.values_list("provider_id", "ttft_ms")
    return {pk: ttft for pk, ttft in rows if ttft is not None}


def provider_health(
    *, provider_ids: Iterable[uuid.UUID], since: datetime
) -> dict[uuid.UUID, ProviderHealth]:
    """Health since `since` for each of `provider_ids` (an empty one for no traffic)."""
    ids = list(provider_ids)
    out = {pk: ProviderHealth() for pk in ids}
    if not ids:
        return out
    counts = _attempts(ids, since).values("provider_id", "outcome").annotate(n=Count("id"))
    for row in counts:
        health = out[row["provider_id"]]
        health.attempts += row["n"]
        if row["outcome"] != OUTCOME_OK:
            health.failures[row["outcome"]] = row["n"]
    for pct in PERCENTILES:
        for pk, value in _percentile(ids, since, pct).items():
            out[pk].ttft_ms[pct] = value
    return out
