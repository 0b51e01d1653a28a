"""Re-cost a range of records on purpose (`manage.py reprice`), in the database.

Records are grouped by (provider kind, model) and cut at every `valid_from` of a price
that could apply, so each segment has one price; that segment is then re-costed by one
UPDATE with integer arithmetic (a price with 3 decimals per million tokens is a whole
number of nano-dollars per token), the same result `pricing.cost_nanos` gives.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import BigIntegerField, Count, ExpressionWrapper, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Cast, Greatest

from usage import rollup
from usage.models import OUTCOME_OVER_BUDGET, ModelPrice, UsageRecord
from usage.pricing import PriceSnapshot, find_price


@dataclass
class RepriceLine:
    provider_kind: str
    model: str
    records: int
    old_nanos: int
    new_nanos: int
    old_unpriced: int
    new_unpriced: int


def _big(name: str) -> Cast:
    # Cast first: on PostgreSQL integer * integer overflows past 2^31 nano-dollars.
    return Cast(F(name), BigIntegerField())


def cost_expression(snapshot: PriceSnapshot) -> object:
    def per_token(price: Decimal) -> Value:
        return Value(int(price * 1000), output_field=BigIntegerField())

    uncached = Greatest(
        _big("input_tokens") - _big("cached_input_tokens") - _big("cache_write_tokens"),
        Value(0, output_field=BigIntegerField()),
    )
    return ExpressionWrapper(
        uncached * per_token(snapshot.input)
        + _big("cached_input_tokens") * per_token(snapshot.cached_input)
        + _big("cache_write_tokens") * per_token(snapshot.cache_write)
        + _big("output_tokens") * per_token(snapshot.output),
        output_field=BigIntegerField(),
    )


def _segments(
    kind: str, model: str, start: datetime, end: datetime
) -> list[tuple[datetime, datetime, PriceSnapshot | None]]:
    """[(seg_start, seg_end, snapshot or None)] covering [start, end)."""
    cuts = sorted(
        {
            p.valid_from
            for p in ModelPrice.objects.filter(
                provider_kind=kind, valid_from__gt=start, valid_from__lt=end
            )
            if model.startswith(p.model)
        }
    )
    edges = [start, *cuts, end]
    out = []
    for lo, hi in itertools.pairwise(edges):
        price = find_price(provider_kind=kind, model=model, at=lo)
        out.append((lo, hi, PriceSnapshot.from_price(price) if price else None))
    return out


def reprice(*, start: datetime, end: datetime, dry_run: bool) -> list[RepriceLine]:
    """Re-cost billable records with start <= created_at < end; report old vs new totals."""
    billable = UsageRecord.objects.filter(
        created_at__gte=start, created_at__lt=end, cache_hit=False
    ).exclude(outcome=OUTCOME_OVER_BUDGET)
    pairs = billable.values_list("provider__kind", "model").distinct().order_by()
    lines = []
    with transaction.atomic():
        for kind, model in sorted(pairs):
            line = RepriceLine(kind, model, 0, 0, 0, 0, 0)
            for lo, hi, snap in _segments(kind, model, start, end):
                seg: QuerySet[UsageRecord] = billable.filter(
                    provider__kind=kind, model=model, created_at__gte=lo, created_at__lt=hi
                )
                before = seg.aggregate(
                    n=Count("id"),
                    s=Sum("cost_nanos"),
                    u=Count("id", filter=Q(cost_nanos__isnull=True)),
                )
                if not before["n"]:
                    continue
                line.records += before["n"]
                line.old_nanos += before["s"] or 0
                line.old_unpriced += before["u"] or 0
                if snap is None:
                    line.new_unpriced += before["n"]
                    if not dry_run:
                        seg.update(cost_nanos=None, price_snapshot=None)
                    continue
                expr = cost_expression(snap)
                line.new_nanos += seg.aggregate(s=Sum(expr))["s"] or 0
                if not dry_run:
                    seg.update(cost_nanos=expr, price_snapshot=snap.as_json())
            lines.append(line)
        if not dry_run:
            rollup.touch_range(start, end)
    return lines
