"""The admin report page, its CSVs, access control, and the user's own page."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from tests.usage.factories import make_record
from usage.reports import ReportQuery, build

pytestmark = pytest.mark.django_db
REPORT = "/admin/usage/usagerecord/report/"
RANGE = {"range": "custom", "start": "2026-03-01", "end": "2026-03-04"}


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


def _csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.reader(io.StringIO(body.decode())))


def test_report_url_is_an_admin_url():
    assert reverse("admin:usage_usagerecord_report") == REPORT


def test_report_renders_totals_chart_and_tables(staff_client, march_usage):
    response = staff_client.get(REPORT, RANGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<svg class="usage-chart"' in html
    assert html.count('<rect class="bar"') == 4  # one bar per day in range
    assert "$0.0146" in html  # total cost, also the exact figure in the title
    assert 'data-kpi="requests" title="6"' in html
    assert "Unpriced" in html
    assert "llama3" in html
    for table in ("by-provider", "by-model", "by-user"):
        assert f'id="{table}"' in html


def test_breakdown_csv_matches_the_page(staff_client, march_usage):
    page = staff_client.get(REPORT, RANGE)
    html = page.content.decode()
    rows = _csv(staff_client.get(REPORT, {**RANGE, "export": "model"}))
    assert rows[0][:2] == ["model", "requests"]
    shown = {r.label: r for t in page.context["tables"] if t["name"] == "model" for r in t["rows"]}
    assert [r[0] for r in rows[1:]] == list(shown)  # same rows, same order
    for line in rows[1:]:
        t = shown[line[0]].totals
        assert int(line[1]) == t.requests
        assert line[8] == format(t.cost.normalize(), "f")
        assert f"${t.cost.quantize(t.cost.__class__('0.0001'))}" in html
    by_user = _csv(staff_client.get(REPORT, {**RANGE, "export": "user"}))
    assert {r[0]: r[8] for r in by_user[1:]} == {
        "alice": "0.0131",
        "bob": "0.0015",
        "(no user)": "0",
    }
    by_day = _csv(staff_client.get(REPORT, {**RANGE, "export": "day"}))
    assert [r[0] for r in by_day[1:]] == ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]


def test_records_csv_has_the_filtered_records(staff_client, march_usage):
    rows = _csv(staff_client.get(REPORT, {**RANGE, "export": "records", "source": "api"}))
    header, lines = rows[0], rows[1:]
    assert len(lines) == 3
    cost = header.index("cost_usd")
    assert sorted(line[cost] for line in lines) == ["", "0", "0.0015"]  # "" = unknown
    assert sum(1 for line in lines if line[header.index("user_username")] == "bob") == 2


def test_sorting_a_breakdown(staff_client, march_usage):
    response = staff_client.get(REPORT, {**RANGE, "sort_user": "label"})
    users = [r.label for t in response.context["tables"] if t["name"] == "user" for r in t["rows"]]
    assert users == ["(no user)", "alice", "bob"]
    response = staff_client.get(REPORT, {**RANGE, "sort_user": "-requests"})
    users = [r.label for t in response.context["tables"] if t["name"] == "user" for r in t["rows"]]
    assert users == ["alice", "bob", "(no user)"]


def test_filters_through_the_page(staff_client, march_usage, anthropic):
    response = staff_client.get(REPORT, {**RANGE, "provider": str(anthropic.pk)})
    assert response.context["totals"].requests == 2


def test_anonymous_and_non_staff_are_sent_to_login(client, django_user_model):
    assert client.get(REPORT).status_code == 302
    user = django_user_model.objects.create_user("eve", password="pw-eve-123")
    client.force_login(user)
    response = client.get(REPORT, {"export": "records"})
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_staff_without_view_permission_gets_403(client, django_user_model):
    staff = django_user_model.objects.create_user("sam", password="pw-sam-123", is_staff=True)
    client.force_login(staff)
    assert client.get(REPORT).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_usagerecord"))
    assert client.get(REPORT).status_code == 200


def test_change_list_is_read_only_with_currency(staff_client, march_usage):
    response = staff_client.get("/admin/usage/usagerecord/", {"model": "gpt-4o"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "$0.007500 USD" in html
    assert "Usage report" in html
    assert staff_client.get("/admin/usage/usagerecord/add/").status_code == 403


def test_my_usage_shows_only_my_month(client, openai, user, django_user_model):
    from django.utils import timezone

    bob = django_user_model.objects.create_user("bob", password="pw-bob-123")
    now = timezone.now()
    make_record(openai, "gpt-4o", now, user=user, input_tokens=10, cost_nanos=1_230_000)
    make_record(openai, "gpt-4.1", now, user=bob, input_tokens=99, cost_nanos=9_990_000)
    make_record(openai, "gpt-4o", datetime(2020, 1, 1, tzinfo=UTC), user=user, cost_nanos=5)
    assert client.get("/usage/").status_code == 302
    client.force_login(user)
    response = client.get("/usage/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "$0.00" in html
    assert "$0.001230000" in html  # the exact figure, in the title
    assert "gpt-4.1" not in html
    assert [r.model for r in response.context["rows"]] == ["gpt-4o"]
    month = ReportQuery(timezone.localdate().replace(day=1), timezone.localdate(), user_id=user.pk)
    assert response.context["spent"] == build(month).totals.cost


def test_usage_app_index_links_the_report(staff_client):
    html = staff_client.get("/admin/usage/").content.decode()
    assert REPORT in html


def test_a_link_without_a_range_shows_the_default_preset(staff_client):
    html = staff_client.get(REPORT, {"sort_user": "label"}).content.decode()
    assert '<option value="30d" selected>' in html


def test_budget_and_price_admin_pages_render(staff_client, user):
    for url in (
        "/admin/usage/userbudget/add/",
        "/admin/usage/budgetdefault/add/",
        "/admin/usage/modelprice/",
        "/admin/usage/reservation/",
    ):
        assert staff_client.get(url).status_code == 200, url
    response = staff_client.post("/admin/usage/budgetdefault/add/", {"monthly_limit": "12.50"})
    assert response.status_code == 302
    from usage.budgets import monthly_limit

    assert str(monthly_limit(user=user)) == "12.50"
    assert staff_client.get("/admin/usage/budgetdefault/add/").status_code == 403  # one row
