"""/v1 through model aliases, with the official openai SDK: fallback, metering, listing."""

from __future__ import annotations

import openai
import pytest

from routing.models import Alias, AliasTarget
from tests.generation.conftest import expected_text
from tests.generation.gateway_helpers import *  # noqa: F403 (the fixtures)
from tests.generation.gateway_helpers import user_says
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)


def _alias(name, *providers, model="fake-model"):
    alias = Alias.objects.create(name=name)
    for priority, provider in enumerate(providers, start=1):
        AliasTarget.objects.create(alias=alias, priority=priority, provider=provider, model=model)
    return alias


def _records():
    return [
        (r.provider_id, r.model, r.outcome, r.alias, r.attempt_number)
        for r in UsageRecord.objects.order_by("attempt_number")
    ]


def test_models_lists_aliases_first(sdk, make_provider):
    provider = make_provider("openai")
    _alias("smart", provider)
    Alias.objects.create(name="retired", is_active=False)
    listed = [(m.id, m.owned_by) for m in sdk.models.list()]
    assert listed[0] == ("smart", "switchboard-alias")
    assert "retired" not in [name for name, _ in listed]
    assert (f"{provider.name}/fake-model", provider.name) in listed
    assert sdk.models.retrieve("smart").owned_by == "switchboard-alias"


def test_non_streamed_call_falls_back_and_meters_each_attempt(sdk, make_provider):
    limited = make_provider("openai", knobs="fault=429")
    spare = make_provider("anthropic", knobs="tokens=5")
    _alias("smart", limited, spare)
    completion = sdk.chat.completions.create(model="smart", messages=user_says())
    assert completion.model == "smart"
    assert completion.choices[0].message.content == expected_text(5)
    assert completion.usage.completion_tokens == 5
    assert _records() == [
        (limited.pk, "fake-model", "rate_limit", "smart", 1),
        (spare.pk, "fake-model", "ok", "smart", 2),
    ]
    assert UsageRecord.objects.filter(request_id=completion._request_id).count() == 2


def test_streamed_call_falls_back_before_the_first_token(sdk, make_provider):
    failing = make_provider("anthropic", knobs="fault=529")
    spare = make_provider("openai", knobs="tokens=6")
    _alias("smart", failing, spare)
    stream = sdk.chat.completions.create(
        model="smart", messages=user_says(), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected_text(6)
    assert chunks[-1].usage.completion_tokens == 6
    assert _records() == [
        (failing.pk, "fake-model", "overloaded", "smart", 1),
        (spare.pk, "fake-model", "ok", "smart", 2),
    ]


def test_a_drop_after_the_first_token_is_not_passed_on(sdk, make_provider, fake_upstream):
    dropping = make_provider("openai", knobs="fault=drop&after=2")
    spare = make_provider("openai")
    _alias("smart", dropping, spare)
    stream = sdk.chat.completions.create(model="smart", messages=user_says(), stream=True)
    seen: list[str] = []

    def read_all():
        for chunk in stream:
            seen.append(chunk.choices[0].delta.content or "")

    with pytest.raises(openai.APIError):
        read_all()
    assert "".join(seen) == expected_text(2)
    assert _records() == [(dropping.pk, "fake-model", "network", "smart", 1)]


def test_when_every_target_fails_the_last_error_is_the_answer(sdk, make_provider):
    first = make_provider("openai", knobs="fault=401")
    last = make_provider("openai", knobs="fault=402")
    _alias("smart", first, last)
    with pytest.raises(openai.APIStatusError) as raised:
        sdk.chat.completions.create(model="smart", messages=user_says())
    assert raised.value.status_code == 502
    assert "billing problem" in raised.value.message
    assert [outcome for _, _, outcome, _, _ in _records()] == ["auth", "billing"]


def test_an_alias_wins_over_a_plain_model_name(sdk, make_provider):
    # Two providers offer fake-model: the plain name alone would be ambiguous (a 404).
    offering = make_provider("openai", knobs="fault=500")
    spare = make_provider("openai", knobs="tokens=3")
    _alias("fake-model", spare)
    completion = sdk.chat.completions.create(model="fake-model", messages=user_says())
    assert completion.choices[0].message.content == expected_text(3)
    assert _records() == [(spare.pk, "fake-model", "ok", "fake-model", 1)]
    assert offering.pk not in [p for p, *_ in _records()]


def test_an_alias_without_an_active_provider_is_a_503(sdk, make_provider):
    _alias("smart", make_provider("openai", is_active=False))
    with pytest.raises(openai.InternalServerError) as raised:
        sdk.chat.completions.create(model="smart", messages=user_says())
    assert raised.value.status_code == 503
    assert "no target with an active provider" in raised.value.message
    assert not UsageRecord.objects.exists()
