"""A call stopped early still accounts for what it consumed (StreamTracker)."""

from __future__ import annotations

import asyncio

import pytest

from providers.adapters.base import ReasoningDelta, TextDelta
from providers.engine import StreamTracker, generate, stream_generation
from tests.providers.fake_helpers import ask, collect, fake_provider, generation_calls, run

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_stream_closed_early_reports_the_partial_attempt(fake_upstream, kind):
    provider = fake_provider(fake_upstream, kind, knobs="tokens=50&delay=20")
    tracker = StreamTracker()

    async def read_three_then_stop() -> list[str]:
        stream = stream_generation(provider, ask(), tracker=tracker)
        seen = [_text(await anext(stream)) for _ in range(3)]
        await stream.aclose()
        return seen

    seen = run(read_three_then_stop())
    result = tracker.interrupted_result()
    assert result is not None
    assert result.text == "".join(seen)
    assert result.error is not None
    assert result.error.kind == "cancelled"
    assert [a.outcome for a in result.attempts] == ["cancelled"]
    attempt = result.attempts[0]
    assert attempt.time_to_first_token is not None
    assert attempt.usage.estimated
    assert attempt.usage.output_tokens > 0
    assert fake_upstream.wait_for(lambda: fake_upstream.early_closes == 1)


def test_a_finished_stream_has_no_interrupted_result(fake_upstream):
    provider = fake_provider(fake_upstream, "openai", knobs="tokens=3")
    tracker = StreamTracker()
    _, result = run(collect(stream_generation(provider, ask(), tracker=tracker)))
    assert result.ok
    assert tracker.interrupted_result() is None


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_cancelled_generate_reports_the_attempt_in_flight(fake_upstream, kind):
    provider = fake_provider(fake_upstream, kind, knobs="ttft=20000")
    tracker = StreamTracker()

    async def cancel_once_upstream_has_it() -> None:
        call = asyncio.ensure_future(generate(provider, ask(), tracker=tracker))
        arrived = lambda: generation_calls(fake_upstream) == 1  # noqa: E731
        assert await asyncio.to_thread(fake_upstream.wait_for, arrived, 10)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call

    run(cancel_once_upstream_has_it())
    result = tracker.interrupted_result()
    assert result is not None
    assert (result.text, result.error.kind) == ("", "cancelled")
    [attempt] = result.attempts
    assert attempt.outcome == "cancelled"
    assert attempt.usage.estimated
    assert attempt.usage.input_tokens > 0  # the prompt went out: it is billed
    assert attempt.usage.output_tokens == 0
    assert fake_upstream.wait_for(lambda: fake_upstream.early_closes == 1)


def test_a_finished_generate_has_no_interrupted_result(fake_upstream):
    provider = fake_provider(fake_upstream, "openai", knobs="tokens=3")
    tracker = StreamTracker()
    assert run(generate(provider, ask(), tracker=tracker)).ok
    assert tracker.interrupted_result() is None


def _text(item: object) -> str:
    assert isinstance(item, TextDelta | ReasoningDelta), item
    return item.text
