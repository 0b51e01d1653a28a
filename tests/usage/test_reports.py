"""Report numbers against a hand-computed march_usage, raw rows and rollup alike."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.test import override_settings

from tests.usage.factories import make_record
from usage import rollup
from usage.forms import ReportForm, preset_days
from usage.percentiles import percentiles
from usage.reports import ReportQuery, build, daily

pytestmark = pytest.mark.django_db
MARCH = ReportQuery(first_day=date(2026, 3, 1), last_day=date(2026, 3, 4))


@pytest.fixture(params=["raw", "rollup"])
def mode(request):
    if request.param == "rollup":
        # Roll up everything through Mar 9, as the periodic task would on Mar 10.
        return lambda: rollup.refresh(now=datetime(2026, 3, 10, 12, tzinfo=UTC))
    return lambda: None


def test_totals_match_hand_computed_fixture(march_usage, mode):
    mode()
    t = build(MARCH).totals
    assert (t.requests, t.input_tokens, t.output_tokens) == (6, 5250, 2650)
    assert t.cost_nanos == 14_600_000
    assert str(t.cost) == "0.0146"
    assert (t.unpriced, t.errors, t.cache_hits) == (1, 1, 1)
    assert str(t.error_rate) == "16.7"
    assert str(t.cache_hit_rate) == "16.7"


def test_breakdowns_match_fixture(march_usage, mode, user):
    mode()
    report = build(MARCH)
    by_provider = {
        r.label: (r.totals.requests, r.totals.cost_nanos, r.totals.unpriced)
        for r in report.breakdown("provider_id")
    }
    assert by_provider == {
        "OpenAI": (3, 9_000_000, 0),
        "Anthropic": (2, 5_600_000, 0),
        "Local": (1, 0, 1),
    }
    by_user = [
        (r.label, r.totals.requests, r.totals.cost_nanos) for r in report.breakdown("user_id")
    ]
    assert by_user == [("alice", 3, 13_100_000), ("bob", 2, 1_500_000), ("(no user)", 1, 0)]
    by_model = [r.label for r in report.breakdown("model", "label")]
    assert by_model == ["claude-3-5-haiku", "gpt-4o", "llama3"]
    days = {r.key: (r.totals.requests, r.totals.cost_nanos) for r in daily(MARCH)}
    assert days == {
        date(2026, 3, 1): (0, 0),
        date(2026, 3, 2): (3, 9_000_000),
        date(2026, 3, 3): (3, 5_600_000),
        date(2026, 3, 4): (0, 0),
    }


@pytest.mark.parametrize(
    ("filters", "requests", "cost"),
    [
        ({"model": "gpt-4o"}, 3, 9_000_000),
        ({"source": "api"}, 3, 1_500_000),
        ({"outcome": "rate_limit"}, 1, 0),
        ({"first_day": date(2026, 3, 3), "last_day": date(2026, 3, 3)}, 3, 5_600_000),
    ],
)
def test_filters_and_ranges(march_usage, mode, filters, requests, cost):
    mode()
    q = ReportQuery(**{"first_day": MARCH.first_day, "last_day": MARCH.last_day, **filters})
    t = build(q).totals
    assert (t.requests, t.cost_nanos) == (requests, cost)


def test_provider_and_user_filters(march_usage, mode, anthropic, user):
    mode()
    q = ReportQuery(MARCH.first_day, MARCH.last_day, provider_id=anthropic.pk)
    assert build(q).totals.requests == 2
    q = ReportQuery(MARCH.first_day, MARCH.last_day, user_id=user.pk)
    assert build(q).totals.cost_nanos == 13_100_000


@override_settings(TIME_ZONE="America/New_York")
@pytest.mark.parametrize("rolled", [False, True])
def test_days_are_local_days(openai, rolled):
    # 03:30 UTC on Mar 10 is 23:30 on Mar 9 in New York (EDT, UTC-4); 04:30 is Mar 10.
    make_record(openai, "gpt-4o", datetime(2026, 3, 10, 3, 30, tzinfo=UTC), cost_nanos=1)
    make_record(openai, "gpt-4o", datetime(2026, 3, 10, 4, 30, tzinfo=UTC), cost_nanos=2)
    if rolled:
        rollup.refresh(now=datetime(2026, 3, 12, tzinfo=UTC))
    q = ReportQuery(date(2026, 3, 9), date(2026, 3, 10))
    assert [(r.key.day, r.totals.cost_nanos) for r in daily(q)] == [(9, 1), (10, 2)]
    only_10th = ReportQuery(date(2026, 3, 10), date(2026, 3, 10))
    assert build(only_10th).totals.cost_nanos == 2


def test_rollup_only_covers_closed_days(openai):
    make_record(openai, "gpt-4o", datetime(2026, 3, 10, 23, 55, tzinfo=UTC), cost_nanos=5)
    # 00:05 on Mar 11 is within the grace period: Mar 10 is not closed yet.
    assert rollup.refresh(now=datetime(2026, 3, 11, 0, 5, tzinfo=UTC)) == date(2026, 3, 9)
    assert rollup.refresh(now=datetime(2026, 3, 11, 0, 15, tzinfo=UTC)) == date(2026, 3, 10)
    q = ReportQuery(date(2026, 3, 10), date(2026, 3, 11))
    assert build(q).totals.cost_nanos == 5


def test_rollup_equals_raw_on_synthetic_data(db):
    from usage.synthetic import generate

    now = datetime(2026, 3, 20, 15, tzinfo=UTC)
    generate(records=3000, days=12, users=6, now=now, seed=7)
    q = ReportQuery(date(2026, 3, 5), date(2026, 3, 20))
    raw = (build(q).combos, [(r.key, r.totals) for r in daily(q)])
    assert rollup.refresh(now=now) == date(2026, 3, 19)
    rolled = (build(q).combos, [(r.key, r.totals) for r in daily(q)])
    assert rolled == raw
    assert sum(t.requests for t in raw[0].values()) == 3000


def test_percentiles_nearest_rank(march_usage):
    p = percentiles(MARCH)
    # Upstream attempts only (the cache hit is excluded): ttft 100, 200, 300, 400.
    assert (p.ttft_p50, p.ttft_p95) == (200, 400)
    # latency 50, 1000, 2000, 3000, 4000
    assert (p.latency_p50, p.latency_p95) == (2000, 4000)
    assert p.sample_size == 5
    assert not p.sampled


def test_presets():
    today = date(2026, 3, 15)
    assert preset_days("today", today) == (today, today)
    assert preset_days("7d", today) == (date(2026, 3, 9), today)
    assert preset_days("30d", today) == (date(2026, 2, 14), today)
    assert preset_days("month", today) == (date(2026, 3, 1), today)


def test_custom_range_validation():
    form = ReportForm({"range": "custom", "start": "2026-03-05", "end": "2026-03-01"})
    assert not form.is_valid()
    ok = ReportForm({"range": "custom", "start": "2026-03-01", "end": "2026-03-05"})
    q = ok.to_query(today=date(2026, 3, 15))
    assert (q.first_day, q.last_day) == (date(2026, 3, 1), date(2026, 3, 5))


@pytest.mark.postgres
def test_report_on_postgres_matches_fixture(march_usage):
    # The same fixture under PostgreSQL (make test's second pass), raw then rolled up.
    assert build(MARCH).totals.cost_nanos == 14_600_000
    rollup.refresh(now=datetime(2026, 3, 10, 12, tzinfo=UTC))
    assert build(MARCH).totals.cost_nanos == 14_600_000


def test_one_day_raw_tail_is_summed_from_the_combos(march_usage, openai):
    make_record(openai, "gpt-4o", datetime(2026, 3, 4, 8, tzinfo=UTC), cost_nanos=11)
    expected = [(r.key, r.totals) for r in daily(MARCH)]
    rollup.refresh(now=datetime(2026, 3, 4, 12, tzinfo=UTC))  # through Mar 3; Mar 4 is raw
    report = build(MARCH)
    assert report.raw_part[0] == date(2026, 3, 4)
    assert [(r.key, r.totals) for r in report.days()] == expected
    assert [(r.key, r.totals) for r in daily(MARCH)] == expected


def test_rollup_built_under_another_time_zone_is_not_used(march_usage):
    rollup.refresh(now=datetime(2026, 3, 10, 12, tzinfo=UTC))
    with override_settings(TIME_ZONE="Asia/Tokyo"):
        assert rollup.complete_through() is None  # raw rows only until rebuilt
        assert build(MARCH).totals.requests == 6
        assert rollup.refresh(now=datetime(2026, 3, 10, 12, tzinfo=UTC)) == date(2026, 3, 9)
        # In Tokyo (UTC+9) the 10:00 UTC calls of Mar 2 fall on the evening of Mar 2.
        by_day = {r.key.day: r.totals.requests for r in daily(MARCH)}
        assert by_day == {1: 0, 2: 3, 3: 3, 4: 0}
        assert build(MARCH).totals.cost_nanos == 14_600_000


def test_csv_cells_cannot_be_formulas():
    from usage.exports import _cell

    assert _cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert _cell("gpt-4o") == "gpt-4o"
    assert _cell(None) == ""


def test_watermark_splits_the_current_day_between_rollup_and_raw(march_usage, openai):
    from usage.models import UsageDaily

    make_record(openai, "gpt-4o", datetime(2026, 3, 4, 8, tzinfo=UTC), cost_nanos=100)
    make_record(openai, "gpt-4o", datetime(2026, 3, 4, 11, 55, tzinfo=UTC), cost_nanos=20)
    expected = (build(MARCH).combos, [(r.key, r.totals) for r in daily(MARCH)])
    rollup.refresh(now=datetime(2026, 3, 4, 12, tzinfo=UTC))  # watermark 11:50
    assert rollup.rolled_until() == datetime(2026, 3, 4, 11, 50, tzinfo=UTC)
    assert (
        sum(UsageDaily.objects.filter(day=date(2026, 3, 4)).values_list("cost_nanos", flat=True))
        == 100
    )
    report = build(MARCH)
    assert (report.combos, [(r.key, r.totals) for r in report.days()]) == expected
    rollup.refresh(now=datetime(2026, 3, 4, 12, 10, tzinfo=UTC))  # now 12:00: both rolled
    assert (
        sum(UsageDaily.objects.filter(day=date(2026, 3, 4)).values_list("cost_nanos", flat=True))
        == 120
    )
    assert build(MARCH).combos == expected[0]
    assert [(r.key, r.totals) for r in daily(MARCH)] == expected[1]
