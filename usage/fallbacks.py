"""The report's fallback counts: how many calls routed through an alias needed a fallback,
per alias and per target (which target failed, which answered).

Read from the raw records' `routing_step`, written with each routed call's attempts
(`usage.services`), so no grouping by call is needed: two grouped queries over the routed
records in range (a partial index holds only those).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Q, QuerySet

from usage.models import OUTCOME_OK, RoutingStep, UsageRecord
from usage.reports import ReportQuery

_LAST_STEPS = [RoutingStep.LAST, RoutingStep.LAST_AFTER_FALLBACK]
_AFTER = Q(routing_step=RoutingStep.LAST_AFTER_FALLBACK)


def _percent(part: int, whole: int) -> Decimal | None:
    return (Decimal(part) * 100 / whole).quantize(Decimal("0.1")) if whole else None


@dataclass
class AliasFallbacks:
    alias: str
    calls: int = 0  # routed calls (each call's last attempt)
    fell_back: int = 0  # calls that needed at least one fallback
    answered_after: int = 0  # of those, answered by a later target

    @property
    def fallback_rate(self) -> Decimal | None:
        return _percent(self.fell_back, self.calls)


@dataclass
class TargetFallbacks:
    provider_id: uuid.UUID
    provider_name: str
    model: str
    failed_over: int = 0  # attempts that failed here and sent the call to the next target
    answered_after: int = 0  # calls it answered after another target had failed
    failed_after: int = 0  # calls that reached it after a fallback and failed here too

    @property
    def label(self) -> str:
        return f"{self.provider_name}/{self.model}"


@dataclass
class FallbackReport:
    by_alias: list[AliasFallbacks] = field(default_factory=list)
    by_target: list[TargetFallbacks] = field(default_factory=list)

    @property
    def totals(self) -> AliasFallbacks:
        out = AliasFallbacks(alias="")
        for row in self.by_alias:
            out.calls += row.calls
            out.fell_back += row.fell_back
            out.answered_after += row.answered_after
        return out


def _routed(q: ReportQuery) -> QuerySet[UsageRecord]:
    # exclude(routing_step="") is the partial index's own condition, so the database uses it.
    return q.raw_records().exclude(routing_step=RoutingStep.NONE).order_by()


def fallback_report(q: ReportQuery) -> FallbackReport:
    ok = Q(outcome=OUTCOME_OK)
    aliases = (
        _routed(q)
        .filter(routing_step__in=_LAST_STEPS)
        .values("alias")
        .annotate(
            calls=Count("id"),
            fell_back=Count("id", filter=_AFTER),
            answered_after=Count("id", filter=_AFTER & ok),
        )
    )
    targets = (
        _routed(q)
        .filter(routing_step__in=[RoutingStep.FELL_BACK, RoutingStep.LAST_AFTER_FALLBACK])
        .values("provider_id", "provider__name", "model")
        .annotate(
            failed_over=Count("id", filter=Q(routing_step=RoutingStep.FELL_BACK)),
            answered_after=Count("id", filter=_AFTER & ok),
            failed_after=Count("id", filter=_AFTER & ~ok),
        )
    )
    by_alias = [
        AliasFallbacks(r["alias"], r["calls"], r["fell_back"], r["answered_after"]) for r in aliases
    ]
    by_target = [
        TargetFallbacks(
            r["provider_id"],
            r["provider__name"],
            r["model"],
            r["failed_over"],
            r["answered_after"],
            r["failed_after"],
        )
        for r in targets
    ]
    by_alias.sort(key=lambda r: (-r.fell_back, -r.calls, r.alias))
    by_target.sort(key=lambda r: (-r.failed_over, -r.answered_after, r.label.lower()))
    return FallbackReport(by_alias, by_target)
