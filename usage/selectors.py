"""Read-side helpers for other apps: a message's tokens and cost, a user's month."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db.models import Count, Q, Sum

from usage.budgets import month_bounds, monthly_limit, remaining_budget
from usage.models import UsageRecord, nanos_to_usd

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@dataclass(frozen=True)
class MessageUsage:
    input_tokens: int
    output_tokens: int
    cost: Decimal | None  # None when any attempt was unpriced (unknown, not $0)
    estimated: bool


def usage_for_messages(*, message_ids: Iterable[int]) -> dict[int, MessageUsage]:
    """Every attempt of each message summed, in one query (for the chat's bubbles)."""
    rows = (
        UsageRecord.objects.filter(message_id__in=list(message_ids))
        .values("message_id")
        .annotate(
            inp=Sum("input_tokens"),
            out=Sum("output_tokens"),
            nanos=Sum("cost_nanos"),  # not "cost": UsageRecord has a cost property
            unpriced=Count("id", filter=Q(cost_nanos__isnull=True)),
            estimated=Count("id", filter=Q(tokens_estimated=True)),
        )
        .order_by()
    )
    return {
        r["message_id"]: MessageUsage(
            input_tokens=r["inp"] or 0,
            output_tokens=r["out"] or 0,
            cost=None if r["unpriced"] else nanos_to_usd(r["nanos"] or 0),
            estimated=bool(r["estimated"]),
        )
        for r in rows
    }


@dataclass(frozen=True)
class ModelMonth:
    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost: Decimal
    unpriced: int


def month_by_model(*, user: User) -> list[ModelMonth]:
    start, end = month_bounds()
    rows = (
        UsageRecord.objects.filter(user_id=user.pk, created_at__gte=start, created_at__lt=end)
        .values("model")
        .annotate(
            n=Count("id"),
            inp=Sum("input_tokens"),
            out=Sum("output_tokens"),
            nanos=Sum("cost_nanos"),  # not "cost": UsageRecord has a cost property
            unpriced=Count("id", filter=Q(cost_nanos__isnull=True)),
        )
        .order_by("-nanos", "model")
    )
    return [
        ModelMonth(
            r["model"],
            r["n"],
            r["inp"] or 0,
            r["out"] or 0,
            nanos_to_usd(r["nanos"] or 0),
            r["unpriced"],
        )
        for r in rows
    ]


__all__ = [
    "MessageUsage",
    "ModelMonth",
    "month_by_model",
    "monthly_limit",
    "remaining_budget",
    "usage_for_messages",
]
