"""Prompt caching on Anthropic: breakpoints placed on the system prompt and the end of the
conversation, the second turn of a long conversation read from the cache (as the fake
upstream reports it, like the real API) and priced at the cached-input price."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from generation.models import Message
from tests.generation.conftest import send_hello, wait_for
from tests.generation.gateway_helpers import *  # noqa: F403 (the fixtures)
from tests.generation.gateway_helpers import model_of
from usage.models import ModelPrice, UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)
EPHEMERAL = {"type": "ephemeral"}
SYSTEM = "You are a careful reviewer. " * 40
LONG_QUESTION = "Here is the design document to review. " * 200


@pytest.fixture
def priced():
    def price(kind: str) -> None:
        ModelPrice.objects.create(
            provider_kind=kind,
            model="fake-model",
            input_per_mtok=Decimal("3"),
            cached_input_per_mtok=Decimal("0.30"),
            cache_write_per_mtok=Decimal("3.75"),
            output_per_mtok=Decimal("15"),
            valid_from=timezone.now() - timedelta(days=1),
        )

    return price


def _turns(sdk, provider, fake_upstream):
    first = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": LONG_QUESTION}]
    answer = sdk.chat.completions.create(model=model_of(provider), messages=first)
    second = [
        *first,
        {"role": "assistant", "content": answer.choices[0].message.content},
        {"role": "user", "content": "And the second section?"},
    ]
    again = sdk.chat.completions.create(model=model_of(provider), messages=second)
    return [r.body for r in fake_upstream.requests if r.method == "POST"], again.usage


def test_breakpoints_sit_on_the_system_prompt_and_the_conversations_end(
    sdk, make_provider, fake_upstream
):
    provider = make_provider("anthropic", knobs="tokens=4")
    (first, second), _ = _turns(sdk, provider, fake_upstream)
    for body in (first, second):
        assert body["system"] == [{"type": "text", "text": SYSTEM, "cache_control": EPHEMERAL}]
        *earlier, last = body["messages"]
        assert last["content"][-1]["cache_control"] == EPHEMERAL
        assert all(isinstance(m["content"], str) for m in earlier)  # one breakpoint there


def test_the_second_turn_reads_the_first_from_the_cache_and_is_priced_so(
    sdk, make_provider, fake_upstream, priced
):
    provider = make_provider("anthropic", knobs="tokens=4")
    priced("anthropic")
    _, reported = _turns(sdk, provider, fake_upstream)
    first, second = UsageRecord.objects.order_by("created_at", "id")
    assert first.cached_input_tokens == 0
    assert first.cache_write_tokens > 2000  # the system prompt and the long question
    # The whole first prompt comes back from the cache; only the new turn is written.
    assert second.cached_input_tokens == first.cache_write_tokens
    assert 0 < second.cache_write_tokens < 100
    uncached = second.input_tokens - second.cached_input_tokens - second.cache_write_tokens
    expected_usd = (
        Decimal(uncached) * 3
        + Decimal(second.cached_input_tokens) * Decimal("0.30")
        + Decimal(second.cache_write_tokens) * Decimal("3.75")
        + Decimal(second.output_tokens) * 15
    ) / 1_000_000
    assert second.cost_nanos == round(expected_usd * 1_000_000_000)
    # Reading from the cache made the second, longer prompt cheaper than the first.
    assert second.cost_nanos < first.cost_nanos
    # The client sees OpenAI's meaning: prompt_tokens is the whole prompt, cache included.
    assert reported.prompt_tokens == second.input_tokens
    assert reported.prompt_tokens_details.cached_tokens == second.cached_input_tokens


def test_a_provider_with_prompt_caching_off_sends_no_breakpoints(sdk, make_provider, fake_upstream):
    provider = make_provider("anthropic", knobs="tokens=4", prompt_caching=False)
    for body in _turns(sdk, provider, fake_upstream)[0]:
        assert body["system"] == SYSTEM
        assert "cache_control" not in str(body["messages"])


def test_openai_requests_carry_no_breakpoints(sdk, make_provider, fake_upstream):
    provider = make_provider("openai", knobs="tokens=4")
    for body in _turns(sdk, provider, fake_upstream)[0]:
        assert "cache_control" not in str(body)


def test_the_chat_reads_its_history_from_the_cache_and_shows_the_whole_prompt(
    user, make_chat_provider, huey_consumer, fake_upstream
):
    provider = make_chat_provider("tokens=4", kind="anthropic")
    first = _final_answer(send_hello(user, provider, LONG_QUESTION))
    second = _final_answer(
        send_hello(user, provider, "And the second section?", conversation=first.conversation)
    )
    # Metered just after the answer is saved: waited for, as a reload would see it.
    record = wait_for(lambda: UsageRecord.objects.filter(message=second).first())
    assert isinstance(record, UsageRecord)
    assert record.cached_input_tokens > len(LONG_QUESTION) // 5  # the first turn, read back
    # The thread shows the whole prompt (Anthropic reports the cached part apart).
    assert second.input_tokens == record.input_tokens > record.cached_input_tokens


def _final_answer(answer: Message) -> Message:
    wait_for(lambda: Message.objects.get(pk=answer.pk).status not in Message.ACTIVE)
    return Message.objects.get(pk=answer.pk)
