"""Reasoning on /v1 with the official SDK: DeepSeek's reasoning_content passed through,
Anthropic's thinking as reasoning_content with signed thinking_blocks that a client can
send back, reasoning_effort for OpenAI models and as a thinking budget for Anthropic."""

from __future__ import annotations

import openai
import pytest

from tests.generation.gateway_helpers import *  # noqa: F403 (the fixtures)
from tests.generation.gateway_helpers import model_of, user_says
from tests.providers.fake_helpers import generation_calls

pytestmark = pytest.mark.django_db(transaction=True)


def _bodies(fake_upstream) -> list[dict]:
    return [r.body for r in fake_upstream.requests if r.method == "POST"]


def _extra(obj, name: str):
    return (obj.model_extra or {}).get(name)


def test_deepseek_reasoning_streams_as_reasoning_content_before_the_answer(sdk, make_provider):
    provider = make_provider("deepseek", knobs="think=5&tokens=3")
    stream = sdk.chat.completions.create(
        model=model_of(provider), messages=user_says(), stream=True
    )
    kinds, thought, answer = [], "", ""
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        if _extra(delta, "reasoning_content"):
            kinds.append("reasoning")
            thought += _extra(delta, "reasoning_content")
        if delta.content:
            kinds.append("content")
            answer += delta.content
    assert thought.strip()
    assert answer.strip()
    assert kinds.index("content") > kinds.index("reasoning")
    assert "content" not in kinds[: kinds.count("reasoning")], "all thought comes first"

    completion = sdk.chat.completions.create(model=model_of(provider), messages=user_says())
    message = completion.choices[0].message
    assert _extra(message, "reasoning_content") == thought
    assert _extra(message, "thinking_blocks") is None  # DeepSeek signs nothing
    assert completion.usage is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == 5


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_thinking_round_trips_with_its_signature(
    sdk, make_provider, fake_upstream, stream
):
    provider = make_provider("anthropic", knobs="think=4&tokens=3")
    model = model_of(provider)
    first = sdk.chat.completions.create(
        model=model, messages=user_says("2+2?"), reasoning_effort="low", stream=stream
    )
    if stream:
        thought, answer, blocks = "", "", None
        for chunk in first:
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta
            thought += _extra(delta, "reasoning_content") or ""
            answer += delta.content or ""
            blocks = _extra(delta, "thinking_blocks") or blocks
    else:
        message = first.choices[0].message
        thought, answer = _extra(message, "reasoning_content"), message.content
        blocks = _extra(message, "thinking_blocks")
    (sent,) = _bodies(fake_upstream)
    # reasoning_effort "low" is Anthropic's smallest thinking budget.
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert thought.strip()
    assert blocks == [
        {"type": "thinking", "thinking": thought, "signature": blocks[0]["signature"]}
    ]
    assert blocks[0]["signature"]

    history = [
        *user_says("2+2?"),
        {"role": "assistant", "content": answer, "thinking_blocks": blocks},
        *user_says("And 3+3?"),
    ]
    again = sdk.chat.completions.create(model=model, messages=history, reasoning_effort="low")
    assert again.choices[0].message.content
    sent_back = _bodies(fake_upstream)[-1]["messages"][1]["content"]
    # The fake refuses a block whose signature it did not make: this one went back intact.
    assert sent_back[0] == blocks[0]


def test_reasoning_effort_reaches_openai_models(sdk, make_provider, fake_upstream):
    provider = make_provider("openai", knobs="tokens=2")
    sdk.chat.completions.create(
        model=model_of(provider), messages=user_says(), reasoning_effort="high"
    )
    (sent,) = _bodies(fake_upstream)
    assert sent["reasoning_effort"] == "high"
    assert "thinking" not in sent


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"reasoning_effort": "max"}, "reasoning_effort"),
        (
            {"messages": [{"role": "user", "content": "x", "reasoning_content": "hm"}]},
            "messages[0].reasoning_content",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {
                        "role": "assistant",
                        "content": "y",
                        "thinking_blocks": [{"type": "thinking"}],
                    },
                    {"role": "user", "content": "z"},
                ]
            },
            "messages[1].thinking_blocks[0]",
        ),
        (
            {
                "messages": [
                    {"role": "assistant", "content": "y", "thinking_blocks": "signed"},
                    {"role": "user", "content": "z"},
                ]
            },
            "messages[0].thinking_blocks",
        ),
    ],
)
def test_bad_reasoning_input_is_400_naming_it(sdk, make_provider, fake_upstream, body, param):
    provider = make_provider("anthropic")
    request = {"messages": user_says(), **body}
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(
            model=model_of(provider),
            messages=request.pop("messages"),
            extra_body=request,
        )
    assert caught.value.param == param
    assert generation_calls(fake_upstream) == 0


def test_an_anthropic_agent_loop_with_thinking_sends_the_signed_thinking_back_first(
    sdk, make_provider, fake_upstream
):
    from tests.generation.test_gateway_tools import WEATHER

    provider = make_provider("anthropic", knobs="think=3&tokens=3")
    model, question = model_of(provider), user_says("Weather in Paris?")
    first = sdk.chat.completions.create(
        model=model, messages=question, tools=[WEATHER], reasoning_effort="low"
    )
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    blocks = _extra(message, "thinking_blocks")
    assert blocks
    assert blocks[0]["signature"]
    (call,) = message.tool_calls or []

    history = [
        *question,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [call.model_dump()],
            "thinking_blocks": blocks,
        },
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 C"},
    ]
    second = sdk.chat.completions.create(
        model=model, messages=history, tools=[WEATHER], reasoning_effort="low"
    )
    assert second.choices[0].message.content
    turn = _bodies(fake_upstream)[-1]["messages"][1]["content"]
    # Anthropic wants the thinking block, intact, before the tool_use it led to.
    assert [block["type"] for block in turn] == ["thinking", "tool_use"]
    assert turn[0]["signature"] == blocks[0]["signature"]


@pytest.mark.parametrize(("effort", "thinking"), [("none", None), ("xhigh", 8192)])
def test_openais_newer_efforts_reach_anthropic_as_a_budget_or_none(
    sdk, make_provider, fake_upstream, effort, thinking
):
    provider = make_provider("anthropic", knobs="tokens=2")
    sdk.chat.completions.create(
        model=model_of(provider), messages=user_says(), reasoning_effort=effort
    )
    (sent,) = _bodies(fake_upstream)
    expected = {"type": "enabled", "budget_tokens": thinking} if thinking else None
    assert sent.get("thinking") == expected
