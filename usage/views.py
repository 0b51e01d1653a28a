"""The user's own usage page: this month's spend and tokens by model."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from usage.budgets import month_bounds, monthly_limit, remaining_budget
from usage.models import CURRENCY
from usage.selectors import month_by_model
from usage.teams import standings

if TYPE_CHECKING:
    from config.request_types import AuthenticatedHttpRequest


def _used_pct(spent: Decimal, limit: Decimal | None) -> int | None:
    if limit is None:
        return None
    return 100 if limit <= 0 else min(int(spent * 100 / limit), 100)


@login_required
def my_usage(request: AuthenticatedHttpRequest) -> HttpResponse:
    # Only ever the signed-in user's own rows: there is no user parameter to tamper with.
    rows = month_by_model(user=request.user)
    start, end = month_bounds()
    limit = monthly_limit(user=request.user)
    spent = sum((r.cost for r in rows), Decimal(0))
    context = {
        "rows": rows,
        "month_start": start,
        "spent": spent,
        "input_tokens": sum(r.input_tokens for r in rows),
        "output_tokens": sum(r.output_tokens for r in rows),
        "requests": sum(r.requests for r in rows),
        "unpriced": sum(r.unpriced for r in rows),
        "limit": limit,
        "remaining": remaining_budget(user=request.user),
        "used_pct": _used_pct(spent, limit),
        "currency": CURRENCY,
        "teams": standings(user=request.user, now=timezone.now(), start=start, end=end),
    }
    return render(request, "usage/my_usage.html", context)
