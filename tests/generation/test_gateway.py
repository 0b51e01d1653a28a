"""The /v1 gateway with the official openai SDK as the client, for every provider kind."""

from __future__ import annotations

import pytest

from tests.generation.conftest import expected_text
from tests.generation.gateway_helpers import *  # noqa: F403 (the fixtures)
from tests.generation.gateway_helpers import KINDS, model_of, user_says
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("kind", KINDS)
def test_non_streaming_answer(sdk, make_provider, fake_upstream, kind):
    provider = make_provider(kind, knobs="tokens=5")
    completion = sdk.chat.completions.create(
        model=model_of(provider),
        messages=[{"role": "system", "content": "Be brief"}, *user_says()],
        max_tokens=50,
        temperature=0,
    )
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == model_of(provider)
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == expected_text(5)
    assert choice.finish_reason == "stop"
    assert completion.usage.completion_tokens == 5
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    record = UsageRecord.objects.get()
    assert (record.source, record.outcome, record.output_tokens) == ("api", "ok", 5)
    assert record.user.username == "gateway-user"


@pytest.mark.parametrize("kind", KINDS)
def test_streaming_answer_with_usage_in_the_final_chunk(sdk, make_provider, kind):
    provider = make_provider(kind, knobs="tokens=6")
    stream = sdk.chat.completions.create(
        model=model_of(provider),
        messages=user_says(),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected_text(6)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert set(finishes[:-1]) == {None}
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 6
    assert all(c.usage is None for c in chunks[:-1])
    record = UsageRecord.objects.get()
    assert (record.source, record.outcome, record.output_tokens) == ("api", "ok", 6)
