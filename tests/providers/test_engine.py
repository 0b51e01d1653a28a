"""The engine: validation, retries and attempts, deadline, cache, models list, logging."""

from __future__ import annotations

import logging
import time

import pytest
from django.test import override_settings

from providers import engine
from providers.errors import ErrorKind
from providers.fake_upstream import Knobs
from providers.validation import InvalidRequest
from tests.providers.fake_helpers import ask, collect, fake_provider, generation_calls, run

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_stream_generation_succeeds(fake_upstream, kind):
    provider = fake_provider(fake_upstream, kind)
    deltas, result = run(collect(engine.stream_generation(provider, ask())))
    assert result.ok, result.error
    assert "".join(deltas) == result.text == "".join(Knobs().text_tokens())
    assert result.finish_reason == "stop"
    assert [a.outcome for a in result.attempts] == ["ok"]
    assert result.usage.output_tokens == 12
    assert not result.usage.estimated


FAST_RETRIES = {
    "MAX_TOKENS_CAP": 1000,
    "MAX_PROMPT_CHARS": 500,
    "RETRY_MAX_ATTEMPTS": 3,
    "RETRY_BASE_DELAY_SECONDS": 0.01,
    "RETRY_MAX_DELAY_SECONDS": 5.0,
    "CALL_DEADLINE_SECONDS": 10.0,
}


def switchboard(**changes):
    return override_settings(SWITCHBOARD={**FAST_RETRIES, **changes})


# --- validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "request_", "field"),
    [
        ("openai", ask(temperature=2.5), "temperature"),
        ("openai", ask(temperature=-0.1), "temperature"),
        ("anthropic", ask(temperature=1.5), "temperature"),
        ("openai", ask(max_tokens=0), "max_tokens"),
        ("openai", ask(max_tokens=1001), "max_tokens"),
        ("openai", ask("   "), "messages"),
        ("openai", ask("x" * 501), "messages"),
        ("openai", ask(model="no-such-model"), "model"),
    ],
)
def test_invalid_requests_are_refused_before_any_generation_call(
    fake_upstream, kind, request_, field
):
    provider = fake_provider(fake_upstream, kind)
    with switchboard(), pytest.raises(InvalidRequest) as raised:
        run(collect(engine.stream_generation(provider, request_)))
    assert raised.value.field == field
    assert generation_calls(fake_upstream) == 0
    with switchboard(), pytest.raises(InvalidRequest):
        engine.validate_request(provider, request_)
    with switchboard(), pytest.raises(InvalidRequest):
        run(engine.generate(provider, request_))
    assert generation_calls(fake_upstream) == 0


def test_temperature_limits_come_from_the_kind(fake_upstream):
    openai_provider = fake_provider(fake_upstream, "openai")
    anthropic_provider = fake_provider(fake_upstream, "anthropic")
    assert engine.validate_request(openai_provider, ask(temperature=2.0)).temperature == 2.0
    assert engine.validate_request(anthropic_provider, ask(temperature=1.0)).temperature == 1.0


def test_model_defaults_to_the_providers_default(fake_upstream):
    provider = fake_provider(fake_upstream)
    assert engine.validate_request(provider, ask(model="")).model == "fake-model"


def test_model_check_is_skipped_when_the_list_cannot_be_fetched(fake_upstream):
    provider = fake_provider(fake_upstream, knobs="fault=500")
    assert engine.validate_request(provider, ask(model="anything")).model == "anything"


# --- retries and attempts -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_429_with_retry_after_waits_as_told_for_the_configured_attempts(fake_upstream, kind):
    provider = fake_provider(fake_upstream, kind, knobs="fault=429&retry_after=1")
    started = time.monotonic()
    with switchboard(RETRY_MAX_ATTEMPTS=2):
        _, result = run(collect(engine.stream_generation(provider, ask())))
    elapsed = time.monotonic() - started
    assert generation_calls(fake_upstream) == 2
    assert [(a.number, a.outcome, a.status_code) for a in result.attempts] == [
        (1, "rate_limit", 429),
        (2, "rate_limit", 429),
    ]
    assert [a.wait_before_retry for a in result.attempts] == [1.0, 0.0]
    assert 1.0 <= elapsed < 3.0
    assert result.error.kind == ErrorKind.RATE_LIMIT


def test_retry_after_ms_is_preferred(fake_upstream):
    provider = fake_provider(fake_upstream, knobs="fault=503&retry_after=3&retry_after_ms=20")
    with switchboard(RETRY_MAX_ATTEMPTS=2):
        result = run(engine.generate(provider, ask()))
    assert [a.wait_before_retry for a in result.attempts] == [0.02, 0.0]


def test_retry_after_beyond_the_cap_is_not_waited_for(fake_upstream):
    provider = fake_provider(fake_upstream, knobs="fault=429&retry_after=60")
    with switchboard():
        result = run(engine.generate(provider, ask()))
    assert len(result.attempts) == 1


@pytest.mark.parametrize("fault", ["401", "402"])
def test_auth_and_billing_are_tried_once(fake_upstream, fault):
    provider = fake_provider(fake_upstream, knobs=f"fault={fault}")
    with switchboard():
        _, result = run(collect(engine.stream_generation(provider, ask())))
    assert generation_calls(fake_upstream) == 1
    assert len(result.attempts) == 1
    assert result.error.status_code == int(fault)


def test_each_retry_is_its_own_attempt(fake_upstream):
    provider = fake_provider(fake_upstream, "anthropic", knobs="fault=529")
    with switchboard():
        result = run(engine.generate(provider, ask()))
    assert [a.number for a in result.attempts] == [1, 2, 3]
    assert {a.outcome for a in result.attempts} == {"overloaded"}
    assert all(a.wait_before_retry > 0 for a in result.attempts[:-1])
    assert result.attempts[-1].wait_before_retry == 0
    assert all(a.usage.total_tokens == 0 for a in result.attempts)
    assert generation_calls(fake_upstream) == 3


def test_no_retry_once_text_was_streamed(fake_upstream):
    provider = fake_provider(fake_upstream, knobs="fault=drop&after=5")
    with switchboard():
        deltas, result = run(collect(engine.stream_generation(provider, ask())))
    assert len(result.attempts) == 1
    assert len(deltas) == 5
    assert result.text == "".join(deltas)
    assert result.error.kind == ErrorKind.NETWORK
    assert result.usage.estimated
    assert result.attempts[0].usage.estimated


def test_a_successful_attempt_records_timing(fake_upstream):
    provider = fake_provider(fake_upstream, knobs="ttft=60")
    with switchboard():
        _, result = run(collect(engine.stream_generation(provider, ask())))
    (attempt,) = result.attempts
    assert attempt.outcome == "ok"
    assert attempt.status_code == 200
    assert 0.05 <= attempt.time_to_first_token <= attempt.latency
    assert attempt.usage == result.usage


def test_a_stall_ends_in_timeout_within_the_deadline(fake_upstream):
    provider = fake_provider(fake_upstream, knobs="fault=stall&after=3")
    started = time.monotonic()
    with switchboard(CALL_DEADLINE_SECONDS=0.5):
        deltas, result = run(collect(engine.stream_generation(provider, ask())))
    assert time.monotonic() - started < 1.5
    assert result.error.kind == ErrorKind.TIMEOUT
    assert len(deltas) == 3
    assert result.text == "".join(deltas)
    assert result.usage.estimated
    assert fake_upstream.wait_for(lambda: fake_upstream.early_closes == 1)


def test_a_slow_non_streamed_call_times_out(fake_upstream):
    provider = fake_provider(fake_upstream, knobs="fault=stall")
    with switchboard(CALL_DEADLINE_SECONDS=0.3):
        result = run(engine.generate(provider, ask()))
    assert result.error.kind == ErrorKind.TIMEOUT


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_generate_succeeds(fake_upstream, kind):
    provider = fake_provider(fake_upstream, kind)
    result = run(engine.generate(provider, ask(max_tokens=5)))
    assert result.text == "".join(Knobs().text_tokens(5))
    assert result.finish_reason == "length"
    assert [a.outcome for a in result.attempts] == ["ok"]


def test_closing_the_engine_stream_closes_upstream(fake_upstream):
    provider = fake_provider(fake_upstream, knobs="delay=50&tokens=100")

    async def go():
        stream = engine.stream_generation(provider, ask())
        await anext(stream)
        await stream.aclose()

    run(go())
    assert fake_upstream.wait_for(lambda: fake_upstream.early_closes == 1)


# --- secrets and logging -------------------------------------------------------------------


def test_failures_never_expose_the_key(fake_upstream, caplog):
    key = "sk-invalid-secret-0123456789"
    provider = fake_provider(fake_upstream, key=key)
    caplog.set_level(logging.DEBUG)
    with switchboard():
        _, result = run(collect(engine.stream_generation(provider, ask("A private prompt"))))
    assert result.error.kind == ErrorKind.AUTH
    for text in (caplog.text, str(result.error), result.error.message, repr(result)):
        assert key not in text
    assert "A private prompt" not in caplog.text


def test_every_call_is_logged_with_lengths_only(fake_upstream, caplog):
    provider = fake_provider(fake_upstream)
    caplog.set_level(logging.INFO, logger="providers")
    run(engine.generate(provider, ask("Hello there")))
    (record,) = [r for r in caplog.records if r.name == "providers"]
    message = record.getMessage()
    assert f"provider={provider.pk}" in message
    assert "model=fake-model" in message
    assert "outcome=ok" in message
    assert "prompt_chars=11" in message
    assert "Hello there" not in message
