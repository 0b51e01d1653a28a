"""Metering through the real engine, SDKs and HTTP against the project's fake upstream."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import override_settings

from providers import engine
from tests.providers.fake_helpers import ask, collect, fake_provider, generation_calls, run
from usage.models import ModelPrice
from usage.services import record_generation

pytestmark = pytest.mark.django_db
# Per million tokens: input $1, cached input $0.50, cache write $1.25, output $2.
PRICES = {
    "input_per_mtok": "1.000",
    "output_per_mtok": "2.000",
    "cached_input_per_mtok": "0.500",
    "cache_write_per_mtok": "1.250",
}


@pytest.fixture(autouse=True)
def _fake_model_prices(db):
    for kind in ("openai", "anthropic"):
        ModelPrice.objects.create(
            provider_kind=kind,
            model="fake-model",
            match="prefix",
            valid_from=datetime(2024, 1, 1, tzinfo=UTC),
            **PRICES,
        )


def _expected_nanos(r) -> int:
    uncached = r.input_tokens - r.cached_input_tokens - r.cache_write_tokens
    per_mtok = (
        uncached * Decimal(1)
        + r.cached_input_tokens * Decimal("0.5")
        + r.cache_write_tokens * Decimal("1.25")
        + r.output_tokens * Decimal(2)
    )
    return int(per_mtok * 1000)


def test_streamed_openai_answer_takes_usage_from_the_final_chunk(fake_upstream, user):
    provider = fake_provider(fake_upstream, "openai", knobs="tokens=5&cached=3")
    _, result = run(collect(engine.stream_generation(provider, ask())))
    (r,) = record_generation(
        provider=provider, user=user, source="chat", result=result, request_id="e2e-openai"
    )
    assert (r.outcome, r.output_tokens, r.cached_input_tokens) == ("ok", 5, 3)
    assert r.input_tokens == result.usage.input_tokens > 3
    assert not r.tokens_estimated
    assert r.cost_nanos == _expected_nanos(r)
    assert r.ttft_ms is not None


def test_streamed_anthropic_answer_counts_cumulative_usage_once(fake_upstream, user):
    provider = fake_provider(fake_upstream, "anthropic", knobs="tokens=7")
    _, result = run(collect(engine.stream_generation(provider, ask())))
    (r,) = record_generation(
        provider=provider, user=user, source="chat", result=result, request_id="e2e-anthropic"
    )
    assert r.output_tokens == 7  # message_start and message_delta are not added together
    assert r.cost_nanos == _expected_nanos(r)


def test_non_streamed_api_call_is_one_record(fake_upstream, user):
    provider = fake_provider(fake_upstream, "openai", knobs="tokens=4")
    result = run(engine.generate(provider, ask()))
    records = record_generation(
        provider=provider, user=user, source="api", result=result, request_id="e2e-api"
    )
    assert [(r.source, r.output_tokens) for r in records] == [("api", 4)]


def test_each_429_attempt_is_a_record_with_no_cost(fake_upstream, user):
    provider = fake_provider(fake_upstream, "openai", knobs="fault=429&retry_after=0")
    fast = {"RETRY_MAX_ATTEMPTS": 2, "RETRY_BASE_DELAY_SECONDS": 0.01}
    with override_settings(SWITCHBOARD={**settings.SWITCHBOARD, **fast}):
        _, result = run(collect(engine.stream_generation(provider, ask())))
    records = record_generation(
        provider=provider, user=user, source="chat", result=result, request_id="e2e-429"
    )
    assert generation_calls(fake_upstream) == len(records) == 2
    assert [(r.attempt_number, r.outcome, r.cost_nanos) for r in records] == [
        (1, "rate_limit", 0),
        (2, "rate_limit", 0),
    ]


def test_a_stream_dropped_midway_still_records_what_it_consumed(fake_upstream, user):
    provider = fake_provider(fake_upstream, "openai", knobs="tokens=10&fault=drop&after=4")
    _, result = run(collect(engine.stream_generation(provider, ask())))
    records = record_generation(
        provider=provider, user=user, source="chat", result=result, request_id="e2e-drop"
    )
    assert records[-1].outcome != "ok"
    assert records[-1].tokens_estimated
    assert records[-1].output_tokens > 0
    assert records[-1].cost_nanos == _expected_nanos(records[-1]) > 0


def test_anthropic_cache_reads_are_priced_once_at_the_cached_price(fake_upstream, user):
    # Anthropic's input_tokens leaves out cache reads (the fake says so too): the record
    # holds the whole prompt, and only the uncached part is billed at the full price.
    provider = fake_provider(
        fake_upstream, "anthropic", knobs="tokens=3&cached=4", prompt_caching=False
    )
    _, result = run(collect(engine.stream_generation(provider, ask())))
    reported_input = result.usage.input_tokens
    (r,) = record_generation(
        provider=provider, user=user, source="chat", result=result, request_id="e2e-cache"
    )
    assert r.cached_input_tokens == 4
    assert r.input_tokens == reported_input + 4
    assert r.cost_nanos == _expected_nanos(r)
