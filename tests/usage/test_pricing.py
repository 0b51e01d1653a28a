from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from providers.adapters.base import Usage
from tests.usage.factories import ok_result
from usage.models import ModelPrice
from usage.pricing import find_price
from usage.services import record_generation

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_longest_prefix_wins():
    assert find_price(provider_kind="openai", model="gpt-4o-mini-2024-07-18", at=NOW).model == (
        "gpt-4o-mini"
    )
    assert find_price(provider_kind="openai", model="gpt-4o-2024-08-06", at=NOW).model == "gpt-4o"
    assert find_price(provider_kind="openai", model="gpt-4.1-nano", at=NOW).model == "gpt-4.1-nano"


def test_exact_beats_prefix():
    price = find_price(provider_kind="openai", model="gpt-4o-2024-05-13", at=NOW)
    assert price.match == "exact"
    assert price.input_per_mtok == Decimal("5.000")


def test_kind_matters_and_unpriced_is_none():
    assert find_price(provider_kind="deepseek", model="gpt-4o", at=NOW) is None
    assert find_price(provider_kind="openai", model="o3-pro", at=NOW) is None
    assert find_price(provider_kind="deepseek", model="deepseek-chat", at=NOW) is not None


def test_newest_valid_version_applies():
    ModelPrice.objects.create(
        provider_kind="openai",
        model="gpt-4o",
        match="prefix",
        input_per_mtok="1.000",
        output_per_mtok="2.000",
        valid_from=NOW + timedelta(days=1),
    )
    assert find_price(provider_kind="openai", model="gpt-4o", at=NOW).input_per_mtok == Decimal(
        "2.500"
    )
    later = find_price(provider_kind="openai", model="gpt-4o", at=NOW + timedelta(days=2))
    assert later.input_per_mtok == Decimal("1.000")


def test_price_change_after_a_record_does_not_rewrite_it(openai):
    (r,) = record_generation(
        provider=openai,
        user=None,
        source="api",
        result=ok_result("gpt-4o", Usage(input_tokens=1000, output_tokens=1000)),
    )
    assert r.cost == Decimal("0.0125")
    ModelPrice.objects.create(
        provider_kind="openai",
        model="gpt-4o",
        match="prefix",
        input_per_mtok="100.000",
        output_per_mtok="100.000",
        valid_from=timezone.now(),
    )
    r.refresh_from_db()
    assert r.cost == Decimal("0.0125")
    assert r.price_snapshot["input"] == "2.500"


def test_blank_cached_price_falls_back_to_input_price(make_provider):
    ModelPrice.objects.create(
        provider_kind="openai_compatible",
        model="local",
        match="prefix",
        input_per_mtok="0.000",
        output_per_mtok="0.000",
        valid_from=NOW - timedelta(days=1),
    )
    provider = make_provider("Local", "openai_compatible")
    (r,) = record_generation(
        provider=provider,
        user=None,
        source="chat",
        result=ok_result(
            "local-llama", Usage(input_tokens=5, output_tokens=5, cached_input_tokens=2)
        ),
    )
    # Priced at zero on purpose: a known $0, unlike an unpriced model's unknown cost.
    assert r.cost_nanos == 0
    assert r.price_snapshot["cached_input"] == "0.000"
