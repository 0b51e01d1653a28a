"""Budgets, the per-token rate limit and client disconnects on /v1."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import openai
import pytest
from asgiref.sync import async_to_sync

from generation.api_tokens import ApiToken, new_raw_token
from generation.gateway.ratelimit import seconds_until_allowed
from providers.adapters.base import ChatMessage, GenerationRequest
from tests.generation.conftest import wait_for
from tests.generation.gateway_helpers import *  # noqa: F403 (the fixtures)
from tests.generation.gateway_helpers import model_of, user_says
from tests.providers.fake_helpers import generation_calls
from usage.models import Reservation, UsageRecord, UserBudget

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_over_budget_is_refused_before_any_upstream_call(
    sdk, api_user, make_provider, fake_upstream, stream
):
    provider = make_provider("openai")
    UserBudget.objects.create(user=api_user, monthly_limit=Decimal("0.00"))
    with pytest.raises(openai.APIStatusError) as caught:
        sdk.chat.completions.create(model=model_of(provider), messages=user_says(), stream=stream)
    assert caught.value.status_code == 402
    assert caught.value.type == "insufficient_quota"
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert generation_calls(fake_upstream) == 0
    record = UsageRecord.objects.get()
    assert (record.outcome, record.source, record.cost_nanos) == ("over_budget", "api", 0)
    assert not Reservation.objects.filter(status=Reservation.Status.ACTIVE).exists()


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_reservations_are_settled_after_the_call(sdk, api_user, give_budget, make_provider, stream):
    give_budget(api_user)
    provider = make_provider("openai", knobs="tokens=3")
    response = sdk.chat.completions.create(
        model=model_of(provider), messages=user_says(), stream=stream
    )
    if stream:
        list(response)
    reservation = Reservation.objects.get()
    assert reservation.status == Reservation.Status.SETTLED


def test_a_user_without_a_limit_holds_nothing(sdk, make_provider):
    provider = make_provider("openai", knobs="tokens=3")
    sdk.chat.completions.create(model=model_of(provider), messages=user_says())
    assert not Reservation.objects.exists()
    assert UsageRecord.objects.get().outcome == "ok"


def test_the_token_rate_limit_answers_429_with_retry_after(sdk, api_token, make_provider):
    token, _ = api_token
    token.requests_per_minute = 2
    token.save()
    provider = make_provider("openai", knobs="tokens=2")
    if time.time() % 60 > 55:  # keep the three calls inside one fixed window
        time.sleep(61 - time.time() % 60)
    for _ in range(2):
        sdk.chat.completions.create(model=model_of(provider), messages=user_says())
    with pytest.raises(openai.RateLimitError) as caught:
        sdk.chat.completions.create(model=model_of(provider), messages=user_says())
    assert caught.value.code == "rate_limit_exceeded"
    assert 1 <= int(caught.value.response.headers["retry-after"]) <= 60
    assert UsageRecord.objects.count() == 2


def test_a_disconnect_mid_stream_stops_upstream_and_meters_what_was_read(
    sdk, api_user, give_budget, make_provider, fake_upstream
):
    give_budget(api_user)  # so that the call holds budget, settled at the end
    provider = make_provider("anthropic", knobs="tokens=200&delay=20")
    stream = sdk.chat.completions.create(
        model=model_of(provider), messages=user_says(), stream=True
    )
    received = 0
    for chunk in stream:
        received += sum(1 for c in chunk.choices if c.delta.content)
        if received == 3:
            break
    stream.close()
    assert fake_upstream.wait_for(lambda: fake_upstream.early_closes == 1, timeout=5)
    record = wait_for(lambda: UsageRecord.objects.filter(outcome="cancelled").first())
    assert record.source == "api"
    assert record.tokens_estimated
    assert 3 <= record.output_tokens < 200
    reservation = wait_for(
        lambda: Reservation.objects.filter(status=Reservation.Status.SETTLED).first()
    )
    assert reservation.actual_nanos == record.cost_nanos


def limited_token(limit: int | None) -> ApiToken:
    token = ApiToken(requests_per_minute=limit)
    token.set_raw_token(new_raw_token())
    return token


def test_the_rate_limit_is_a_fixed_window_that_counts_atomically():
    token = limited_token(10)
    with ThreadPoolExecutor(max_workers=8) as pool:
        waits = list(pool.map(lambda _: seconds_until_allowed(token, now=600.0), range(25)))
    assert waits.count(None) == 10
    assert set(waits) - {None} == {60.0}
    assert seconds_until_allowed(token, now=659.5) == 0.5  # same window: wait for its end
    assert seconds_until_allowed(token, now=660.0) is None  # the next window
    assert all(seconds_until_allowed(limited_token(None), now=600.0) is None for _ in range(50))


def test_a_client_leaving_while_its_budget_is_reserved_leaves_no_hold(
    api_user, give_budget, make_provider
):
    from generation.gateway.services import aopen_call

    give_budget(api_user)
    provider = make_provider("openai")
    request = GenerationRequest(model="fake-model", messages=(ChatMessage.of_text("user", "Hi"),))

    async def leave_during_reservation() -> None:
        task = asyncio.create_task(
            aopen_call(user=api_user, provider=provider, request=request, request_id="r1")
        )
        await asyncio.sleep(0)  # the reservation is under way in its thread
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    async_to_sync(leave_during_reservation)()
    assert Reservation.objects.get().status == Reservation.Status.RELEASED
