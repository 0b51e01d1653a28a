"""The /v1 gateway with the official openai SDK as the client, for every provider kind."""

from __future__ import annotations

import time

import openai
import pytest

from tests.generation.conftest import expected_text, wait_for
from tests.generation.gateway_helpers import *  # noqa: F403 (the fixtures)
from tests.generation.gateway_helpers import KINDS, model_of, user_says
from usage.models import Reservation, UsageRecord

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
    assert completion._request_id == record.request_id  # the SDK's x-request-id


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


def test_stream_headers_and_raw_events(gateway_url, api_token, make_provider):
    import httpx2 as httpx

    provider = make_provider("openai", knobs="tokens=3")
    body = {"model": model_of(provider), "messages": user_says(), "stream": True}
    headers = {"Authorization": f"Bearer {api_token[1]}"}
    with httpx.stream(
        "POST", f"{gateway_url}/v1/chat/completions", json=body, headers=headers
    ) as r:
        raw = r.read().decode()
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["x-accel-buffering"] == "no"
    events = [e for e in raw.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    assert '"usage"' not in raw  # only with stream_options.include_usage


def test_tokens_arrive_as_they_are_made(sdk, make_provider):
    provider = make_provider("openai", knobs="tokens=6&delay=80")
    started = time.monotonic()
    arrivals = []
    for chunk in sdk.chat.completions.create(
        model=model_of(provider), messages=user_says(), stream=True
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 6
    # Not buffered: the first token is out long before the last one is made (5 x 80 ms).
    assert arrivals[-1] - arrivals[0] > 0.3


def test_a_disconnect_before_the_first_token_is_metered_too(
    gateway_url, api_user, give_budget, api_token, make_provider, fake_upstream
):
    give_budget(api_user)  # so that the call holds budget, settled at the end
    provider = make_provider("openai", knobs="ttft=3000")
    impatient = openai.OpenAI(
        base_url=f"{gateway_url}/v1", api_key=api_token[1], max_retries=0, timeout=0.3
    )
    with pytest.raises(openai.APITimeoutError):
        impatient.chat.completions.create(
            model=model_of(provider), messages=user_says(), stream=True
        )
    assert fake_upstream.wait_for(lambda: fake_upstream.early_closes == 1, timeout=5)
    record = wait_for(lambda: UsageRecord.objects.filter(outcome="cancelled").first())
    assert record.output_tokens == 0
    assert wait_for(lambda: Reservation.objects.filter(status="settled").exists())


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_a_cached_answer_is_served_and_metered_as_a_cache_hit(sdk, make_provider, stream):
    provider = make_provider("openai", knobs="tokens=4", cache_responses=True)
    texts = []
    for _ in range(2):
        response = sdk.chat.completions.create(
            model=model_of(provider), messages=user_says(), temperature=0, stream=stream
        )
        if stream:
            texts.append("".join(c.choices[0].delta.content or "" for c in response if c.choices))
        else:
            texts.append(response.choices[0].message.content)
    assert texts == [expected_text(4)] * 2
    hits = list(UsageRecord.objects.order_by("created_at").values_list("cache_hit", flat=True))
    assert hits == [False, True]
