"""Tool calling through the adapters and the engine, over the real SDKs to the fake
upstream: calls streamed in pieces and whole, results sent back in each wire format
(Anthropic's thinking blocks kept before its tool_use blocks), requests stored and
cached with their tools, and what a cut-off call is metered as."""

from __future__ import annotations

import json

import pytest

from providers import engine
from providers.adapters import get_adapter
from providers.adapters.base import (
    ChatMessage,
    GenerationRequest,
    GenerationResult,
    NamedTool,
    ReasoningPart,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
    merge_turns,
)
from providers.cache import response_key
from providers.errors import ErrorKind
from providers.fake_upstream.wire import fake_signature
from tests.providers.fake_helpers import fake_provider, generation_calls, run

pytestmark = pytest.mark.django_db

KINDS = ["openai", "anthropic"]
WEATHER = ToolSpec(
    "get_weather",
    "The forecast for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
CLOCK = ToolSpec("get_time")
ARGUMENTS = {"city": "switchboard"}  # what the fake makes up from WEATHER's schema


def ask_with_tools(*messages: ChatMessage, **params: object) -> GenerationRequest:
    params.setdefault("tools", (WEATHER, CLOCK))
    return GenerationRequest(
        model="fake-model",
        messages=messages or (ChatMessage.of_text("user", "Weather in Paris?"),),
        **params,  # type: ignore[arg-type]
    )


async def gather(items) -> tuple[list[TextDelta], list[ToolCallDelta], GenerationResult]:
    texts, calls, result = [], [], None
    async for item in items:
        assert result is None, "nothing may follow the result"
        if isinstance(item, TextDelta):
            texts.append(item)
        elif isinstance(item, ToolCallDelta):
            calls.append(item)
        elif isinstance(item, GenerationResult):
            result = item
    assert result is not None
    return texts, calls, result


def _bodies(fake_upstream) -> list[dict]:
    return [
        r.body for r in fake_upstream.requests if r.path in ("/v1/messages", "/v1/chat/completions")
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_a_streamed_call_arrives_in_pieces_and_whole_in_the_result(fake_upstream, kind):
    adapter = get_adapter(fake_provider(fake_upstream, kind))
    texts, pieces, result = run(gather(adapter.stream(ask_with_tools())))
    assert result.ok, result.error
    assert texts == []
    assert result.finish_reason == "tool_calls"
    (call,) = result.tool_calls
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == ARGUMENTS
    # The first piece names the call; the rest carry its arguments, several of them.
    assert (pieces[0].index, pieces[0].id, pieces[0].name) == (0, call.id, "get_weather")
    assert len(pieces) > 2
    assert all((p.index, p.id, p.name) == (0, "", "") for p in pieces[1:])
    assert "".join(p.arguments_fragment for p in pieces) == call.arguments
    assert not result.usage.estimated


@pytest.mark.parametrize("kind", KINDS)
def test_a_whole_answer_carries_its_calls(fake_upstream, kind):
    adapter = get_adapter(fake_provider(fake_upstream, kind, knobs="parallel=2"))
    result = run(adapter.complete(ask_with_tools()))
    assert result.ok, result.error
    assert result.text == ""
    assert result.finish_reason == "tool_calls"
    assert [c.name for c in result.tool_calls] == ["get_weather", "get_time"]
    assert [json.loads(c.arguments) for c in result.tool_calls] == [ARGUMENTS, {}]


def _loop(call: ToolCallPart) -> tuple[ChatMessage, ...]:
    return (
        ChatMessage.of_text("user", "Weather in Paris?"),
        ChatMessage("assistant", (call,)),
        ChatMessage("user", (ToolResultPart(call.id, "Sunny"),)),
    )


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_tool_result_goes_back_and_the_model_answers_in_text(fake_upstream, kind, stream):
    adapter = get_adapter(fake_provider(fake_upstream, kind, prompt_caching=False))
    call = ToolCallPart("call_7", "get_weather", '{"city": "Paris"}')
    request = ask_with_tools(*_loop(call))
    if stream:
        _, pieces, result = run(gather(adapter.stream(request)))
        assert pieces == []
    else:
        result = run(adapter.complete(request))
    assert result.ok, result.error
    assert result.text == "I read the tool results: Sunny"
    assert result.finish_reason == "stop"
    (body,) = _bodies(fake_upstream)
    if kind == "openai":
        assert body["messages"][1:] == [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_7",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_7", "content": "Sunny"},
        ]
    else:
        assert body["messages"][1:] == [
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "call_7",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "call_7", "content": "Sunny"}],
            },
        ]


def test_consecutive_results_make_one_anthropic_user_turn(fake_upstream):
    adapter = get_adapter(fake_provider(fake_upstream, "anthropic", prompt_caching=False))
    calls = (ToolCallPart("a", "get_weather", "{}"), ToolCallPart("b", "get_time", "{}"))
    request = ask_with_tools(
        ChatMessage.of_text("user", "Both?"),
        ChatMessage("assistant", calls),
        ChatMessage("user", (ToolResultPart("a", "Rain"),)),
        ChatMessage("user", (ToolResultPart("b", "9"),)),
        ChatMessage.of_text("user", "Thanks."),
    )
    result = run(adapter.complete(request))
    assert result.ok, result.error
    (body,) = _bodies(fake_upstream)
    assert body["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "a", "content": "Rain"},
            {"type": "tool_result", "tool_use_id": "b", "content": "9"},
            {"type": "text", "text": "Thanks."},
        ],
    }
    assert len(body["messages"]) == 3


def test_merge_turns_puts_no_text_between_tool_results():
    turns = merge_turns(
        [
            ChatMessage("user", (ToolResultPart("a", "1"),)),
            ChatMessage("user", (ToolResultPart("b", "2"),)),
            ChatMessage.of_text("user", "more"),
            ChatMessage.of_text("user", "again"),
        ]
    )
    (turn,) = turns
    assert turn.parts == (
        ToolResultPart("a", "1"),
        ToolResultPart("b", "2"),
        TextPart("more"),
        TextPart("\n\n"),
        TextPart("again"),
    )


def test_anthropic_refuses_a_result_that_answers_no_call(fake_upstream):
    adapter = get_adapter(fake_provider(fake_upstream, "anthropic"))
    request = ask_with_tools(
        ChatMessage.of_text("user", "Weather?"),
        ChatMessage.of_text("assistant", "Let me see."),
        ChatMessage("user", (ToolResultPart("toolu_nothing", "Sunny"),)),
    )
    result = run(adapter.complete(request))
    assert result.error is not None
    assert result.error.kind == ErrorKind.BAD_REQUEST


def test_anthropic_thinking_goes_back_before_the_tool_use_with_its_signature(fake_upstream):
    provider = fake_provider(fake_upstream, "anthropic", knobs="think=5", prompt_caching=False)
    adapter = get_adapter(provider)
    first = ask_with_tools(thinking_budget=1024)
    _, _, result = run(gather(adapter.stream(first)))
    assert result.ok, result.error
    (thought,) = result.reasoning
    assert thought.signature == fake_signature(thought.text)
    (call,) = result.tool_calls
    turn = ChatMessage("assistant", (*result.reasoning, *result.tool_calls))
    second = ask_with_tools(
        first.messages[0],
        turn,
        ChatMessage("user", (ToolResultPart(call.id, "Sunny"),)),
        thinking_budget=1024,
    )
    answer = run(adapter.complete(second))
    assert answer.ok, answer.error  # the fake refuses a thinking block it did not sign
    blocks = _bodies(fake_upstream)[-1]["messages"][1]["content"]
    assert [b["type"] for b in blocks] == ["thinking", "tool_use"]
    assert blocks[0]["signature"] == thought.signature


@pytest.mark.parametrize(
    ("choice", "parallel", "openai_sent", "anthropic_sent"),
    [
        ("required", None, {"tool_choice": "required"}, {"tool_choice": {"type": "any"}}),
        (
            NamedTool("get_time"),
            False,
            {
                "tool_choice": {"type": "function", "function": {"name": "get_time"}},
                "parallel_tool_calls": False,
            },
            {
                "tool_choice": {
                    "type": "tool",
                    "name": "get_time",
                    "disable_parallel_tool_use": True,
                }
            },
        ),
        (
            "none",
            True,
            {"tool_choice": "none", "parallel_tool_calls": True},
            {"tool_choice": {"type": "none"}},
        ),
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_tool_choice_and_parallel_calls_in_each_format(
    fake_upstream, kind, choice, parallel, openai_sent, anthropic_sent
):
    adapter = get_adapter(fake_provider(fake_upstream, kind))
    run(adapter.complete(ask_with_tools(tool_choice=choice, parallel_tool_calls=parallel)))
    (body,) = _bodies(fake_upstream)
    wanted = openai_sent if kind == "openai" else anthropic_sent
    assert {k: body[k] for k in ("tool_choice", "parallel_tool_calls") if k in body} == wanted


def test_a_request_with_tools_survives_storage():
    request = ask_with_tools(
        ChatMessage("assistant", (ReasoningPart("hm", "sig"), ToolCallPart("c", "f", '{"a":1}'))),
        ChatMessage("user", (ToolResultPart("c", "done"),)),
        tool_choice=NamedTool("get_time"),
        parallel_tool_calls=False,
    )
    stored = json.loads(json.dumps(request.to_json()))
    assert GenerationRequest.from_json(stored) == request
    auto = ask_with_tools(tool_choice="auto")
    assert GenerationRequest.from_json(json.loads(json.dumps(auto.to_json()))) == auto


def test_tools_are_part_of_the_cache_key(fake_upstream):
    provider = fake_provider(fake_upstream, cache_responses=True)
    base = ask_with_tools(temperature=0)
    keys = {
        response_key(provider, request)
        for request in (
            base,
            ask_with_tools(temperature=0, tools=(WEATHER,)),
            ask_with_tools(temperature=0, tool_choice="required"),
            ask_with_tools(temperature=0, tool_choice=NamedTool("get_time")),
            ask_with_tools(temperature=0, parallel_tool_calls=False),
        )
    }
    assert len(keys) == 5


def test_a_cached_answer_replays_its_calls(fake_upstream):
    provider = fake_provider(fake_upstream, cache_responses=True)
    request = ask_with_tools(temperature=0)
    first = run(engine.generate(provider, request))
    calls = generation_calls(fake_upstream)
    _, pieces, again = run(gather(engine.stream_generation(provider, request)))
    assert generation_calls(fake_upstream) == calls
    assert again.cached
    assert again.tool_calls == first.tool_calls
    assert [(p.id, p.name, p.arguments_fragment) for p in pieces] == [
        (c.id, c.name, c.arguments) for c in first.tool_calls
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_a_call_cut_off_mid_stream_is_metered_as_estimated(fake_upstream, kind):
    provider = fake_provider(fake_upstream, kind, knobs="fault=drop&after=3")
    _, pieces, result = run(gather(engine.stream_generation(provider, ask_with_tools())))
    assert pieces
    assert result.error is not None
    assert result.usage.estimated
    assert result.usage.output_tokens > 0
    assert len(result.attempts) == 1, "a call already handed on is not made again"


def test_an_estimate_counts_the_tool_definitions_as_input():
    from providers.adapters.base import ChatMessage, GenerationRequest, ToolSpec
    from providers.adapters.common import estimate_usage

    plain = GenerationRequest(model="m", messages=(ChatMessage.of_text("user", "Hi"),))
    tool = ToolSpec("lookup", "d" * 4000, {"type": "object", "properties": {}})
    with_tools = GenerationRequest(model="m", messages=plain.messages, tools=(tool,))
    extra = (
        estimate_usage(with_tools, "", None).input_tokens
        - estimate_usage(plain, "", None).input_tokens
    )
    assert extra >= 1000  # 4,000 characters of description, at 4 a token
