"""The report's fallback counts, from routed calls made through /api/generate (the real
SDKs against the fake upstream)."""

from __future__ import annotations

import csv
import io

import pytest
from django.utils import timezone

from generation.api_tokens import ApiToken
from routing.models import Alias, AliasTarget
from tests.generation.test_api import _post
from tests.providers.fake_helpers import fake_provider
from tests.routing.conftest import switchboard
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db
REPORT = "/admin/usage/usagerecord/report/"


def _alias(name, *providers):
    alias = Alias.objects.create(name=name)
    for priority, provider in enumerate(providers, start=1):
        AliasTarget.objects.create(
            alias=alias, priority=priority, provider=provider, model="fake-model"
        )


@pytest.fixture
def routed_calls(client, fake_upstream, django_user_model):
    """smart: two calls answered after a 429; fast: one call, no fallback; doomed: one
    call whose both targets fail (the last with its retries); one direct call."""
    _, raw = ApiToken.issue(user=django_user_model.objects.create_user("u"), name="t")
    p = {
        "limited": fake_provider(fake_upstream, knobs="fault=429&retry_after=0"),
        "spare": fake_provider(fake_upstream, knobs="tokens=3"),
        "good": fake_provider(fake_upstream, knobs="tokens=2"),
        "broken": fake_provider(fake_upstream, knobs="fault=500"),
        "busy": fake_provider(fake_upstream, knobs="fault=529"),
    }
    _alias("smart", p["limited"], p["spare"])
    _alias("fast", p["good"])
    _alias("doomed", p["broken"], p["busy"])
    with switchboard():  # fast retries; the health threshold (3) is not reached
        for model in ("smart", "smart", "fast", "doomed"):
            _post(client, raw, {"model": model, "prompt": "Hi"})
        _post(client, raw, {"provider_id": str(p["good"].pk), "prompt": "Hi"})
    return p


def _range():
    today = timezone.localdate().isoformat()
    return {"range": "custom", "start": today, "end": today}


def _csv(response):
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_each_attempt_of_a_routed_call_says_its_step(routed_calls):
    steps = {}
    for r in UsageRecord.objects.order_by("created_at", "attempt_number"):
        steps.setdefault(r.request_id, []).append((r.provider.name, r.routing_step))
    p = {name: provider.name for name, provider in routed_calls.items()}
    assert list(steps.values()) == [
        [(p["limited"], "fell_back"), (p["spare"], "last_after_fallback")],
        [(p["limited"], "fell_back"), (p["spare"], "last_after_fallback")],
        [(p["good"], "last")],
        # The last target keeps its retries: only its last attempt ends the call.
        [
            (p["broken"], "fell_back"),
            (p["busy"], ""),
            (p["busy"], ""),
            (p["busy"], "last_after_fallback"),
        ],
        [(p["good"], "")],  # a direct call is not routed
    ]


def test_the_report_counts_fallbacks_per_alias_and_per_target(admin_client, routed_calls):
    page = admin_client.get(REPORT, _range())
    assert page.status_code == 200
    fallbacks = page.context["fallbacks"]
    assert [(a.alias, a.calls, a.fell_back, a.answered_after) for a in fallbacks.by_alias] == [
        ("smart", 2, 2, 2),
        ("doomed", 1, 1, 0),
        ("fast", 1, 0, 0),
    ]
    p = routed_calls
    assert [
        (t.provider_id, t.failed_over, t.answered_after, t.failed_after)
        for t in fallbacks.by_target
    ] == [
        (p["limited"].pk, 2, 0, 0),
        (p["broken"].pk, 1, 0, 0),
        (p["spare"].pk, 0, 2, 0),
        (p["busy"].pk, 0, 0, 1),
    ]
    assert "3 of 4 routed calls needed a fallback (75.0%); 2 of them were answered" in page.text
    assert f"{p['limited'].name}/fake-model" in page.text


def test_the_fallback_csvs_match_the_page(admin_client, routed_calls):
    by_alias = _csv(admin_client.get(REPORT, {**_range(), "export": "fallback_alias"}))
    assert by_alias == [
        ["alias", "routed_calls", "needed_fallback", "answered_after_fallback", "rate_pct"],
        ["smart", "2", "2", "2", "100.0"],
        ["doomed", "1", "1", "0", "100.0"],
        ["fast", "1", "0", "0", "0.0"],
    ]
    by_target = _csv(admin_client.get(REPORT, {**_range(), "export": "fallback_target"}))
    assert by_target[0] == [
        "provider",
        "model",
        "failed_fell_back",
        "answered_after_fallback",
        "failed_after",
    ]
    assert by_target[1] == [routed_calls["limited"].name, "fake-model", "2", "0", "0"]
    assert len(by_target) == 5


def test_the_fallback_exports_are_staff_only(client, django_user_model, routed_calls):
    client.force_login(django_user_model.objects.create_user("eve", password="pw-eve-123"))
    response = client.get(REPORT, {**_range(), "export": "fallback_target"})
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
