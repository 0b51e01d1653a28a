"""The counters move where the work happens: usage records, refusals, streams, the queue."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group
from django.db import transaction
from django.urls import reverse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from generation import services
from generation.models import Conversation, Message
from generation.relay import RelayEvent, get_relay
from providers.adapters.base import Usage
from providers.errors import ErrorKind
from tests.generation.conftest import read_sse, send_hello, user  # noqa: F401 (fixtures)
from tests.generation.gateway_helpers import *  # noqa: F403 (the fixtures)
from tests.generation.gateway_helpers import model_of, user_says
from tests.metrics.scrape import value
from tests.providers.fake_helpers import TEST_KEY
from tests.usage.factories import failed_result, ok_result
from usage.models import TeamBudget, UserBudget
from usage.services import record_generation

ATTEMPTS = "switchboard_upstream_attempts_total"
REFUSALS = "switchboard_budget_refusals_total"


def current() -> str:
    """The metrics as /metrics sums them, read without a request (from inside one)."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return generate_latest(registry).decode()


@pytest.fixture
def provider(make_provider):
    made = make_provider("openai")
    made.name = "Metered"
    made.save()
    return made


@pytest.mark.django_db
def test_a_recorded_attempt_moves_attempts_tokens_cost_and_times(
    provider, django_capture_on_commit_callbacks
):
    labels = {"provider": "Metered", "model": "fake-model"}
    before = current()
    with django_capture_on_commit_callbacks(execute=True):
        record_generation(
            provider=provider,
            user=None,
            source="api",
            result=ok_result("fake-model", Usage(input_tokens=120, output_tokens=30), ttft=0.3),
            request_id="instruments-1",
        )
        record_generation(
            provider=provider,
            user=None,
            source="api",
            result=failed_result("fake-model", ErrorKind.RATE_LIMIT, Usage(), status=429),
            request_id="instruments-2",
        )
    after = current()

    def moved(sample: str, **more: str) -> float:
        return value(after, sample, **more) - value(before, sample, **more)

    assert moved(ATTEMPTS, **labels, outcome="ok") == 1
    assert moved(ATTEMPTS, **labels, outcome="rate_limit") == 1
    assert moved("switchboard_tokens_total", **labels, direction="input") == 120
    assert moved("switchboard_tokens_total", **labels, direction="output") == 30
    assert moved("switchboard_upstream_ttft_seconds_count", provider="Metered") == 2
    assert moved("switchboard_upstream_ttft_seconds_bucket", provider="Metered", le="0.25") == 0
    assert moved("switchboard_upstream_ttft_seconds_bucket", provider="Metered", le="0.5") == 2
    assert moved("switchboard_upstream_latency_seconds_count", provider="Metered") == 2


@pytest.mark.django_db
def test_a_cache_hit_counts_as_such_without_upstream_tokens_or_times(
    provider, django_capture_on_commit_callbacks
):
    cached = ok_result("fake-model", Usage(input_tokens=50, output_tokens=20))
    cached.cached = True
    before = current()
    with django_capture_on_commit_callbacks(execute=True):
        record_generation(
            provider=provider, user=None, source="api", result=cached, request_id="cached-1"
        )
    after = current()

    def moved(sample: str, **labels: str) -> float:
        return value(after, sample, **labels) - value(before, sample, **labels)

    assert moved(ATTEMPTS, provider="Metered", outcome="cache_hit") == 1
    assert moved(ATTEMPTS, provider="Metered", outcome="ok") == 0
    assert moved("switchboard_tokens_total", provider="Metered") == 0
    assert moved("switchboard_upstream_ttft_seconds_count", provider="Metered") == 0


@pytest.mark.django_db
def test_metering_the_same_call_twice_or_rolled_back_counts_once(
    provider, django_capture_on_commit_callbacks
):
    def meter() -> None:
        record_generation(
            provider=provider,
            user=None,
            source="api",
            result=ok_result("fake-model", Usage(input_tokens=7, output_tokens=3)),
            request_id="instruments-once",
        )

    def meter_and_fail() -> None:
        with transaction.atomic():
            record_generation(
                provider=provider,
                user=None,
                source="api",
                result=ok_result("fake-model", Usage(input_tokens=7, output_tokens=3)),
                request_id="instruments-rolled-back",
            )
            raise RuntimeError("the caller's transaction fails")

    before = value(current(), ATTEMPTS, provider="Metered")
    with django_capture_on_commit_callbacks(execute=True):
        meter()
        meter()  # a retried metering: the row exists, nothing new
        with pytest.raises(RuntimeError):
            meter_and_fail()
    assert value(current(), ATTEMPTS, provider="Metered") - before == 1


@pytest.mark.django_db(transaction=True)
def test_gateway_call_is_counted_and_no_secret_reaches_a_label(sdk, provider, api_token, scrape):
    before = scrape()
    stream = sdk.chat.completions.create(
        model=model_of(provider), messages=user_says("Confidential prompt"), stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    after = scrape()

    def moved(sample: str, **labels: str) -> float:
        return value(after, sample, **labels) - value(before, sample, **labels)

    view = {"view": "gateway:chat_completions", "status": "200"}
    assert moved("switchboard_http_requests_total", **view) == 1
    assert moved(ATTEMPTS, provider="Metered", model="fake-model", outcome="ok") == 1
    assert moved("switchboard_tokens_total", provider="Metered", direction="output") > 0
    assert moved("switchboard_upstream_ttft_seconds_count", provider="Metered") == 1
    for secret in (TEST_KEY, api_token[1], "gateway-user", "Confidential prompt"):
        assert secret not in after


@pytest.mark.django_db(transaction=True)
def test_budget_refusals_are_counted_by_source_and_scope(
    sdk,
    provider,
    api_user,
    user,  # noqa: F811
    scrape,
):
    before = scrape()
    UserBudget.objects.create(user=api_user, monthly_limit=Decimal("0"))
    with pytest.raises(openai.APIStatusError):
        sdk.chat.completions.create(model=model_of(provider), messages=user_says())
    UserBudget.objects.create(user=user, monthly_limit=Decimal("0"))
    with pytest.raises(services.SendError):
        send_hello(user, provider)
    UserBudget.objects.filter(user=user).delete()  # no limit of the user's own
    team = Group.objects.create(name="Broke")
    team.user_set.add(user)
    TeamBudget.objects.create(group=team, monthly_limit=Decimal("0"))
    with pytest.raises(services.SendError):
        send_hello(user, provider)  # refused by the team's budget alone
    after = scrape()
    for source, scope in (("api", "user"), ("chat", "user"), ("chat", "team")):
        labels = {"source": source, "scope": scope}
        assert value(after, REFUSALS, **labels) - value(before, REFUSALS, **labels) == 1
    assert value(after, ATTEMPTS, provider="Metered") == value(before, ATTEMPTS, provider="Metered")


def _streaming(user_, content: str) -> Message:
    conversation = Conversation.objects.create(owner=user_)
    question = Message.objects.create(conversation=conversation, role="user", content="q")
    return Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        status=Message.Status.STREAMING,
        content=content,
        model="fake-model",
    )


def open_streams() -> float:
    return value(current(), "switchboard_sse_streams_open")


@pytest.mark.django_db(transaction=True)
def test_an_open_stream_is_counted_until_it_ends(user, read_sse):  # noqa: F811
    message = _streaming(user, content="ab")
    get_relay().publish(message.relay_key, RelayEvent(4, "cd"))
    before, during = open_streams(), []

    def finish() -> None:
        Message.objects.filter(pk=message.pk).update(content="abcd", status="complete")
        get_relay().complete(message.relay_key)

    async def watch(sse) -> None:
        during.append(open_streams())
        if sse.text == "abcd":
            await sync_to_async(finish)()

    sse = read_sse(reverse("generation:stream", args=[message.pk]), on_delta=watch)
    assert sse.done is not None
    assert during
    assert during[0] == before + 1
    assert open_streams() == before


@pytest.mark.django_db(transaction=True)
def test_a_stream_the_client_leaves_is_no_longer_counted(user, read_sse):  # noqa: F811
    message = _streaming(user, content="ab")
    before = open_streams()
    sse = read_sse(reverse("generation:stream", args=[message.pk]), max_deltas=1)
    assert sse.done is None, "the reader left mid-answer"
    assert open_streams() == before


@pytest.mark.django_db(transaction=True)
def test_queue_depth_is_read_when_scraped(user, provider, scrape):  # noqa: F811
    from huey.contrib.djhuey import HUEY

    HUEY.storage.flush_queue()
    try:
        send_hello(user, provider)  # queued on commit; no worker runs in this test
        assert value(scrape(), "switchboard_queue_tasks", state="pending") == 1
    finally:
        HUEY.storage.flush_queue()
    assert value(scrape(), "switchboard_queue_tasks", state="pending") == 0
