"""Embeddings through the adapters and the engine, over real HTTP to the fake upstream."""

from __future__ import annotations

import asyncio
import base64
import math
import struct

import pytest
from django.test import override_settings

from providers import engine
from providers.adapters import get_adapter
from providers.adapters.embeddings import EmbeddingRequest, float32_bytes, floats
from providers.errors import ErrorKind
from providers.fake_upstream.embeddings import EMBEDDINGS_PATH, prompt_tokens, vector_for
from providers.validation import InvalidRequest, NotOffered
from tests.providers.fake_helpers import fake_provider, run

pytestmark = pytest.mark.django_db

SETTINGS = {
    "MAX_TOKENS_CAP": 1000,
    "MAX_PROMPT_CHARS": 500,
    "MAX_EMBEDDING_INPUTS": 4,
    "RETRY_MAX_ATTEMPTS": 3,
    "RETRY_BASE_DELAY_SECONDS": 0.01,
    "RETRY_MAX_DELAY_SECONDS": 5.0,
    "CALL_DEADLINE_SECONDS": 10.0,
}


def switchboard(**changes):
    return override_settings(SWITCHBOARD={**SETTINGS, **changes})


def texts(*items: str, model: str = "fake-model", dimensions: int | None = None):
    return EmbeddingRequest(model=model, inputs=items, dimensions=dimensions)


def upstream_bodies(fake) -> list[dict]:
    return [r.body for r in fake.requests if r.path == EMBEDDINGS_PATH]


@pytest.mark.parametrize(
    ("kind", "asked_as"), [("openai", "base64"), ("openai_compatible", "float")]
)
def test_the_adapter_returns_the_fakes_vectors_and_usage(fake_upstream, kind, asked_as):
    adapter = get_adapter(fake_provider(fake_upstream, kind))
    result = run(adapter.embed(texts("Hello there", "Second input")))
    assert result.ok, result.error
    assert [floats(v) for v in result.vectors] == [
        vector_for("fake-model", "Hello there"),
        vector_for("fake-model", "Second input"),
    ]
    assert result.usage.input_tokens == prompt_tokens(["Hello there", "Second input"])
    assert not result.usage.estimated
    # OpenAI is asked for base64 (exact float32, a third of the JSON); servers that may not
    # offer it for floats. Either way the vectors are the same numbers.
    (body,) = upstream_bodies(fake_upstream)
    assert body["encoding_format"] == asked_as
    assert body["input"] == ["Hello there", "Second input"]
    assert "dimensions" not in body


def test_dimensions_and_token_arrays_go_upstream_as_given(fake_upstream):
    adapter = get_adapter(fake_provider(fake_upstream, "openai"))
    request = EmbeddingRequest(model="fake-model", inputs=((1, 2, 3), (4,)), dimensions=3)
    result = run(adapter.embed(request))
    assert result.ok, result.error
    assert [floats(v) for v in result.vectors] == [
        vector_for("fake-model", [1, 2, 3], 3),
        vector_for("fake-model", [4], 3),
    ]
    assert result.usage.input_tokens == 4  # a token array counts its tokens
    (body,) = upstream_bodies(fake_upstream)
    assert (body["input"], body["dimensions"]) == ([[1, 2, 3], [4]], 3)


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("401", ErrorKind.AUTH),
        ("402", ErrorKind.BILLING),
        ("429", ErrorKind.RATE_LIMIT),
        ("500", ErrorKind.PROVIDER_ERROR),
        ("503", ErrorKind.OVERLOADED),
        ("error", ErrorKind.PROVIDER_ERROR),
        ("drop", ErrorKind.NETWORK),
        ("html", ErrorKind.PROVIDER_ERROR),
    ],
)
def test_every_fault_maps_to_its_kind(fake_upstream, fault, kind):
    adapter = get_adapter(fake_provider(fake_upstream, "openai", knobs=f"fault={fault}"))
    result = run(adapter.embed(texts("Hello")))
    assert result.error is not None
    assert result.error.kind == kind
    assert result.vectors == []
    assert result.usage.input_tokens == 0  # refused: nothing was computed


def test_the_engine_retries_as_for_chat_and_records_each_attempt(fake_upstream):
    provider = fake_provider(fake_upstream, "openai", knobs="fault=429")
    with switchboard():
        result = run(engine.embed(provider, texts("Hello")))
    assert result.error.kind == ErrorKind.RATE_LIMIT
    assert [(a.number, a.outcome, a.status_code) for a in result.attempts] == [
        (1, "rate_limit", 429),
        (2, "rate_limit", 429),
        (3, "rate_limit", 429),
    ]
    assert all(a.wait_before_retry > 0 for a in result.attempts[:-1])
    assert len(upstream_bodies(fake_upstream)) == 3


def test_an_auth_failure_is_not_retried(fake_upstream):
    provider = fake_provider(fake_upstream, "openai", knobs="fault=401")
    with switchboard():
        result = run(engine.embed(provider, texts("Hello")))
    assert [a.outcome for a in result.attempts] == ["auth"]
    assert len(upstream_bodies(fake_upstream)) == 1


def test_a_success_is_one_attempt_with_the_reported_usage(fake_upstream):
    provider = fake_provider(fake_upstream, "openai")
    with switchboard():
        result = run(engine.embed(provider, texts("Hello there")))
    (attempt,) = result.attempts
    assert (attempt.outcome, attempt.status_code) == ("ok", 200)
    assert attempt.usage.input_tokens == result.usage.input_tokens == prompt_tokens(["Hello there"])


def test_a_stall_ends_at_the_deadline_with_the_input_estimated(fake_upstream):
    provider = fake_provider(fake_upstream, "openai", knobs="fault=stall")
    with switchboard(CALL_DEADLINE_SECONDS=0.3):
        result = run(engine.embed(provider, texts("x" * 40)))
    assert result.error.kind == ErrorKind.TIMEOUT
    (attempt,) = result.attempts
    assert attempt.outcome == "timeout"
    assert attempt.usage.estimated
    assert attempt.usage.input_tokens == 10  # 40 characters at 4 a token
    assert fake_upstream.wait_for(lambda: fake_upstream.early_closes == 1)


def test_a_cancelled_call_reports_the_attempt_in_flight(fake_upstream):
    provider = fake_provider(fake_upstream, "openai", knobs="ttft=5000")
    tracker = engine.EmbeddingTracker()

    async def cancel_once_upstream_has_it():
        task = asyncio.ensure_future(engine.embed(provider, texts("x" * 8), tracker=tracker))
        arrived = lambda: len(upstream_bodies(fake_upstream)) == 1  # noqa: E731
        assert await asyncio.to_thread(fake_upstream.wait_for, arrived, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with switchboard():
        run(cancel_once_upstream_has_it())
    result = tracker.interrupted_result()
    assert result.error.kind == ErrorKind.CANCELLED
    (attempt,) = result.attempts
    assert attempt.outcome == "cancelled"
    assert attempt.usage.input_tokens == 2
    assert attempt.usage.estimated
    assert fake_upstream.wait_for(lambda: fake_upstream.early_closes == 1)


# --- validation ---------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "label"), [("anthropic", "Anthropic"), ("deepseek", "DeepSeek")])
def test_kinds_without_embeddings_are_refused_naming_the_model(fake_upstream, kind, label):
    provider = fake_provider(fake_upstream, kind)
    with pytest.raises(NotOffered) as caught, switchboard():
        run(engine.avalidate_embedding_request(provider, texts("Hello")))
    assert caught.value.field == "model"
    assert caught.value.message == (
        f"Provider {provider.name!r} ({label}) does not offer embeddings."
    )
    assert fake_upstream.requests == []  # decided by the adapter class, before any call


def test_token_arrays_only_go_to_openai(fake_upstream):
    tokens = EmbeddingRequest(model="fake-model", inputs=((1, 2),))
    compatible = fake_provider(fake_upstream, "openai_compatible")
    with pytest.raises(NotOffered) as caught, switchboard():
        run(engine.avalidate_embedding_request(compatible, tokens))
    assert caught.value.field == "input"
    assert "text input only" in caught.value.message
    with switchboard():
        checked = run(
            engine.avalidate_embedding_request(fake_provider(fake_upstream, "openai"), tokens)
        )
    assert checked == tokens


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (texts("a", "b", "c", "d", "e"), "input"),  # MAX_EMBEDDING_INPUTS is 4 here
        (texts("x" * 300, "y" * 201), "input"),  # 501 characters, MAX_PROMPT_CHARS 500
        (texts("a", ""), "input"),
        (texts("a", dimensions=0), "dimensions"),
        (texts("a", model="no-such-model"), "model"),
        (texts("a", model=" "), "model"),
    ],
)
def test_limits_are_checked_before_any_call(fake_upstream, request_, field):
    provider = fake_provider(fake_upstream, "openai")
    with pytest.raises(InvalidRequest) as caught, switchboard():
        run(engine.avalidate_embedding_request(provider, request_))
    assert caught.value.field == field
    assert not isinstance(caught.value, NotOffered)
    assert upstream_bodies(fake_upstream) == []


def test_vectors_are_little_endian_float32():
    vector = float32_bytes([1.0, -0.5, 0.1])
    assert vector == struct.pack("<3f", 1.0, -0.5, 0.1)
    assert floats(vector)[:2] == [1.0, -0.5]
    assert math.isclose(floats(vector)[2], 0.1, rel_tol=1e-7)
    assert base64.b64encode(vector) == base64.b64encode(struct.pack("<3f", 1.0, -0.5, 0.1))
