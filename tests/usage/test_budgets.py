from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from providers.adapters.base import Usage
from tests.usage.factories import make_record, ok_result
from usage.models import BudgetDefault, ModelPrice, Reservation, UserBudget
from usage.services import (
    BudgetExceeded,
    record_generation,
    release_reservation,
    reserve_budget,
    settle_reservation,
)

# gpt-4o worst case for 300 prompt chars (100 tokens) and max_tokens 1000:
# 100 * $2.50 + 1000 * $10 per million = $0.01025 = 10,250,000 nano-dollars.
CALL = {"model": "gpt-4o", "max_tokens": 1000, "prompt_tokens": 100}
WORST = 10_250_000


def _reserve(user, provider):
    return reserve_budget(user=user, provider=provider, **CALL)


@pytest.mark.django_db
def test_no_budget_means_no_limit(openai, user):
    r = _reserve(user, openai)
    assert r.amount_nanos == WORST
    assert r.status == "active"


@pytest.mark.django_db
def test_default_budget_applies_and_user_budget_overrides_it(openai, user):
    BudgetDefault.objects.create(pk=1, monthly_limit=Decimal("0.01"))
    with pytest.raises(BudgetExceeded) as exc:
        _reserve(user, openai)
    assert "$0.0102" in exc.value.reason
    assert "$0.01 monthly budget" in exc.value.reason
    UserBudget.objects.create(user=user, monthly_limit=None)  # this user: no limit
    assert _reserve(user, openai).amount_nanos == WORST


@pytest.mark.django_db
def test_spend_and_holds_count_until_settled(openai, user):
    UserBudget.objects.create(user=user, monthly_limit=Decimal("0.03"))
    first = _reserve(user, openai)
    second = _reserve(user, openai)
    with pytest.raises(BudgetExceeded, match="held by calls in progress"):
        _reserve(user, openai)
    # The first call really cost $0.0005 (100 in, 25 out): settling frees the rest.
    records = record_generation(
        provider=openai,
        user=user,
        source="api",
        result=ok_result("gpt-4o", Usage(input_tokens=100, output_tokens=25)),
        request_id="b1",
    )
    settled = settle_reservation(reservation=first, records=records)
    assert settled.status == "settled"
    assert settled.actual_nanos == 500_000
    third = _reserve(user, openai)
    release_reservation(reservation=second)
    release_reservation(reservation=third)
    assert Reservation.objects.filter(status="active").count() == 0
    assert _reserve(user, openai).amount_nanos == WORST


@pytest.mark.django_db
def test_last_month_and_expired_holds_do_not_count(openai, user):
    UserBudget.objects.create(user=user, monthly_limit=Decimal("0.02"))
    make_record(openai, "gpt-4o", datetime(2020, 1, 31, tzinfo=UTC), user=user, cost_nanos=10**12)
    stale = _reserve(user, openai)
    Reservation.objects.filter(pk=stale.pk).update(expires_at=timezone.now() - timedelta(1))
    assert _reserve(user, openai).amount_nanos == WORST


@pytest.mark.django_db
def test_this_months_spend_counts(openai, user):
    UserBudget.objects.create(user=user, monthly_limit=Decimal("1.00"))
    make_record(openai, "gpt-4o", timezone.now(), user=user, cost_nanos=995_000_000)
    with pytest.raises(BudgetExceeded, match=r"spent \$0.9950"):
        _reserve(user, openai)


@pytest.mark.django_db
def test_unpriced_model_is_refused_under_a_budget(make_provider, user):
    local = make_provider("Local", "openai_compatible")
    UserBudget.objects.create(user=user, monthly_limit=Decimal("5"))
    with pytest.raises(BudgetExceeded, match="has no price"):
        reserve_budget(user=user, provider=local, model="llama3", max_tokens=10, prompt_tokens=1)


def _race(user, provider, n: int) -> tuple[int, list[str], list[BaseException]]:
    barrier = threading.Barrier(n)
    ok, refused, errors = [], [], []

    def worker() -> None:
        try:
            barrier.wait()
            _reserve(user, provider)
            ok.append(1)
        except BudgetExceeded as exc:
            refused.append(exc.reason)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return len(ok), refused, errors


def _ten_against_five(make_provider, django_user_model):
    # A transactional test before this one flushes the migration-seeded prices: restate it.
    ModelPrice.objects.get_or_create(
        provider_kind="openai",
        model="gpt-4o",
        match="prefix",
        valid_from=datetime(2024, 1, 1, tzinfo=UTC),
        defaults={"input_per_mtok": Decimal("2.5"), "output_per_mtok": Decimal("10")},
    )
    provider = make_provider("OpenAI", "openai")
    user = django_user_model.objects.create_user("racer", password="pw-racer-123")
    # Fits 5 worst cases (5 x 0.01025 = 0.05125), not 6 (0.0615).
    UserBudget.objects.create(user=user, monthly_limit=Decimal("0.06"))
    ok, refused, errors = _race(user, provider, 10)
    assert errors == []
    assert (ok, len(refused)) == (5, 5), refused
    assert Reservation.objects.filter(user=user, status="active").count() == 5


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_requests_against_a_budget_for_five(make_provider, django_user_model):
    # Runs on SQLite (a file in WAL mode, BEGIN IMMEDIATE serialises) and, in make test's
    # second pass, on PostgreSQL (the row lock serialises).
    _ten_against_five(make_provider, django_user_model)


def test_the_output_held_counts_thinking_and_every_answer(settings):
    from providers.adapters.base import ChatMessage, GenerationRequest
    from usage.budgets import output_tokens_to_hold

    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "MAX_TOKENS_CAP": 8000}
    ask = GenerationRequest(model="m", messages=(ChatMessage.of_text("user", "hi"),))
    assert output_tokens_to_hold(ask) is None  # up to the cap, as before
    assert output_tokens_to_hold(replace(ask, max_tokens=100)) == 100
    assert output_tokens_to_hold(replace(ask, max_tokens=100, thinking_budget=1024)) == 1124
    assert output_tokens_to_hold(replace(ask, max_tokens=100, n=3)) == 300
    assert output_tokens_to_hold(replace(ask, n=2, thinking_budget=1024)) == 2 * 9024


def test_the_prompt_held_counts_the_tools_and_the_schema_the_provider_reads():
    # Providers bill tool definitions and a structured-output schema as input: a 1 MB
    # schema held as a 2-character prompt would let one call spend far past the budget.
    from providers.adapters.base import ChatMessage, GenerationRequest, ResponseFormat, ToolSpec
    from usage.budgets import prompt_tokens_to_hold

    ask = GenerationRequest(model="m", messages=(ChatMessage.of_text("user", "hi"),))
    big = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(3000)}}
    bare = prompt_tokens_to_hold(ask)
    with_tools = prompt_tokens_to_hold(
        replace(ask, tools=(ToolSpec("lookup", "Finds a thing.", big),))
    )
    with_schema = prompt_tokens_to_hold(
        replace(ask, response_format=ResponseFormat("json_schema", name="x", schema=big))
    )
    assert bare == 1
    # 3,000 properties are some 80,000 characters of JSON: over 20,000 tokens either way.
    assert with_tools > 20_000
    assert with_schema > 20_000
