"""The provider admin's health over the last hour, against exact usage records."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from providers.adapters.base import Attempt
from providers.models import Provider
from routing import health
from routing.models import Alias, AliasTarget
from routing.plans import Target
from tests.routing.conftest import switchboard
from tests.usage.factories import make_record

pytestmark = pytest.mark.django_db
LIST = reverse("admin:providers_provider_changelist")


def _provider(name: str) -> Provider:
    return Provider.objects.create(name=name, kind="openai", default_model="fake-model")


@pytest.fixture
def busy():
    """Ten upstream attempts in the last hour (7 ok with TTFT 100..700 ms, 2 rate
    limited, 1 network error), and records the health must leave out."""
    provider = _provider("Busy")
    now = timezone.now()
    recent = now - timedelta(minutes=10)
    for ttft in range(100, 800, 100):
        make_record(provider, "fake-model", recent, ttft_ms=ttft)
    make_record(provider, "fake-model", recent, outcome="rate_limit")
    make_record(provider, "fake-model", recent, outcome="rate_limit", ttft_ms=None)
    make_record(provider, "fake-model", recent, outcome="network")
    make_record(provider, "fake-model", recent, cache_hit=True, ttft_ms=1)  # not upstream
    make_record(provider, "fake-model", recent, outcome="over_budget")  # refused before it
    make_record(provider, "fake-model", now - timedelta(hours=2), outcome="auth")  # too old
    return provider


def test_the_change_list_shows_each_providers_last_hour(admin_client, busy):
    _provider("Quiet")
    page = admin_client.get(LIST)
    assert page.status_code == 200
    # p50: rank ceil(3.5) = 4 of 7 -> 400 ms; p95: rank ceil(6.65) = 7 -> 700 ms.
    assert "10 attempts · 30.0% errors · TTFT 400 ms / 700 ms" in page.text
    assert "no attempts" in page.text


def test_the_change_page_shows_the_error_rate_by_kind(admin_client, busy):
    page = admin_client.get(reverse("admin:providers_provider_change", args=[busy.pk]))
    assert "10 upstream attempts in the last hour; error rate 30.0%." in page.text
    assert "<li>Rate limited: 2 (20.0%)</li><li>Network error: 1 (10.0%)</li>" in page.text
    assert "Time to first token: p50 400 ms, p95 700 ms." in page.text
    assert "No alias target of this provider is cooling down." in page.text


def test_a_cooling_target_is_shown(admin_client, busy):
    alias = Alias.objects.create(name="smart")
    AliasTarget.objects.create(alias=alias, provider=busy, model="fake-model")
    AliasTarget.objects.create(alias=alias, provider=busy, model="other-model")
    with switchboard(HEALTH_FAILURES=1):
        health.record(Target(busy, "fake-model"), [Attempt(number=1, outcome="overloaded")])
    page = admin_client.get(LIST)
    assert "Cooling down: fake-model" in page.text
    assert "other-model" not in page.text
    page = admin_client.get(reverse("admin:providers_provider_change", args=[busy.pk]))
    assert "<strong>fake-model</strong> cooling down" in page.text


def test_the_change_list_reads_health_in_a_fixed_number_of_queries(admin_client, busy):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(LIST).status_code == 200
        return len(captured)

    few = queries()
    for n in range(5):
        provider = _provider(f"More {n}")
        make_record(provider, "fake-model", timezone.now(), ttft_ms=50)
    assert queries() == few


def test_health_needs_the_usage_view_permission(client, django_user_model, busy):
    staff = django_user_model.objects.create_user("sam", password="pw-sam-123", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_provider"))
    client.force_login(staff)
    page = client.get(LIST)
    assert page.status_code == 200
    assert "attempts" not in page.text
    page = client.get(reverse("admin:providers_provider_change", args=[busy.pk]))
    assert "upstream attempts" not in page.text
    staff.user_permissions.add(Permission.objects.get(codename="view_usagerecord"))
    assert "10 attempts" in client.get(LIST).text


def test_non_staff_are_sent_to_the_login(client, django_user_model, busy):
    client.force_login(django_user_model.objects.create_user("eve", password="pw-eve-123"))
    response = client.get(reverse("admin:providers_provider_change", args=[busy.pk]))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
