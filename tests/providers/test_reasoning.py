"""Reasoning on both wire formats, through the real SDKs to the fake upstream: DeepSeek's
`reasoning_content` and Anthropic's extended thinking (signed and redacted blocks), the
thinking budget a request asks for, and the engine carrying reasoning through retries,
interruptions, estimates and the response cache."""

from __future__ import annotations

import anthropic
import pytest

from providers import engine
from providers.adapters import get_adapter
from providers.adapters.base import (
    ChatMessage,
    GenerationRequest,
    ReasoningDelta,
    ReasoningPart,
    TextDelta,
    TextPart,
)
from providers.adapters.common import estimate_tokens
from providers.errors import ErrorKind
from providers.fake_upstream import Knobs
from providers.fake_upstream.wire import REDACTED_DATA, fake_signature
from providers.validation import InvalidRequest
from tests.providers.fake_helpers import (
    TEST_KEY,
    ask,
    collect_with_reasoning,
    fake_provider,
    generation_calls,
    run,
)

pytestmark = pytest.mark.django_db


def thought(count: int, seed: int = 0) -> str:
    return "".join(Knobs(think=count, seed=seed).thought_tokens())


def answer(count: int, seed: int = 0) -> str:
    return "".join(Knobs(tokens=count, seed=seed).text_tokens())


def _generations(fake_upstream) -> list[dict]:
    return [
        r.body for r in fake_upstream.requests if r.path in ("/v1/messages", "/v1/chat/completions")
    ]


# --- DeepSeek: reasoning_content on the OpenAI format ------------------------------------


def test_deepseek_streams_its_reasoning_before_the_answer(fake_upstream):
    adapter = get_adapter(fake_provider(fake_upstream, "deepseek", knobs="think=6&tokens=4"))
    thoughts, deltas, result = run(collect_with_reasoning(adapter.stream(ask())))
    assert result.ok, result.error
    assert len(thoughts) == 6, "each reasoning token arrives as it comes"
    assert "".join(thoughts) == result.reasoning_text == thought(6)
    assert "".join(deltas) == result.text == answer(4)
    # One block, unsigned: DeepSeek's reasoning never goes back.
    assert result.reasoning == (ReasoningPart(thought(6)),)
    assert not result.reasoning[0].returnable
    assert result.usage.reasoning_tokens == 6
    assert result.usage.output_tokens == 10  # reasoning is billed as output
    assert not result.usage.estimated


def test_deepseek_reasoning_arrives_whole_when_not_streamed(fake_upstream):
    adapter = get_adapter(fake_provider(fake_upstream, "deepseek", knobs="think=5&tokens=3"))
    result = run(adapter.complete(ask()))
    assert result.ok, result.error
    assert result.reasoning_text == thought(5)
    assert result.text == answer(3)
    assert result.usage.reasoning_tokens == 5
    assert result.usage.output_tokens == 8


def test_openai_format_ignores_the_thinking_budget(fake_upstream):
    adapter = get_adapter(fake_provider(fake_upstream, "deepseek", knobs="think=2"))
    thoughts, _, result = run(collect_with_reasoning(adapter.stream(ask(thinking_budget=2048))))
    assert result.ok
    assert "".join(thoughts) == thought(2)
    body = _generations(fake_upstream)[0]
    assert "thinking" not in body
    assert not type(adapter).supports_thinking_budget


# --- Anthropic: extended thinking -------------------------------------------------------


def test_anthropic_streams_a_signed_thinking_block_when_asked(fake_upstream):
    adapter = get_adapter(fake_provider(fake_upstream, "anthropic", knobs="think=6&tokens=4"))
    thoughts, deltas, result = run(
        collect_with_reasoning(adapter.stream(ask(thinking_budget=2048)))
    )
    assert result.ok, result.error
    assert len(thoughts) == 6
    assert "".join(thoughts) == thought(6)
    assert "".join(deltas) == result.text == answer(4)
    # The signature_delta is kept with its block, to go back on the next turn.
    assert result.reasoning == (ReasoningPart(thought(6), fake_signature(thought(6))),)
    body = _generations(fake_upstream)[0]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    # Thinking is output: Anthropic's output_tokens include it.
    assert result.usage.output_tokens == 10
    assert not result.usage.estimated


def test_anthropic_signed_thinking_when_not_streamed(fake_upstream):
    adapter = get_adapter(fake_provider(fake_upstream, "anthropic", knobs="think=4&tokens=2"))
    result = run(adapter.complete(ask(thinking_budget=1024)))
    assert result.ok, result.error
    assert result.reasoning == (ReasoningPart(thought(4), fake_signature(thought(4))),)
    assert result.text == answer(2)
    assert result.usage.output_tokens == 6


def test_anthropic_thinks_only_when_the_request_asks(fake_upstream):
    adapter = get_adapter(fake_provider(fake_upstream, "anthropic", knobs="think=6&tokens=4"))
    thoughts, deltas, result = run(collect_with_reasoning(adapter.stream(ask())))
    assert result.ok
    assert thoughts == []
    assert result.reasoning == ()
    assert "".join(deltas) == answer(4)
    assert "thinking" not in _generations(fake_upstream)[0]
    assert result.usage.output_tokens == 4


def test_thinking_leaves_temperature_unset_and_max_tokens_above_the_budget(fake_upstream):
    adapter = get_adapter(fake_provider(fake_upstream, "anthropic", knobs="think=2&tokens=2"))
    # The fake, like the API, refuses a temperature other than 1 and a max_tokens not
    # above the budget: both requests are accepted.
    thinking = run(adapter.complete(ask(temperature=0.3, max_tokens=100, thinking_budget=2048)))
    plain = run(adapter.complete(ask(temperature=0.3, max_tokens=100)))
    assert thinking.ok, thinking.error
    assert plain.ok, plain.error
    with_thinking, without = _generations(fake_upstream)
    assert "temperature" not in with_thinking
    # The request's max_tokens stays room for the answer, on top of the budget.
    assert with_thinking["max_tokens"] == 2048 + 100
    assert without["temperature"] == 0.3
    assert without["max_tokens"] == 100
    # Left open, the answer gets the adapter's default room.
    run(adapter.complete(ask(thinking_budget=1024)))
    assert _generations(fake_upstream)[-1]["max_tokens"] == 1024 + 4096


def test_the_fake_refuses_thinking_as_the_api_does(fake_upstream):
    client = anthropic.Anthropic(
        api_key=TEST_KEY, base_url=fake_upstream.anthropic_base_url(""), max_retries=0
    )
    message = [{"role": "user", "content": "Hi"}]
    refused = {
        "max_tokens at the budget": {
            "max_tokens": 2048,
            "thinking": {"type": "enabled", "budget_tokens": 2048},
        },
        "budget under 1024": {
            "max_tokens": 4000,
            "thinking": {"type": "enabled", "budget_tokens": 500},
        },
        "temperature with thinking": {
            "max_tokens": 4000,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "extra_body": {"temperature": 0.5},
        },
    }
    for case, params in refused.items():
        try:
            client.messages.create(model="fake-model", messages=message, **params)
        except anthropic.BadRequestError:
            continue
        pytest.fail(f"accepted: {case}")
    client.close()


def test_engine_refuses_a_budget_out_of_range_before_any_call(fake_upstream):
    anthropic_provider = fake_provider(fake_upstream, "anthropic")
    for budget in (1023, 32_001):
        with pytest.raises(InvalidRequest) as refused:
            engine.validate_request(anthropic_provider, ask(thinking_budget=budget))
        assert refused.value.field == "thinking_budget"
        assert "between 1024 and 32000" in refused.value.message
    # An adapter without a budget ignores it: nothing to refuse.
    deepseek = fake_provider(fake_upstream, "deepseek")
    assert engine.validate_request(deepseek, ask(thinking_budget=5)).thinking_budget == 5
    assert generation_calls(fake_upstream) == 0


def test_redacted_thinking_is_kept_to_go_back_with_the_signed_block(fake_upstream):
    provider = fake_provider(fake_upstream, "anthropic", knobs="think=3&tokens=2&redacted=1")
    adapter = get_adapter(provider)
    thoughts, _, result = run(collect_with_reasoning(adapter.stream(ask(thinking_budget=1024))))
    assert result.ok, result.error
    assert "".join(thoughts) == thought(3)  # a redacted block has no text to stream
    redacted, signed = result.reasoning
    assert redacted == ReasoningPart("", redacted=REDACTED_DATA)
    assert signed == ReasoningPart(thought(3), fake_signature(thought(3)))
    non_streamed = run(adapter.complete(ask(thinking_budget=1024)))
    assert non_streamed.reasoning == result.reasoning

    # The next turn carries both blocks back unchanged, before the answer's text.
    fake_upstream.reset()
    history = GenerationRequest(
        model="fake-model",
        messages=(
            ChatMessage.of_text("user", "Hello there"),
            ChatMessage("assistant", (*result.reasoning, TextPart(result.text))),
            ChatMessage.of_text("user", "And then?"),
        ),
        thinking_budget=1024,
    )
    follow_up = run(adapter.complete(history))
    assert follow_up.ok, follow_up.error  # the fake checks each signature and data
    assert _generations(fake_upstream)[0]["messages"][1]["content"] == [
        {"type": "redacted_thinking", "data": REDACTED_DATA},
        {"type": "thinking", "thinking": thought(3), "signature": fake_signature(thought(3))},
        {"type": "text", "text": answer(2)},
    ]


def test_a_thinking_block_altered_on_its_way_back_is_refused(fake_upstream):
    adapter = get_adapter(fake_provider(fake_upstream, "anthropic"))
    forged = ReasoningPart("I changed my mind", fake_signature("Something else"))
    history = GenerationRequest(
        model="fake-model",
        messages=(
            ChatMessage.of_text("user", "Hi"),
            ChatMessage("assistant", (forged, TextPart("Hello"))),
            ChatMessage.of_text("user", "Again"),
        ),
    )
    result = run(adapter.complete(history))
    assert result.error is not None
    assert result.error.kind == ErrorKind.BAD_REQUEST


# --- the engine ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "budget"), [("deepseek", None), ("anthropic", 1024)], ids=["deepseek", "anthropic"]
)
def test_a_stream_cut_mid_thought_keeps_the_reasoning_counts_it_and_is_not_retried(
    fake_upstream, kind, budget
):
    provider = fake_provider(fake_upstream, kind, knobs="think=8&tokens=3&fault=drop&after=3")
    thoughts, deltas, result = run(
        collect_with_reasoning(engine.stream_generation(provider, ask(thinking_budget=budget)))
    )
    assert result.error is not None
    assert result.error.kind == ErrorKind.NETWORK
    assert "".join(thoughts) == result.reasoning_text == thought(3)
    assert deltas == []
    assert result.text == ""
    # Cut off before its signature: kept to show, never sent back.
    assert not any(part.returnable for part in result.reasoning)
    # Thinking already handed on: another attempt would think it again.
    assert generation_calls(fake_upstream) == 1
    assert result.usage.estimated
    assert result.usage.output_tokens == estimate_tokens(thought(3)) > 0
    assert result.usage.reasoning_tokens == estimate_tokens(thought(3))


def test_a_stream_stopped_mid_thought_is_metered_with_its_reasoning(fake_upstream):
    provider = fake_provider(fake_upstream, "deepseek", knobs="think=20&fault=stall&after=4")
    tracker = engine.StreamTracker()

    async def read_four() -> list[str]:
        stream = engine.stream_generation(provider, ask(), tracker=tracker)
        seen = [_text(await anext(stream)) for _ in range(4)]
        await stream.aclose()
        return seen

    seen = run(read_four())
    interrupted = tracker.interrupted_result()
    assert interrupted is not None
    assert interrupted.error is not None
    assert interrupted.error.kind == ErrorKind.CANCELLED
    assert interrupted.reasoning_text == "".join(seen) == thought(4)
    assert interrupted.attempts[-1].usage.output_tokens == estimate_tokens(thought(4))
    assert interrupted.attempts[-1].usage.reasoning_tokens == estimate_tokens(thought(4))


def test_a_cached_answer_replays_its_reasoning_and_keeps_its_signature(fake_upstream):
    provider = fake_provider(
        fake_upstream, "anthropic", knobs="think=5&tokens=3", cache_responses=True
    )
    request = ask(temperature=0, thinking_budget=1024)
    first = run(collect_with_reasoning(engine.stream_generation(provider, request)))
    again = run(collect_with_reasoning(engine.stream_generation(provider, request)))
    thoughts, deltas, result = again
    assert result.cached
    assert generation_calls(fake_upstream) == 1
    assert "".join(thoughts) == thought(5)
    assert "".join(deltas) == answer(3)
    assert result.reasoning == first[2].reasoning
    assert result.reasoning[0].signature == fake_signature(thought(5))
    # Another budget is another request: not answered from this one.
    run(collect_with_reasoning(engine.stream_generation(provider, ask(temperature=0))))
    assert generation_calls(fake_upstream) == 2


def _text(item: object) -> str:
    assert isinstance(item, TextDelta | ReasoningDelta), item
    return item.text
