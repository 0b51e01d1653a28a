"""The fake upstream speaks both wire formats well enough for the real SDKs, without warnings."""

from __future__ import annotations

import asyncio
import gc
import json
import time
import warnings

import anthropic
import httpx2
import openai
import pytest

from providers.fake_upstream import FAKE_MODELS, Knobs
from tests.providers.fake_helpers import TEST_KEY

MESSAGES = [{"role": "user", "content": "Say something"}]
EXPECTED = "".join(Knobs().text_tokens())


# Clients made during one `run`, closed before its loop ends (so no "unclosed" warnings).
_open_clients: list[openai.AsyncOpenAI | anthropic.AsyncAnthropic] = []


def openai_client(fake, key=TEST_KEY, knobs=""):
    client = openai.AsyncOpenAI(api_key=key, base_url=fake.openai_base_url(knobs), max_retries=0)
    _open_clients.append(client)
    return client


def anthropic_client(fake, key=TEST_KEY, knobs=""):
    client = anthropic.AsyncAnthropic(
        api_key=key, base_url=fake.anthropic_base_url(knobs), max_retries=0
    )
    _open_clients.append(client)
    return client


def run(coro):
    async def main():
        try:
            return await coro
        finally:
            while _open_clients:
                await _open_clients.pop().close()

    return asyncio.run(main())


def run_without_warnings(coro):
    # Garbage of earlier tests (an unclosed connection found by the collector) warns
    # when it is collected; collect it first so that only this call's warnings count.
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = run(coro)
    assert [str(w.message) for w in caught] == []
    return value


@pytest.mark.parametrize("include_usage", [True, False])
def test_openai_stream(fake_upstream, include_usage):
    async def go():
        options = {"stream_options": {"include_usage": True}} if include_usage else {}
        stream = await openai_client(fake_upstream).chat.completions.create(
            model="fake-model", messages=MESSAGES, stream=True, **options
        )
        return [chunk async for chunk in stream]

    chunks = run_without_warnings(go())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == EXPECTED
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    if include_usage:
        assert chunks[-1].choices == []
        assert chunks[-1].usage.completion_tokens == 12
    else:
        assert all(c.usage is None for c in chunks)


def test_openai_complete_and_length_limit(fake_upstream):
    async def go():
        return await openai_client(fake_upstream).chat.completions.create(
            model="fake-model?cached=3&reasoning=2", messages=MESSAGES, max_tokens=4
        )

    response = run_without_warnings(go())
    assert response.choices[0].message.content == "".join(Knobs().text_tokens(4))
    assert response.choices[0].finish_reason == "length"
    assert response.usage.completion_tokens == 4
    assert response.usage.prompt_tokens_details.cached_tokens == 3
    assert response.usage.completion_tokens_details.reasoning_tokens == 2


def test_anthropic_stream_events(fake_upstream):
    async def go():
        stream = await anthropic_client(fake_upstream).messages.create(
            model="fake-model?tokens=3&cached=5", max_tokens=100, messages=MESSAGES, stream=True
        )
        return [event async for event in stream]

    events = run_without_warnings(go())
    assert [e.type for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == "".join(
        Knobs().text_tokens(3)
    )
    assert events[0].message.usage.cache_read_input_tokens == 5
    assert events[-2].usage.output_tokens == 3  # cumulative
    assert events[-2].delta.stop_reason == "end_turn"


def test_anthropic_stream_sends_ping(fake_upstream):
    async def go():
        async with httpx2.AsyncClient() as client:
            response = await client.post(
                f"{fake_upstream.url}/v1/messages",
                headers={"x-api-key": TEST_KEY, "anthropic-version": "2023-06-01"},
                json={"model": "fake-model", "max_tokens": 5, "messages": MESSAGES, "stream": True},
            )
            return response.text

    body = asyncio.run(go())
    assert "event: ping" in body
    assert body.rstrip().endswith('data: {"type":"message_stop"}')


def test_anthropic_complete(fake_upstream):
    async def go():
        return await anthropic_client(fake_upstream).messages.create(
            model="fake-model", max_tokens=2, messages=MESSAGES
        )

    message = run_without_warnings(go())
    assert message.content[0].text == "".join(Knobs().text_tokens(2))
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 2


def test_models_lists_in_both_shapes(fake_upstream):
    async def go():
        openai_ids = [m.id async for m in openai_client(fake_upstream).models.list()]
        anthropic_ids = [m.id async for m in anthropic_client(fake_upstream).models.list()]
        return openai_ids, anthropic_ids

    openai_ids, anthropic_ids = run_without_warnings(go())
    assert openai_ids == anthropic_ids == list(FAKE_MODELS)


def test_anthropic_in_stream_error_event(fake_upstream):
    async def go():
        stream = await anthropic_client(fake_upstream).messages.create(
            model="fake-model?fault=error&after=2", max_tokens=100, messages=MESSAGES, stream=True
        )
        return [event async for event in stream]

    with pytest.raises(anthropic.APIStatusError) as raised:
        run(go())
    assert raised.value.body["error"]["type"] == "api_error"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer sk-this-is-invalid"}, 401),
        ({"x-api-key": "sk-invalid-key", "anthropic-version": "2023-06-01"}, 401),
        ({"Authorization": "Bearer sk-fine"}, 200),
        ({"x-api-key": "sk-fine", "anthropic-version": "2023-06-01"}, 200),
    ],
)
def test_auth_is_checked(fake_upstream, headers, status):
    response = httpx2.get(f"{fake_upstream.url}/v1/models", headers=headers)
    assert response.status_code == status


def test_error_bodies_use_each_providers_shape(fake_upstream):
    openai_error = httpx2.get(
        f"{fake_upstream.url}/knobs/fault=429&retry_after=2&retry_after_ms=1500/v1/models",
        headers={"Authorization": "Bearer sk-fine"},
    )
    assert openai_error.status_code == 429
    assert openai_error.headers["retry-after"] == "2"
    assert openai_error.headers["retry-after-ms"] == "1500"
    assert openai_error.json()["error"]["code"] == "rate_limit_exceeded"
    overloaded = httpx2.get(
        f"{fake_upstream.url}/knobs/fault=529/v1/models",
        headers={"x-api-key": "sk-fine", "anthropic-version": "2023-06-01"},
    )
    assert overloaded.status_code == 529
    assert overloaded.json()["error"]["type"] == "overloaded_error"


def test_unknown_knob_is_a_bad_request(fake_upstream):
    response = httpx2.get(
        f"{fake_upstream.url}/knobs/bogus=1/v1/models", headers={"Authorization": "Bearer k"}
    )
    assert response.status_code == 400


def test_records_requests_without_keys(fake_upstream):
    httpx2.get(f"{fake_upstream.url}/v1/models", headers={"Authorization": f"Bearer {TEST_KEY}"})
    (recorded,) = fake_upstream.requests
    assert recorded.path == "/v1/models"
    assert recorded.auth_scheme == "bearer"
    assert TEST_KEY not in str(recorded)
    assert fake_upstream.calls == 1


def test_time_to_first_token_knob(fake_upstream):
    async def go():
        stream = await openai_client(fake_upstream).chat.completions.create(
            model="fake-model?ttft=150&tokens=2", messages=MESSAGES, stream=True
        )
        started = time.monotonic()
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                return time.monotonic() - started
        return None

    assert run(go()) >= 0.14


def test_closing_a_stream_early_is_recorded(fake_upstream):
    async def go():
        stream = await openai_client(fake_upstream).chat.completions.create(
            model="fake-model?delay=50&tokens=50", messages=MESSAGES, stream=True
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                break
        await stream.close()

    run(go())
    assert fake_upstream.wait_for(lambda: fake_upstream.early_closes == 1)


def test_a_recursive_schema_is_answered_with_a_finite_instance(fake_upstream):
    # A tree node whose children are nodes: real APIs accept it, and the fake used to
    # recurse until it crashed with a 500.
    node = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "child": {"$ref": "#/$defs/node"}},
    }
    root = {"root": {"$ref": "#/$defs/node"}}
    schema = {"type": "object", "$defs": {"node": node}, "properties": root}

    async def go():
        return await openai_client(fake_upstream).chat.completions.create(
            model="fake-model",
            messages=MESSAGES,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "tree", "schema": schema},
            },
        )

    completion = run_without_warnings(go())
    assert json.loads(completion.choices[0].message.content) == {
        "root": {"name": "switchboard", "child": {}}
    }
