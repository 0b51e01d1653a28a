"""One attempt through each adapter over real HTTP: streams, usage, faults, early close."""

from __future__ import annotations

import asyncio
import warnings
from datetime import timedelta

import pytest

from providers.adapters import ADAPTERS, get_adapter
from providers.adapters.anthropic_adapter import AnthropicAdapter
from providers.adapters.base import GenerationResult, TextDelta
from providers.adapters.openai_adapter import (
    DeepSeekAdapter,
    OpenAIAdapter,
    OpenAICompatibleAdapter,
)
from providers.errors import ErrorKind
from providers.fake_upstream import Knobs
from providers.kinds import ProviderKind
from tests.providers.fake_helpers import ask, collect, fake_provider, run

pytestmark = pytest.mark.django_db
KINDS = ["openai", "anthropic"]

FAULT_KINDS = [
    ("401", ErrorKind.AUTH),
    ("402", ErrorKind.BILLING),
    ("429", ErrorKind.RATE_LIMIT),
    ("500", ErrorKind.PROVIDER_ERROR),
    ("503", ErrorKind.OVERLOADED),
    ("529", ErrorKind.OVERLOADED),
    ("drop", ErrorKind.NETWORK),
]


def test_registry_maps_every_kind():
    assert set(ADAPTERS) == set(ProviderKind.values)
    assert ADAPTERS[ProviderKind.OPENAI] is OpenAIAdapter
    assert ADAPTERS[ProviderKind.DEEPSEEK] is DeepSeekAdapter
    assert ADAPTERS[ProviderKind.OPENAI_COMPATIBLE] is OpenAICompatibleAdapter
    assert ADAPTERS[ProviderKind.ANTHROPIC] is AnthropicAdapter


@pytest.mark.parametrize("kind", KINDS)
def test_stream_and_complete_without_warnings(fake_upstream, kind):
    adapter = get_adapter(fake_provider(fake_upstream, kind))

    async def go():
        streamed = await collect(adapter.stream(ask()))
        completed = await adapter.complete(ask())
        return streamed, completed

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (deltas, streamed), completed = run(go())
    assert [str(w.message) for w in caught] == []
    expected = "".join(Knobs().text_tokens())
    assert "".join(deltas) == streamed.text == completed.text == expected
    for result in (streamed, completed):
        assert result.ok
        assert result.finish_reason == "stop"
        assert result.usage.output_tokens == 12
        assert result.usage.input_tokens > 0
        assert not result.usage.estimated


@pytest.mark.parametrize("kind", KINDS)
def test_length_finish_reason_is_normalised(fake_upstream, kind):
    adapter = get_adapter(fake_provider(fake_upstream, kind))
    _, result = run(collect(adapter.stream(ask(max_tokens=3))))
    assert result.finish_reason == "length"
    assert result.usage.output_tokens == 3


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("fault", "error_kind"), FAULT_KINDS)
def test_every_fault_maps_to_its_kind(fake_upstream, kind, fault, error_kind):
    adapter = get_adapter(fake_provider(fake_upstream, kind, knobs=f"fault={fault}"))

    async def go():
        return await collect(adapter.stream(ask())), await adapter.complete(ask())

    (deltas, streamed), completed = run(go())
    assert deltas == []
    assert streamed.error.kind == completed.error.kind == error_kind
    assert streamed.error.retryable == (
        error_kind in {"rate_limit", "overloaded", "provider_error", "network"}
    )


@pytest.mark.parametrize("kind", KINDS)
def test_in_stream_error_is_a_provider_error_keeping_text(fake_upstream, kind):
    adapter = get_adapter(fake_provider(fake_upstream, kind, knobs="fault=error&after=3"))
    deltas, result = run(collect(adapter.stream(ask())))
    assert result.error.kind == ErrorKind.PROVIDER_ERROR
    assert result.text == "".join(deltas) == "".join(Knobs().text_tokens(3))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("fault", "error_kind"),
    [
        # The body ends cleanly with no finish ([DONE], message_stop): cut, not complete.
        ("end", ErrorKind.NETWORK),
        ("garbage", ErrorKind.PROVIDER_ERROR),  # an event that is not JSON
    ],
)
def test_a_stream_ended_unfinished_or_not_json_fails_keeping_text(
    fake_upstream, kind, fault, error_kind
):
    adapter = get_adapter(fake_provider(fake_upstream, kind, knobs=f"fault={fault}&after=3"))
    deltas, result = run(collect(adapter.stream(ask())))
    assert result.error is not None
    assert result.error.kind == error_kind
    assert result.text == "".join(deltas) == "".join(Knobs().text_tokens(3))


@pytest.mark.parametrize("kind", KINDS)
def test_drop_after_five_tokens_keeps_them_and_estimates_usage(fake_upstream, kind):
    adapter = get_adapter(fake_provider(fake_upstream, kind, knobs="fault=drop&after=5"))
    deltas, result = run(collect(adapter.stream(ask())))
    assert result.error.kind == ErrorKind.NETWORK
    assert len(deltas) == 5
    assert result.text == "".join(Knobs().text_tokens(5))
    assert result.usage.estimated
    assert result.usage.output_tokens == (len(result.text) + 3) // 4
    assert result.usage.input_tokens > 0


def test_refused_request_consumes_nothing(fake_upstream):
    adapter = get_adapter(fake_provider(fake_upstream, "openai", knobs="fault=429"))
    _, result = run(collect(adapter.stream(ask())))
    assert result.usage.total_tokens == 0
    assert not result.usage.estimated


@pytest.mark.parametrize("kind", KINDS)
def test_temperature_zero_and_system_prompt_reach_upstream(fake_upstream, kind):
    adapter = get_adapter(fake_provider(fake_upstream, kind))
    run(collect(adapter.stream(ask(temperature=0.0, system="Be brief."))))
    (request,) = fake_upstream.requests
    assert request.body["temperature"] == 0
    assert "temperature" in request.body
    if kind == "anthropic":
        # As a block carrying a prompt-cache breakpoint (the provider's default).
        assert request.body["system"][0]["text"] == "Be brief."
        assert request.body["max_tokens"] == AnthropicAdapter.default_max_tokens
    else:
        assert request.body["messages"][0] == {"role": "system", "content": "Be brief."}
        assert request.body["stream_options"] == {"include_usage": True}


def test_unset_parameters_are_left_to_the_provider(fake_upstream):
    adapter = get_adapter(fake_provider(fake_upstream, "openai"))
    run(collect(adapter.stream(ask())))
    (request,) = fake_upstream.requests
    assert "temperature" not in request.body
    assert "max_completion_tokens" not in request.body


def test_openai_usage_details(fake_upstream):
    adapter = get_adapter(fake_provider(fake_upstream, "openai", knobs="cached=4&reasoning=2"))
    _, result = run(collect(adapter.stream(ask())))
    assert result.usage.cached_input_tokens == 4
    assert result.usage.reasoning_tokens == 2


def test_anthropic_usage_is_cumulative_not_summed(fake_upstream):
    adapter = get_adapter(fake_provider(fake_upstream, "anthropic", knobs="cached=4"))
    _, result = run(collect(adapter.stream(ask())))
    # message_start says output 1 and input N; message_delta says output 12 and input N.
    assert result.usage.output_tokens == 12
    assert result.usage.input_tokens > 1
    assert result.usage.cached_input_tokens == 4


@pytest.mark.parametrize("kind", KINDS)
def test_aclose_mid_stream_closes_the_upstream_connection(fake_upstream, kind):
    adapter = get_adapter(fake_provider(fake_upstream, kind, knobs="delay=50&tokens=100"))

    async def go():
        stream = adapter.stream(ask())
        first = await anext(stream)
        await stream.aclose()
        return first

    assert isinstance(run(go()), TextDelta)
    assert fake_upstream.wait_for(lambda: fake_upstream.early_closes == 1)


@pytest.mark.parametrize("kind", KINDS)
def test_list_models(fake_upstream, kind):
    adapter = get_adapter(fake_provider(fake_upstream, kind))
    assert run(adapter.list_models()) == ["demo-model", "fake-model", "fake-model-large"]


def test_clients_are_reused_per_loop_and_rebuilt_when_the_provider_changes(fake_upstream):
    provider = fake_provider(fake_upstream)

    async def clients():
        first, again = get_adapter(provider)._client(), get_adapter(provider)._client()
        provider.updated_at += timedelta(seconds=1)  # as an edit in the admin would
        return first, again, get_adapter(provider)._client()

    first, again, after_edit = run(clients())
    assert first is again
    assert after_edit is not first
    other_loop, _, _ = run(clients())
    assert other_loop not in (first, after_edit)


def test_invalid_key_is_an_auth_error(fake_upstream):
    adapter = get_adapter(fake_provider(fake_upstream, key="sk-invalid-0123456789"))
    result = run(adapter.complete(ask()))
    assert isinstance(result, GenerationResult)
    assert result.error.kind == ErrorKind.AUTH
    assert (
        result.error.message
        == "The provider rejected the API key. Ask an administrator to update it."
    )


@pytest.mark.parametrize("kind", KINDS)
def test_redirects_are_not_followed_so_the_key_stays_put(fake_upstream, kind):
    adapter = get_adapter(fake_provider(fake_upstream, kind, knobs="fault=redirect"))
    _, result = run(collect(adapter.stream(ask())))
    assert result.error.kind == ErrorKind.BAD_REQUEST
    assert [r.path for r in fake_upstream.requests] == [adapter_path(kind)]


def adapter_path(kind: str) -> str:
    return {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_cancelled_read_closes_the_upstream_connection(fake_upstream, kind):
    # A deadline firing in the engine cancels the adapter inside its read of the body.
    adapter = get_adapter(fake_provider(fake_upstream, kind, knobs="fault=stall&after=2"))

    async def go():
        stream = adapter.stream(ask())
        deltas = [await anext(stream), await anext(stream)]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(stream), timeout=0.2)
        return deltas

    assert all(isinstance(delta, TextDelta) for delta in run(go()))
    assert fake_upstream.wait_for(lambda: fake_upstream.early_closes == 1)


def test_openai_usage_details_without_streaming(fake_upstream):
    adapter = get_adapter(fake_provider(fake_upstream, "openai", knobs="cached=4&reasoning=2"))
    usage = run(adapter.complete(ask())).usage
    assert (usage.output_tokens, usage.cached_input_tokens, usage.reasoning_tokens) == (12, 4, 2)
    assert usage.input_tokens > 0


def test_anthropic_usage_without_streaming(fake_upstream):
    # Without breakpoints, so the fake writes nothing to its prompt cache.
    provider = fake_provider(fake_upstream, "anthropic", knobs="cached=4", prompt_caching=False)
    usage = run(get_adapter(provider).complete(ask())).usage
    assert (usage.output_tokens, usage.cached_input_tokens, usage.cache_write_tokens) == (12, 4, 0)
    assert usage.input_tokens > 0
    assert not usage.estimated


@pytest.mark.parametrize("kind", KINDS)
def test_a_lone_surrogate_from_the_model_becomes_a_replacement_character(fake_upstream, kind):
    # A JSON "\ud800" escape decodes to a string no UTF-8 can carry: unreplaced, it
    # failed the SSE frame, the answer's save and the /v1 stream, leaving it "streaming".
    adapter = get_adapter(fake_provider(fake_upstream, kind, knobs="tokens=4&surrogate=2"))

    async def go():
        return await collect(adapter.stream(ask())), await adapter.complete(ask())

    (deltas, streamed), completed = run(go())
    for text in ("".join(deltas), streamed.text, completed.text):
        text.encode("utf-8")  # raises UnicodeEncodeError on a lone surrogate
        assert text.count("\ufffd") == 1
        assert len(text.split()) == 4


@pytest.mark.parametrize("kind", KINDS)
def test_a_200_with_a_web_page_instead_of_an_answer_is_a_provider_error(fake_upstream, kind):
    # Not an empty "complete" answer (streamed), nor an AttributeError (completed).
    adapter = get_adapter(fake_provider(fake_upstream, kind, knobs="fault=html"))

    async def go():
        return await collect(adapter.stream(ask())), await adapter.complete(ask())

    (deltas, streamed), completed = run(go())
    assert deltas == []
    assert streamed.error.kind == completed.error.kind == ErrorKind.PROVIDER_ERROR
