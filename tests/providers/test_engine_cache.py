"""The engine's response cache, models list and connection check."""

from __future__ import annotations

import pytest

from providers import engine
from providers.adapters.base import ChatMessage, GenerationRequest
from tests.providers.fake_helpers import ask, collect, fake_provider, generation_calls, run

pytestmark = pytest.mark.django_db


# --- cache ------------------------------------------------------------------------------


def test_cache_hit_does_not_call_upstream(fake_upstream):
    provider = fake_provider(fake_upstream, cache_responses=True)
    request = ask(temperature=0)
    first = run(engine.generate(provider, request))
    calls = fake_upstream.calls
    deltas, second = run(collect(engine.stream_generation(provider, request)))
    assert fake_upstream.calls == calls
    assert second.cached
    assert not first.cached
    assert second.attempts == []
    assert "".join(deltas) == second.text == first.text
    assert len(deltas) > 1


@pytest.mark.parametrize(
    "changed",
    [
        ask(temperature=0, model="fake-model-large"),
        ask(temperature=0, max_tokens=7),
        ask(temperature=0, system="Be brief."),
        ask("Another prompt", temperature=0),
        GenerationRequest(
            model="fake-model",
            messages=(
                ChatMessage.of_text("user", "Hello there"),
                ChatMessage.of_text("assistant", "Hi"),
            ),
            temperature=0,
        ),
    ],
)
def test_changing_any_parameter_misses(fake_upstream, changed):
    provider = fake_provider(fake_upstream, cache_responses=True)
    run(engine.generate(provider, ask(temperature=0)))
    result = run(engine.generate(provider, changed))
    assert not result.cached
    assert generation_calls(fake_upstream) == 2


def test_temperature_zero_hits_however_it_is_spelled(fake_upstream):
    provider = fake_provider(fake_upstream, cache_responses=True)
    run(engine.generate(provider, ask(temperature=0)))
    assert run(engine.generate(provider, ask(temperature=0.0))).cached
    assert generation_calls(fake_upstream) == 1


def test_only_temperature_zero_is_cached_and_only_when_enabled(fake_upstream):
    enabled = fake_provider(fake_upstream, cache_responses=True)
    disabled = fake_provider(fake_upstream)
    for provider, request in [(enabled, ask(temperature=0.5)), (disabled, ask(temperature=0))]:
        run(engine.generate(provider, request))
        assert not run(engine.generate(provider, request)).cached
    assert generation_calls(fake_upstream) == 4


def test_a_provider_edit_invalidates_its_cache(fake_upstream):
    provider = fake_provider(fake_upstream, cache_responses=True)
    run(engine.generate(provider, ask(temperature=0)))
    provider.save()
    assert not run(engine.generate(provider, ask(temperature=0))).cached


# --- models list, test connection --------------------------------------------------------


def test_models_list_is_cached(fake_upstream):
    provider = fake_provider(fake_upstream, "anthropic")
    assert engine.list_models(provider) == ["demo-model", "fake-model", "fake-model-large"]
    assert run(engine.alist_models(provider)) == engine.list_models(provider)
    assert fake_upstream.calls == 1


def test_connection_check(fake_upstream):
    good = engine.test_connection(fake_provider(fake_upstream))
    assert good.ok
    assert good.model_count == 3
    assert good.latency_ms >= 0
    bad = engine.test_connection(fake_provider(fake_upstream, key="sk-invalid-0123456789"))
    assert not bad.ok
    assert bad.error_kind == "auth"
    assert "API key" in bad.message
    down = run(engine.atest_connection(fake_provider(fake_upstream, knobs="fault=503")))
    assert down.error_kind == "overloaded"


def test_a_models_list_read_once_is_kept_in_the_process(fake_upstream):
    from django.core.cache import cache

    provider = fake_provider(fake_upstream)
    assert engine.list_models(provider) == ["demo-model", "fake-model", "fake-model-large"]
    cache.clear()  # e.g. the shared cache was restarted
    assert engine.validate_request(provider, ask(model="fake-model-large")).model
    assert run(engine.alist_models(provider)) == engine.list_models(provider)
    assert fake_upstream.calls == 1


def test_a_provider_edit_refetches_its_models_list(fake_upstream):
    provider = fake_provider(fake_upstream)
    engine.list_models(provider)
    provider.save()
    engine.list_models(provider)
    assert fake_upstream.calls == 2


def test_the_process_copy_of_a_models_list_expires(fake_upstream, monkeypatch):
    from django.core.cache import cache

    from providers import models_list

    monkeypatch.setattr(models_list, "LOCAL_SECONDS", 0.0)
    provider = fake_provider(fake_upstream)
    engine.list_models(provider)
    cache.clear()
    engine.list_models(provider)
    assert fake_upstream.calls == 2


def test_a_connection_check_refreshes_the_process_copy(fake_upstream):
    from django.core.cache import cache

    provider = fake_provider(fake_upstream)
    assert engine.test_connection(provider).ok
    cache.clear()
    assert engine.list_models(provider) == ["demo-model", "fake-model", "fake-model-large"]
    assert fake_upstream.calls == 1
