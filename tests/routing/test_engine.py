"""Routed calls: fallback before the first token, never after; one deadline; every
attempt metered with the target that made it."""

from __future__ import annotations

import time

import pytest

from providers.adapters.base import ChatMessage, GenerationRequest, ImagePart, TextPart
from providers.errors import ErrorKind
from providers.fake_upstream import Knobs
from routing.engine import RoutedTracker, generate_routed, stream_routed
from routing.plans import Target
from tests.providers.fake_helpers import ask, collect, fake_provider, generation_calls, run
from tests.providers.test_content_parts import PNG
from tests.routing.conftest import switchboard
from usage.services import record_generation

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_settings")]

ANSWER = "".join(Knobs().text_tokens())


def _targets(*providers):
    return [Target(provider, "fake-model") for provider in providers]


def _who(result):
    return [(a.provider.name, a.model, a.outcome) for a in result.attempts]


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("429", "rate_limit"),
        ("500", "provider_error"),
        ("529", "overloaded"),
        ("401", "auth"),
        ("402", "billing"),
    ],
)
@pytest.mark.parametrize("streamed", [True, False])
def test_an_error_before_the_first_token_falls_back_to_the_next_target(
    fake_upstream, fault, kind, streamed
):
    failing = fake_provider(fake_upstream, "openai", knobs=f"fault={fault}")
    answering = fake_provider(fake_upstream, "anthropic")
    targets = _targets(failing, answering)
    if streamed:
        deltas, result = run(collect(stream_routed(targets, ask())))
        assert "".join(deltas) == ANSWER
    else:
        result = run(generate_routed(targets, ask()))
    assert result.ok, result.error
    assert result.text == ANSWER
    # One attempt at the failing target (no retry: the next target is faster), then one.
    assert _who(result) == [
        (failing.name, "fake-model", kind),
        (answering.name, "fake-model", "ok"),
    ]
    assert [a.number for a in result.attempts] == [1, 2]


def test_connection_refused_falls_back(fake_upstream, refused_provider):
    answering = fake_provider(fake_upstream, "openai")
    deltas, result = run(collect(stream_routed(_targets(refused_provider, answering), ask())))
    assert result.ok
    assert "".join(deltas) == ANSWER
    assert [a.outcome for a in result.attempts] == ["network", "ok"]


def test_the_last_target_keeps_the_usual_retries(fake_upstream):
    first = fake_provider(fake_upstream, "openai", knobs="fault=429")
    last = fake_provider(fake_upstream, "openai", knobs="fault=500")
    result = run(generate_routed(_targets(first, last), ask()))
    assert result.error.kind == ErrorKind.PROVIDER_ERROR
    # The user sees the last target's error; 1 attempt at the first, 3 at the last.
    assert [a.outcome for a in result.attempts] == ["rate_limit"] + ["provider_error"] * 3
    assert [a.provider for a in result.attempts] == [first] + [last] * 3
    assert [a.number for a in result.attempts] == [1, 2, 3, 4]


def test_no_fallback_after_the_first_token(fake_upstream):
    dropping = fake_provider(fake_upstream, "openai", knobs="fault=drop&after=3")
    spare = fake_provider(fake_upstream, "openai")
    deltas, result = run(collect(stream_routed(_targets(dropping, spare), ask())))
    assert result.error.kind == ErrorKind.NETWORK
    assert len(deltas) == 3
    assert result.text == "".join(deltas)
    assert [a.provider for a in result.attempts] == [dropping]
    assert generation_calls(fake_upstream) == 1


def test_no_fallback_on_a_bad_request(fake_upstream):
    blind = fake_provider(fake_upstream, "openai", knobs="text_only=1")
    seeing = fake_provider(fake_upstream, "openai")
    with_image = GenerationRequest(
        model="fake-model",
        messages=(ChatMessage("user", (TextPart("What is it?"), ImagePart("image/png", PNG))),),
    )
    result = run(generate_routed(_targets(blind, seeing), with_image))
    assert result.error.kind == ErrorKind.BAD_REQUEST
    assert [a.provider for a in result.attempts] == [blind]


def test_one_deadline_covers_the_whole_routed_call(fake_upstream):
    stalling = fake_provider(fake_upstream, "openai", knobs="fault=stall")
    spare = fake_provider(fake_upstream, "openai")
    started = time.monotonic()
    with switchboard(CALL_DEADLINE_SECONDS=0.5):
        deltas, result = run(collect(stream_routed(_targets(stalling, spare), ask())))
    elapsed = time.monotonic() - started
    assert result.error.kind == ErrorKind.TIMEOUT
    assert not deltas
    # The stall used the whole deadline: no time left for the spare, never called.
    assert [a.provider for a in result.attempts] == [stalling]
    assert generation_calls(fake_upstream) == 1
    assert elapsed < 2.0


def test_each_attempt_is_metered_with_its_target_and_the_alias(fake_upstream):
    failing = fake_provider(fake_upstream, "openai", knobs="fault=429")
    answering = fake_provider(fake_upstream, "anthropic")
    targets = [Target(failing, "fake-model"), Target(answering, "fake-model")]
    result = run(generate_routed(targets, ask()))
    records = record_generation(
        provider=answering,
        user=None,
        source="api",
        result=result,
        request_id="r1",
        alias="smart",
    )
    assert [(r.provider, r.model, r.outcome, r.alias, r.attempt_number) for r in records] == [
        (failing, "fake-model", "rate_limit", "smart", 1),
        (answering, "fake-model", "ok", "smart", 2),
    ]
    assert records[1].output_tokens == result.usage.output_tokens


def test_a_stream_closed_early_meters_every_target_tried(fake_upstream):
    failing = fake_provider(fake_upstream, "openai", knobs="fault=500")
    slow = fake_provider(fake_upstream, "openai", knobs="delay=50")
    tracker = RoutedTracker()

    async def two_deltas_then_leave():
        items = stream_routed(_targets(failing, slow), ask(), tracker=tracker)
        got = [await anext(items), await anext(items)]
        await items.aclose()
        return got

    got = run(two_deltas_then_leave())
    assert len(got) == 2
    result = tracker.interrupted_result()
    assert result is not None
    assert result.error.kind == ErrorKind.CANCELLED
    assert [(a.provider, a.outcome) for a in result.attempts] == [
        (failing, "provider_error"),
        (slow, "cancelled"),
    ]
