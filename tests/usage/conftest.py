from __future__ import annotations

from datetime import UTC, datetime

import pytest

from providers.models import Provider
from tests.usage.factories import make_record


@pytest.fixture
def make_provider(db):
    def make(name: str = "OpenAI", kind: str = "openai") -> Provider:
        provider = Provider(name=name, kind=kind)
        provider.set_api_key("sk-test-abcdef0123456789")
        provider.save()
        return provider

    return make


@pytest.fixture
def openai(make_provider) -> Provider:
    return make_provider("OpenAI", "openai")


@pytest.fixture
def anthropic(make_provider) -> Provider:
    return make_provider("Anthropic", "anthropic")


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw-alice-123")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def march_usage(openai, anthropic, make_provider, user, django_user_model):
    bob = django_user_model.objects.create_user("bob", password="pw-bob-123")
    local = make_provider("Local", "openai_compatible")
    # cost_nanos hand-computed from the seeded list prices (USD per million tokens):
    make_record(
        openai,
        "gpt-4o",
        at(2, 10),
        user=user,
        input_tokens=1000,
        output_tokens=500,
        cost_nanos=7_500_000,
        ttft_ms=100,
        latency_ms=1000,
    )  # 1000*2.5 + 500*10
    make_record(
        openai,
        "gpt-4o",
        at(2, 10, 1),
        user=bob,
        source="api",
        outcome="rate_limit",
        cost_nanos=0,
        latency_ms=50,
    )
    make_record(
        openai,
        "gpt-4o",
        at(2, 10, 2),
        user=bob,
        source="api",
        input_tokens=200,
        output_tokens=100,
        cost_nanos=1_500_000,
        ttft_ms=300,
        latency_ms=3000,
    )
    make_record(
        anthropic,
        "claude-3-5-haiku",
        at(3, 9),
        user=user,
        input_tokens=2000,
        output_tokens=1000,
        cost_nanos=5_600_000,
        ttft_ms=200,
        latency_ms=2000,
    )
    make_record(
        anthropic,
        "claude-3-5-haiku",
        at(3, 9, 5),
        user=user,
        input_tokens=2000,
        output_tokens=1000,
        cost_nanos=0,
        cache_hit=True,
        latency_ms=1,
    )
    make_record(
        local,
        "llama3",
        at(3, 12),
        source="api",
        input_tokens=50,
        output_tokens=50,
        cost_nanos=None,
        ttft_ms=400,
        latency_ms=4000,
    )
    return {"bob": bob, "local": local}
