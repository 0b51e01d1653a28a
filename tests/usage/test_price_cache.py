"""The per-process price copy: fewer queries, and a saved price applies at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from usage.models import ModelPrice
from usage.pricing import find_price

pytestmark = pytest.mark.django_db(transaction=True)

KIND = "openai"


def _price(model: str, output: str, valid_from: datetime, match: str = "exact") -> ModelPrice:
    return ModelPrice.objects.create(
        provider_kind=KIND,
        model=model,
        match=match,
        valid_from=valid_from,
        input_per_mtok=Decimal("1"),
        output_per_mtok=Decimal(output),
    )


def test_lookups_share_one_query_and_a_save_applies_at_once():
    old = _price("cached-model", "2", datetime(2020, 1, 1, tzinfo=UTC))
    now = timezone.now()
    assert find_price(provider_kind=KIND, model="cached-model", at=now) == old
    with CaptureQueriesContext(connection) as queries:
        assert find_price(provider_kind=KIND, model="cached-model", at=now) == old
        assert find_price(provider_kind=KIND, model="cached-model-mini", at=now) is None
    assert len(queries) == 0

    new = _price("cached-model", "3", now - timedelta(seconds=1))
    assert find_price(provider_kind=KIND, model="cached-model", at=now) == new
    # Versions still apply by time: before the new one, the old one.
    assert find_price(provider_kind=KIND, model="cached-model", at=now - timedelta(days=1)) == old

    new.delete()
    assert find_price(provider_kind=KIND, model="cached-model", at=now) == old


def test_an_edit_applies_at_once():
    price = _price("edited-model", "2", datetime(2020, 1, 1, tzinfo=UTC))
    now = timezone.now()
    assert find_price(provider_kind=KIND, model="edited-model", at=now).output_per_mtok == 2
    price.output_per_mtok = Decimal("5")
    price.save()
    assert find_price(provider_kind=KIND, model="edited-model", at=now).output_per_mtok == 5
