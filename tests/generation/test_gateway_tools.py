"""Tool calling on /v1 with the official SDK, on an OpenAI-kind and an Anthropic-kind
provider: the two-step agent loop (streamed and not), parallel calls, tool_choice, what
goes upstream in each wire format, the 400s, and one usage record per call."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.generation.conftest import wait_for
from tests.generation.gateway_helpers import *  # noqa: F403 (the fixtures)
from tests.generation.gateway_helpers import model_of, user_says
from tests.providers.fake_helpers import generation_calls
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)

KINDS = ["openai", "anthropic"]
WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The forecast for a city.",
        "parameters": WEATHER_PARAMETERS,
    },
}
CLOCK = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}
# What the fake makes up from WEATHER_PARAMETERS (see providers/fake_upstream/structured.py).
WEATHER_ARGUMENTS = {"city": "switchboard", "days": 7}


def _sent(fake_upstream) -> list[dict[str, Any]]:
    """The bodies of the generation requests that went upstream, in order, without the
    prompt cache's breakpoints (Anthropic providers mark the last block for the cache)."""
    return [
        _unmarked(r.body)
        for r in fake_upstream.requests
        if r.path in ("/v1/chat/completions", "/v1/messages")
    ]


def _unmarked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _unmarked(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_unmarked(item) for item in value]
    return value


def _ask(sdk, provider, messages, *, stream: bool, **params) -> dict[str, Any]:
    """One call, streamed or not, as (content, tool_calls, finish_reason); a stream is
    put together from its chunks as a client does, checking OpenAI's chunk shapes."""
    if not stream:
        completion = sdk.chat.completions.create(
            model=model_of(provider), messages=messages, **params
        )
        choice = completion.choices[0]
        calls = [
            {"id": c.id, "type": c.type, "function": c.function.model_dump()}
            for c in choice.message.tool_calls or ()
        ]
        return {
            "content": choice.message.content,
            "tool_calls": calls,
            "finish_reason": choice.finish_reason,
        }
    chunks = sdk.chat.completions.create(
        model=model_of(provider), messages=messages, stream=True, **params
    )
    content, calls, finish = "", [], None
    for chunk in chunks:
        for choice in chunk.choices:
            content += choice.delta.content or ""
            finish = choice.finish_reason or finish
            for piece in choice.delta.tool_calls or ():
                if piece.index == len(calls):
                    # A call's first piece: its id, type and name.
                    assert piece.id
                    assert piece.type == "function"
                    assert piece.function.name
                    calls.append(
                        {
                            "id": piece.id,
                            "type": "function",
                            "function": {"name": piece.function.name, "arguments": ""},
                        }
                    )
                else:
                    assert piece.id is None
                    assert piece.function.name is None
                calls[piece.index]["function"]["arguments"] += piece.function.arguments or ""
    return {"content": content or None, "tool_calls": calls, "finish_reason": finish}


def _assistant(answer: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": answer["content"], "tool_calls": answer["tool_calls"]}


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("kind", KINDS)
def test_the_agent_loop_calls_a_tool_then_answers_from_its_result(
    sdk, make_provider, fake_upstream, kind, stream
):
    provider = make_provider(kind)
    messages: list[dict[str, Any]] = user_says("What is the weather in Paris?")
    first = _ask(sdk, provider, messages, stream=stream, tools=[WEATHER])
    assert first["finish_reason"] == "tool_calls"
    assert first["content"] is None
    (call,) = first["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == WEATHER_ARGUMENTS

    messages += [
        _assistant(first),
        {"role": "tool", "tool_call_id": call["id"], "content": "Sunny, 21C"},
    ]
    second = _ask(sdk, provider, messages, stream=stream, tools=[WEATHER])
    assert second["finish_reason"] == "stop"
    assert second["tool_calls"] == []
    assert second["content"] == "I read the tool results: Sunny, 21C"

    asked, answered = _sent(fake_upstream)
    if kind == "openai":
        assert asked["tools"] == [WEATHER]
        assert "tool_choice" not in asked
        assert "parallel_tool_calls" not in asked
        assert answered["messages"][1:] == [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": "Sunny, 21C"},
        ]
    else:
        assert asked["tools"] == [
            {
                "name": "get_weather",
                "description": "The forecast for a city.",
                "input_schema": WEATHER_PARAMETERS,
            }
        ]
        assert "tool_choice" not in asked
        assert answered["messages"][1:] == [
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": call["id"],
                        "name": "get_weather",
                        "input": WEATHER_ARGUMENTS,
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call["id"], "content": "Sunny, 21C"}
                ],
            },
        ]
    # One usage record per call, each with the tokens the provider reported.
    records = list(UsageRecord.objects.order_by("created_at"))
    assert [r.outcome for r in records] == ["ok", "ok"]
    assert all(r.output_tokens > 0 and not r.tokens_estimated for r in records)


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("kind", KINDS)
def test_parallel_tool_calls_are_answered_together(sdk, make_provider, fake_upstream, kind, stream):
    provider = make_provider(kind, knobs="parallel=2")
    messages: list[dict[str, Any]] = user_says("Weather and time?")
    first = _ask(sdk, provider, messages, stream=stream, tools=[WEATHER, CLOCK])
    assert first["finish_reason"] == "tool_calls"
    weather, clock = first["tool_calls"]
    assert (weather["function"]["name"], clock["function"]["name"]) == ("get_weather", "get_time")
    assert json.loads(clock["function"]["arguments"]) == {}
    assert weather["id"] != clock["id"]

    messages += [
        _assistant(first),
        {"role": "tool", "tool_call_id": weather["id"], "content": "Rain"},
        # Content as a list of text parts, which OpenAI takes on a tool message too.
        {"role": "tool", "tool_call_id": clock["id"], "content": [{"type": "text", "text": "9"}]},
    ]
    second = _ask(sdk, provider, messages, stream=stream, tools=[WEATHER, CLOCK])
    assert second["content"] == "I read the tool results: Rain | 9"
    answered = _sent(fake_upstream)[-1]
    if kind == "anthropic":
        # Both results in the one user turn after the calls, as the API requires.
        assert answered["messages"][-1] == {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": weather["id"], "content": "Rain"},
                {"type": "tool_result", "tool_use_id": clock["id"], "content": "9"},
            ],
        }
        assert [b["type"] for b in answered["messages"][-2]["content"]] == ["tool_use"] * 2
    else:
        assert [m["role"] for m in answered["messages"]] == ["user", "assistant", "tool", "tool"]


@pytest.mark.parametrize("kind", KINDS)
def test_parallel_tool_calls_false_makes_one_call(sdk, make_provider, fake_upstream, kind):
    provider = make_provider(kind, knobs="parallel=2")
    answer = _ask(
        sdk,
        provider,
        user_says(),
        stream=False,
        tools=[WEATHER, CLOCK],
        parallel_tool_calls=False,
    )
    assert len(answer["tool_calls"]) == 1
    (sent,) = _sent(fake_upstream)
    if kind == "openai":
        assert sent["parallel_tool_calls"] is False
    else:
        assert sent["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


# tool_choice as the client sends it -> (what OpenAI's format sends, what Anthropic's
# does, the function called or None for a text answer)
CHOICES = [
    ("auto", "auto", {"type": "auto"}, "get_weather"),
    ("required", "required", {"type": "any"}, "get_weather"),
    ("none", "none", {"type": "none"}, None),
    (
        {"type": "function", "function": {"name": "get_time"}},
        {"type": "function", "function": {"name": "get_time"}},
        {"type": "tool", "name": "get_time"},
        "get_time",
    ),
]


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("choice", "openai_sent", "anthropic_sent", "called"), CHOICES)
def test_tool_choice_is_honoured(
    sdk, make_provider, fake_upstream, kind, stream, choice, openai_sent, anthropic_sent, called
):
    provider = make_provider(kind, knobs="tokens=3")
    answer = _ask(
        sdk, provider, user_says(), stream=stream, tools=[WEATHER, CLOCK], tool_choice=choice
    )
    (sent,) = _sent(fake_upstream)
    assert sent["tool_choice"] == (openai_sent if kind == "openai" else anthropic_sent)
    if called is None:
        assert answer["finish_reason"] == "stop"
        assert answer["tool_calls"] == []
        assert answer["content"]
    else:
        assert answer["finish_reason"] == "tool_calls"
        assert [c["function"]["name"] for c in answer["tool_calls"]] == [called]


class Forecast(BaseModel):
    city: str
    days: int


@pytest.mark.parametrize("kind", KINDS)
def test_the_sdk_stream_helper_parses_a_pydantic_tool_call(sdk, make_provider, kind):
    provider = make_provider(kind)
    with sdk.chat.completions.stream(
        model=model_of(provider),
        messages=user_says("Forecast?"),
        tools=[openai.pydantic_function_tool(Forecast)],
    ) as stream:
        completion = stream.get_final_completion()
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.parsed_arguments == Forecast(city="switchboard", days=7)


@pytest.mark.parametrize("kind", KINDS)
def test_a_streamed_tool_call_the_client_abandons_is_metered(
    sdk, make_provider, fake_upstream, kind
):
    # Long arguments in many pieces, slowly: the client leaves after the first.
    wide = {
        "type": "object",
        "properties": {f"field_{i}": {"type": "string"} for i in range(40)},
    }
    tool = {"type": "function", "function": {"name": "fill_form", "parameters": wide}}
    provider = make_provider(kind, knobs="delay=20")
    stream = sdk.chat.completions.create(
        model=model_of(provider), messages=user_says(), tools=[tool], stream=True
    )
    for chunk in stream:
        if any(c.delta.tool_calls for c in chunk.choices):
            break
    stream.close()
    assert fake_upstream.wait_for(lambda: fake_upstream.early_closes == 1, timeout=5)
    record = wait_for(lambda: UsageRecord.objects.filter(outcome="cancelled").first())
    assert record.source == "api"
    assert record.tokens_estimated
    assert UsageRecord.objects.count() == 1


def _history(call_id: str = "call_1") -> list[dict[str, Any]]:
    return [
        *user_says(),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
    ]


# (what the request sets, the param the 400 names)
def _function(**spec: Any) -> dict[str, Any]:
    return {"type": "function", "function": spec}


BAD_REQUESTS = [
    ({"tools": [_function(name="get weather")]}, "tools[0].function.name"),
    ({"tools": [_function(name="x" * 65)]}, "tools[0].function.name"),
    (
        {"tools": [_function(name="f", parameters=["city"])]},
        "tools[0].function.parameters",
    ),
    (
        {"tools": [_function(name="f", parameters={"type": "array"})]},
        "tools[0].function.parameters",
    ),
    ({"tools": [{"type": "code_interpreter"}]}, "tools[0].type"),
    ({"tools": [WEATHER, {"type": "custom", "custom": {"name": "g"}}]}, "tools[1].type"),
    (
        {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
        "tool_choice",
    ),
    ({"tools": [WEATHER], "tool_choice": "always"}, "tool_choice"),
    ({"tool_choice": "auto"}, "tool_choice"),
    ({"tools": [WEATHER], "parallel_tool_calls": "yes"}, "parallel_tool_calls"),
    (
        {"messages": [*_history(), {"role": "tool", "tool_call_id": "call_2", "content": "x"}]},
        "messages[2].tool_call_id",
    ),
    (
        {"messages": [*user_says(), {"role": "tool", "tool_call_id": "call_1", "content": "x"}]},
        "messages[1].tool_call_id",
    ),
    ({"messages": [*_history(), {"role": "tool", "content": "x"}]}, "messages[2].tool_call_id"),
    (
        {"messages": [{"role": "user", "content": "hi", "tool_calls": []}]},
        "messages[0].tool_calls",
    ),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("change", "param"), BAD_REQUESTS)
def test_bad_tool_requests_are_refused_naming_the_parameter(
    sdk, make_provider, fake_upstream, kind, change, param
):
    provider = make_provider(kind)
    body = {"messages": user_says(), **change}
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model=model_of(provider), **body)
    assert caught.value.param == param
    assert caught.value.body["message"]
    assert generation_calls(fake_upstream) == 0
    assert not UsageRecord.objects.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_an_assistant_tool_call_with_text_goes_back_with_its_text(
    sdk, make_provider, fake_upstream, kind
):
    provider = make_provider(kind)
    messages = _history()
    messages[1]["content"] = "Let me look."
    messages.append({"role": "tool", "tool_call_id": "call_1", "content": "Fog"})
    answer = _ask(sdk, provider, messages, stream=False, tools=[WEATHER])
    assert answer["content"] == "I read the tool results: Fog"
    (sent,) = _sent(fake_upstream)
    if kind == "openai":
        assert sent["messages"][1]["content"] == "Let me look."
    else:
        assert sent["messages"][1]["content"] == [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}},
        ]


@pytest.mark.parametrize("kind", KINDS)
def test_the_readme_loop_sends_the_sdk_message_back_as_dumped(sdk, make_provider, kind):
    provider = make_provider(kind)
    messages: list[Any] = user_says("Weather in Paris?")
    first = sdk.chat.completions.create(
        model=model_of(provider), messages=messages, tools=[WEATHER]
    )
    message = first.choices[0].message
    messages += [
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "Sunny"},
    ]
    second = sdk.chat.completions.create(
        model=model_of(provider), messages=messages, tools=[WEATHER]
    )
    assert second.choices[0].message.content == "I read the tool results: Sunny"
    assert second.choices[0].message.tool_calls is None


def test_arguments_that_are_no_json_object_are_a_400_for_anthropic_only(
    sdk, make_provider, fake_upstream
):
    history = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "not json"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
    ]
    anthropic = make_provider("anthropic")
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model=model_of(anthropic), messages=history, tools=[WEATHER])
    assert caught.value.param == "messages"
    assert "'call_1' are not a JSON object" in caught.value.message
    assert not [r for r in fake_upstream.requests if r.method == "POST"]
    # OpenAI takes the text back as it came.
    openai_kind = make_provider("openai")
    sdk.chat.completions.create(model=model_of(openai_kind), messages=history, tools=[WEATHER])
    sent = [r.body for r in fake_upstream.requests if r.method == "POST"][-1]
    assert sent["messages"][1]["tool_calls"][0]["function"]["arguments"] == "not json"


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_turn_with_text_and_a_tool_call_carries_both(sdk, make_provider, kind, stream):
    provider = make_provider(kind, knobs="preamble=3")
    answer = _ask(
        sdk, provider, [{"role": "user", "content": "Weather?"}], stream=stream, tools=[WEATHER]
    )
    assert answer["finish_reason"] == "tool_calls"
    assert len(answer["content"].split()) == 3  # the words said before the call
    (call,) = answer["tool_calls"]
    assert json.loads(call["function"]["arguments"]) == WEATHER_ARGUMENTS


def test_tool_definitions_count_against_the_prompt_limit(
    sdk, make_provider, fake_upstream, settings
):
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "MAX_PROMPT_CHARS": 2000}
    provider = make_provider("openai")
    huge = {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "x" * 5000,
            "parameters": {"type": "object", "properties": {}},
        },
    }
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(
            model=model_of(provider), messages=[{"role": "user", "content": "Hi"}], tools=[huge]
        )
    assert "too long" in caught.value.message
    assert not [r for r in fake_upstream.requests if r.method == "POST"]
