"""POST /api/generate with `model` naming an alias: fallback, metering, budget hold."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from generation.api_tokens import ApiToken
from routing.models import Alias, AliasTarget
from tests.generation.test_api import _post
from tests.providers.fake_helpers import fake_provider
from usage.models import ModelPrice, Reservation, UsageRecord, UserBudget

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(django_user_model):
    user = django_user_model.objects.create_user("scripter")
    return ApiToken.issue(user=user, name="script")


def _alias(name, *targets):
    alias = Alias.objects.create(name=name)
    for priority, provider in targets:
        AliasTarget.objects.create(
            alias=alias, priority=priority, provider=provider, model="fake-model"
        )
    return alias


def test_an_alias_falls_back_and_each_attempt_is_metered(client, fake_upstream, token):
    _, raw = token
    limited = fake_provider(fake_upstream, "openai", knobs="fault=429&retry_after=0")
    spare = fake_provider(fake_upstream, "anthropic", knobs="tokens=5")
    _alias("smart", (1, limited), (2, spare))
    response = _post(client, raw, {"model": "smart", "prompt": "Hi"})
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert (data["alias"], data["provider"], data["model"]) == ("smart", spare.name, "fake-model")
    assert len(data["text"].split()) == 5
    records = UsageRecord.objects.order_by("attempt_number")
    assert [(r.provider, r.outcome, r.alias, r.attempt_number) for r in records] == [
        (limited, "rate_limit", "smart", 1),
        (spare, "ok", "smart", 2),
    ]
    assert records[0].request_id == records[1].request_id


def test_a_bad_request_is_not_passed_on(client, fake_upstream, token):
    _, raw = token
    first = fake_provider(fake_upstream, "openai")
    _alias("smart", (1, first), (2, fake_provider(fake_upstream, "openai")))
    response = _post(client, raw, {"model": "smart", "prompt": "Hi", "temperature": 9})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "temperature"
    assert not UsageRecord.objects.exists()


def test_an_unknown_alias_and_a_missing_provider_are_told_apart(client, fake_upstream, token):
    _, raw = token
    response = _post(client, raw, {"model": "nobody", "prompt": "Hi"})
    assert response.status_code == 404
    assert "No active alias is named 'nobody'" in response.json()["error"]["message"]
    response = _post(client, raw, {"prompt": "Hi"})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "provider_id"


def test_an_alias_whose_providers_are_all_inactive_says_so(client, fake_upstream, token):
    _, raw = token
    _alias("smart", (1, fake_provider(fake_upstream, "openai", is_active=False)))
    response = _post(client, raw, {"model": "smart", "prompt": "Hi"})
    assert response.status_code == 503
    assert "no target with an active provider" in response.json()["error"]["message"]


def test_the_hold_covers_the_costliest_target(client, fake_upstream, token):
    issued, raw = token
    cheap = fake_provider(fake_upstream, "openai")
    dear = fake_provider(fake_upstream, "anthropic")
    now = timezone.now()
    for kind, price in (("openai", "1"), ("anthropic", "100")):
        ModelPrice.objects.create(
            provider_kind=kind,
            model="fake-model",
            input_per_mtok=price,
            output_per_mtok=price,
            valid_from=now - timezone.timedelta(days=1),
        )
    UserBudget.objects.create(user=issued.user, monthly_limit=Decimal("0.05"))
    _alias("smart", (1, cheap), (2, dear))
    # 1,000 output tokens at $100/M = $0.10 at the dear target: over the $0.05 limit,
    # though the cheap one alone ($0.001) would fit.
    response = _post(client, raw, {"model": "smart", "prompt": "Hi", "max_tokens": 1000})
    assert response.status_code == 402
    refusal = UsageRecord.objects.get()
    assert (refusal.outcome, refusal.provider, refusal.alias) == ("over_budget", dear, "smart")
    response = _post(client, raw, {"model": "smart", "prompt": "Hi", "max_tokens": 100})
    assert response.status_code == 200, response.content
    held = Reservation.objects.get()
    assert (held.provider, held.status) == (dear, "settled")
