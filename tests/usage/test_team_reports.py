"""The report's by-team table and team filter (page and CSV), against march_usage."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest
from django.contrib.auth.models import Group

from usage import rollup
from usage.models import TeamBudget, UsageRecord, UsageRecordTeam
from usage.reports import ReportQuery, build
from usage.team_reports import by_team

pytestmark = pytest.mark.django_db
MARCH = ReportQuery(first_day=date(2026, 3, 1), last_day=date(2026, 3, 4))
REPORT = "/admin/usage/usagerecord/report/"
RANGE = {"range": "custom", "start": "2026-03-01", "end": "2026-03-04"}


@pytest.fixture
def teams(march_usage, user):
    """Sales counted alice's and bob's calls, Support bob's (bob was in both); the
    record without a user is in no team. Alice has since left Sales: history stays."""
    sales = Group.objects.create(name="Sales")
    support = Group.objects.create(name="Support")
    TeamBudget.objects.create(group=sales)
    TeamBudget.objects.create(group=support)
    bob = march_usage["bob"]
    for record in UsageRecord.objects.filter(user=user):
        UsageRecordTeam.objects.create(record=record, team=sales)
    for record in UsageRecord.objects.filter(user=bob):
        UsageRecordTeam.objects.create(record=record, team=sales)
        UsageRecordTeam.objects.create(record=record, team=support)
    return {"sales": sales, "support": support}


@pytest.fixture(params=["raw", "rollup"])
def mode(request):
    if request.param == "rollup":
        return lambda: rollup.refresh(now=datetime(2026, 3, 10, 12, tzinfo=UTC))
    return lambda: None


def _row(rows):
    return {r.label: (r.totals.requests, r.totals.cost_nanos, r.totals.unpriced) for r in rows}


def test_by_team_counts_each_call_for_its_teams(teams, mode):
    mode()
    assert _row(by_team(MARCH)) == {
        "Sales": (5, 14_600_000, 0),  # alice 13.1M + bob 1.5M nanos
        "Support": (2, 1_500_000, 0),
        "(no team)": (1, 0, 1),
    }
    assert [r.label for r in by_team(MARCH, "label")] == ["(no team)", "Sales", "Support"]


def test_the_team_filter_narrows_every_figure(teams, mode, user):
    mode()  # the rollup has no teams: a team-filtered report reads raw rows, exactly
    report = build(ReportQuery(MARCH.first_day, MARCH.last_day, team_id=teams["support"].pk))
    assert (report.totals.requests, report.totals.cost_nanos) == (2, 1_500_000)
    assert [r.label for r in report.breakdown("user_id")] == ["bob"]
    sales = ReportQuery(MARCH.first_day, MARCH.last_day, team_id=teams["sales"].pk)
    assert build(sales).totals.cost_nanos == 14_600_000
    assert _row(by_team(sales)) == {"Sales": (5, 14_600_000, 0)}
    days = {r.key: r.totals.requests for r in build(sales).days()}
    assert days[date(2026, 3, 2)] == 3
    assert days[date(2026, 3, 3)] == 2


def _csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.reader(io.StringIO(body.decode())))


def test_the_page_shows_the_team_table_and_filter(admin_client, teams):
    page = admin_client.get(REPORT, RANGE)
    html = page.content.decode()
    assert 'id="by-team"' in html
    assert '<select name="team"' in html
    assert ">Sales</option>" in html
    [table] = [t for t in page.context["tables"] if t["name"] == "team"]
    assert [(r.label, r.totals.cost_nanos) for r in table["rows"]] == [
        ("Sales", 14_600_000),
        ("Support", 1_500_000),
        ("(no team)", 0),
    ]
    filtered = admin_client.get(REPORT, {**RANGE, "team": teams["support"].pk})
    assert 'data-kpi="requests" title="2"' in filtered.content.decode()


def test_the_team_csv_matches_the_page(admin_client, teams):
    rows = _csv(admin_client.get(REPORT, {**RANGE, "export": "team"}))
    assert rows[0][:2] == ["team", "requests"]
    assert {r[0]: (r[1], r[8]) for r in rows[1:]} == {
        "Sales": ("5", "0.0146"),
        "Support": ("2", "0.0015"),
        "(no team)": ("1", "0"),
    }
    records = _csv(
        admin_client.get(REPORT, {**RANGE, "export": "records", "team": teams["support"].pk})
    )
    assert [r[3] for r in records[1:]] == ["bob", "bob"]


def test_no_team_no_team_table(admin_client, march_usage):
    html = admin_client.get(REPORT, RANGE).content.decode()
    assert 'id="by-team"' not in html
