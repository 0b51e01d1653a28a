from __future__ import annotations

from decimal import Decimal

import pytest

from providers.adapters.base import Attempt, GenerationResult, Usage
from providers.errors import ErrorKind, ProviderError
from tests.usage.factories import failed_result, ok_result
from usage.models import UsageRecord
from usage.selectors import usage_for_messages
from usage.services import record_generation, record_refusal

pytestmark = pytest.mark.django_db


def test_streamed_anthropic_answer_is_one_record_with_cache_prices(anthropic, user):
    # As Anthropic reports it (and the adapter passes it on): input_tokens 1000 excludes
    # the 2000 cache-read and 500 cache-write tokens. message_delta usage is cumulative,
    # so the attempt carries the final count once (output 300), not a sum of deltas.
    usage = Usage(
        input_tokens=1000, output_tokens=300, cached_input_tokens=2000, cache_write_tokens=500
    )
    records = record_generation(
        provider=anthropic,
        user=user,
        source="chat",
        result=ok_result("claude-3-5-haiku-latest", usage, ttft=0.25, latency=1.5),
        request_id="msg-1",
    )
    assert len(records) == 1
    r = records[0]
    # 1000*0.80 + 2000*0.08 + 500*1.00 + 300*4.00 = 800 + 160 + 500 + 1200 = 2660 per Mtok
    assert r.cost == Decimal("0.00266")
    assert r.cost_nanos == 2_660_000
    assert (r.input_tokens, r.output_tokens, r.total_tokens) == (3500, 300, 3800)
    assert (r.cached_input_tokens, r.cache_write_tokens) == (2000, 500)
    assert (r.ttft_ms, r.latency_ms, r.outcome, r.attempt_number) == (250, 1500, "ok", 1)
    assert r.price_snapshot["model"] == "claude-3-5-haiku"
    assert r.price_snapshot["cache_write"] == "1.000"
    assert r.user == user
    assert r.source == "chat"
    assert not r.tokens_estimated


def test_non_streamed_openai_call_with_reasoning_tokens(openai):
    # OpenAI: prompt_tokens includes cached; completion_tokens includes reasoning.
    usage = Usage(
        input_tokens=1000, output_tokens=500, cached_input_tokens=400, reasoning_tokens=200
    )
    (r,) = record_generation(
        provider=openai,
        user=None,
        source="api",
        result=ok_result("gpt-4o-mini", usage),
        request_id="req-1",
    )
    # 600*0.15 + 400*0.075 + 500*0.60 = 90 + 30 + 300 = 420 per Mtok
    assert r.cost == Decimal("0.00042")
    assert r.reasoning_tokens == 200
    assert r.user is None
    assert r.source == "api"


def test_retried_429_then_ok_gives_two_records(openai, user):
    ok_usage = Usage(input_tokens=100, output_tokens=50)
    result = GenerationResult(
        text="hi",
        model="gpt-4o",
        finish_reason="stop",
        usage=ok_usage,
        attempts=[
            Attempt(1, ErrorKind.RATE_LIMIT.value, 429, 1.0, None, 0.05, Usage()),
            Attempt(2, "ok", 200, 0.0, 0.3, 0.9, ok_usage),
        ],
    )
    records = record_generation(
        provider=openai, user=user, source="chat", result=result, request_id="m2"
    )
    assert [(r.attempt_number, r.outcome, r.status_code) for r in records] == [
        (1, "rate_limit", 429),
        (2, "ok", 200),
    ]
    assert records[0].cost == Decimal(0)
    assert records[0].ttft_ms is None
    # 100*2.50 + 50*10 = 750 per Mtok
    assert records[1].cost == Decimal("0.00075")


def test_recording_twice_is_a_no_op(openai, user):
    result = ok_result("gpt-4o", Usage(input_tokens=10, output_tokens=5))
    first = record_generation(
        provider=openai, user=user, source="chat", result=result, request_id="same"
    )
    again = record_generation(
        provider=openai, user=user, source="chat", result=result, request_id="same"
    )
    assert [r.pk for r in first] == [r.pk for r in again]
    assert UsageRecord.objects.count() == 1


def test_cache_hit_is_one_zero_cost_record(openai, user):
    usage = Usage(input_tokens=100, output_tokens=40)
    result = GenerationResult(text="x", model="gpt-4o", usage=usage, cached=True, attempts=[])
    (r,) = record_generation(
        provider=openai, user=user, source="api", result=result, request_id="c1"
    )
    assert r.cache_hit
    assert r.cost_nanos == 0
    assert r.cost == Decimal(0)
    assert r.output_tokens == 40
    assert r.price_snapshot is None


@pytest.mark.parametrize("kind", [ErrorKind.CANCELLED, ErrorKind.NETWORK])
def test_cancelled_and_failed_streams_record_consumed_tokens(anthropic, user, kind):
    usage = Usage(input_tokens=1000, output_tokens=120, estimated=True)
    (r,) = record_generation(
        provider=anthropic,
        user=user,
        source="chat",
        result=failed_result("claude-sonnet-4-20250514", kind, usage),
        request_id=f"f-{kind}",
    )
    assert r.outcome == kind.value
    assert r.tokens_estimated
    # 1000*3 + 120*15 = 4800 per Mtok
    assert r.cost == Decimal("0.0048")


def test_unpriced_model_is_unknown_cost_not_zero(make_provider, user):
    local = make_provider("Ollama", "openai_compatible")
    (r,) = record_generation(
        provider=local,
        user=user,
        source="chat",
        result=ok_result("llama3.1:8b", Usage(input_tokens=10, output_tokens=10)),
    )
    assert r.cost_nanos is None
    assert r.cost is None
    assert r.price_snapshot is None


def test_result_without_attempts_and_no_usage_records_nothing(openai, user):
    result = GenerationResult(
        text="", model="gpt-4o", error=ProviderError(ErrorKind.BAD_REQUEST, "bad"), attempts=[]
    )
    assert record_generation(provider=openai, user=user, source="api", result=result) == []


def test_refusal_is_recorded_as_over_budget(openai, user):
    r = record_refusal(provider=openai, user=user, source="api", model="gpt-4o", request_id="r9")
    assert (r.outcome, r.attempt_number, r.cost_nanos) == ("over_budget", 0, 0)


def test_chat_message_is_linked_and_recorded_once(openai, user):
    from generation.models import Conversation, Message

    conversation = Conversation.objects.create(owner=user, provider=openai, model="gpt-4o")
    message = Message.objects.create(conversation=conversation, role="assistant")
    result = ok_result("gpt-4o", Usage(input_tokens=1000, output_tokens=100))
    for _ in range(2):  # a retried task must not bill twice
        record_generation(provider=openai, user=user, source="chat", result=result, message=message)
    assert message.usage_records.count() == 1
    usage = usage_for_messages(message_ids=[message.pk])[message.pk]
    assert usage.cost == Decimal("0.0035")  # 1000 * 2.50 + 100 * 10 per million
    assert (usage.input_tokens, usage.output_tokens, usage.estimated) == (1000, 100, False)


def test_rollup_task_runs(openai):
    from usage.tasks import refresh_usage_rollup

    record_generation(
        provider=openai, user=None, source="api", result=ok_result("gpt-4o", Usage(input_tokens=1))
    )
    assert refresh_usage_rollup.call_local() is not None


@pytest.mark.django_db(transaction=True)
def test_an_answer_deleted_just_before_its_metering_is_still_recorded(openai, user):
    # The worker's last save won, then the conversation was deleted, then it metered:
    # the provider billed the call, so the record stays, without its message.
    from generation.models import Conversation, Message

    conversation = Conversation.objects.create(owner=user)
    message = Message.objects.create(conversation=conversation, role="assistant")
    Conversation.objects.filter(pk=conversation.pk).delete()
    usage = Usage(input_tokens=100, output_tokens=20)
    (record,) = record_generation(
        provider=openai,
        user=user,
        source="chat",
        result=ok_result("gpt-4o-mini", usage),
        message=message,
    )
    record = UsageRecord.objects.get(pk=record.pk)
    assert (record.message_id, record.input_tokens, record.output_tokens) == (None, 100, 20)
