"""reprice (dry run vs real) and generate_usage."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from providers.adapters.base import Usage
from tests.usage.factories import make_record
from usage import rollup
from usage.models import ModelPrice, UsageDaily, UsageRecord
from usage.pricing import PriceSnapshot, cost_nanos, find_price
from usage.reports import ReportQuery, build

pytestmark = pytest.mark.django_db
MAR = datetime(2026, 3, 2, 12, tzinfo=UTC)


def _run(*args: str) -> str:
    out = StringIO()
    call_command("reprice", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def priced(openai):
    # Costed at the seeded $2.50 / $10: 1000 in + 1000 out = $0.0125 each.
    records = [
        make_record(
            openai, "gpt-4o", MAR, input_tokens=1000, output_tokens=1000, cost_nanos=12_500_000
        )
        for _ in range(2)
    ]
    cached = make_record(
        openai, "gpt-4o", MAR, input_tokens=1000, output_tokens=1000, cost_nanos=0, cache_hit=True
    )
    other_day = make_record(
        openai, "gpt-4o", datetime(2026, 3, 9, tzinfo=UTC), input_tokens=1000, cost_nanos=2_500_000
    )
    ModelPrice.objects.create(
        provider_kind="openai",
        model="gpt-4o",
        match="prefix",
        input_per_mtok="1.000",
        output_per_mtok="4.000",
        cached_input_per_mtok="0.500",
        valid_from=datetime(2026, 3, 1, tzinfo=UTC),
    )
    return records, cached, other_day


def test_dry_run_shows_old_and_new_totals_and_changes_nothing(priced):
    out = _run("--from", "2026-03-01", "--to", "2026-03-03", "--dry-run")
    assert "0.025" in out  # old: 2 x $0.0125
    assert "0.01" in out  # new: 2 x (1000 x 1 + 1000 x 4) / 1e6 = $0.01
    assert "Dry run" in out
    assert "-0.015" in out
    assert UsageRecord.objects.filter(cost_nanos=12_500_000).count() == 2


def test_reprice_recosts_only_the_range_and_keeps_cache_hits_free(priced):
    records, cached, other_day = priced
    rollup.refresh(now=datetime(2026, 3, 20, tzinfo=UTC))
    _run("--from", "2026-03-01", "--to", "2026-03-03")
    for r in records:
        r.refresh_from_db()
        assert r.cost_nanos == 5_000_000
        assert r.price_snapshot["input"] == "1.000"
    cached.refresh_from_db()
    other_day.refresh_from_db()
    assert cached.cost_nanos == 0
    assert other_day.cost_nanos == 2_500_000
    # The rollup of the repriced day was rebuilt, so the report still equals raw rows.
    day = UsageDaily.objects.get(day=MAR.date())
    assert day.cost_nanos == 10_000_000
    q = ReportQuery(MAR.date(), MAR.date())
    assert build(q).totals.cost_nanos == 10_000_000


def test_reprice_to_unpriced_makes_cost_unknown(make_provider):
    local = make_provider("Local", "openai_compatible")
    rec = make_record(local, "llama3", MAR, input_tokens=5, cost_nanos=7)
    _run("--from", "2026-03-02", "--to", "2026-03-02")
    rec.refresh_from_db()
    assert rec.cost_nanos is None


def test_repricing_sql_equals_python_pricing(openai):
    usage = Usage(
        input_tokens=123_457, output_tokens=98_765, cached_input_tokens=23_456, cache_write_tokens=0
    )
    rec = make_record(
        openai,
        "gpt-4.1-nano",
        MAR,
        input_tokens=123_457,
        output_tokens=98_765,
        cached_input_tokens=23_456,
        cost_nanos=None,
    )
    _run("--from", "2026-03-02", "--to", "2026-03-02")
    rec.refresh_from_db()
    price = find_price(provider_kind="openai", model="gpt-4.1-nano", at=MAR)
    assert rec.cost_nanos == cost_nanos(usage, PriceSnapshot.from_price(price))


def test_generate_usage_is_priced_like_record_generation(db):
    out = StringIO()
    call_command("generate_usage", "--records", "400", "--days", "5", "--users", "3", stdout=out)
    assert "Generated 400" in out.getvalue()
    assert UsageRecord.objects.count() == 400
    for r in UsageRecord.objects.filter(cache_hit=False, cost_nanos__gt=0)[:50]:
        usage = Usage(
            input_tokens=r.input_tokens,
            output_tokens=r.output_tokens,
            cached_input_tokens=r.cached_input_tokens,
        )
        price = find_price(provider_kind=r.provider.kind, model=r.model, at=r.created_at)
        assert r.cost_nanos == cost_nanos(usage, PriceSnapshot.from_price(price))
    assert rollup.complete_through() is not None
    assert sum(UsageDaily.objects.values_list("requests", flat=True)) <= 400
    assert Decimal(0) <= build(ReportQuery(MAR.date(), MAR.date())).totals.cost


def test_rebuild_usage_rollup(openai):
    make_record(openai, "gpt-4o", MAR, cost_nanos=3)
    out = StringIO()
    call_command("rebuild_usage_rollup", stdout=out)
    assert "complete through" in out.getvalue()
    assert UsageDaily.objects.get(day=MAR.date()).cost_nanos == 3
