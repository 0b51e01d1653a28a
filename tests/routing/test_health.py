"""Target health: a target that keeps failing is tried last for a cooldown (real failures
from the fake upstream, through the real SDKs)."""

from __future__ import annotations

import time

import pytest

from generation.api_tokens import ApiToken
from routing.engine import generate_routed
from routing.health import annotate
from routing.models import Alias, AliasTarget
from routing.services import planned_targets
from tests.generation.test_api import _post
from tests.providers.fake_helpers import ask, fake_provider, run
from tests.routing.conftest import switchboard
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def _alias(*providers, name="smart"):
    alias = Alias.objects.create(name=name)
    for priority, provider in enumerate(providers, start=1):
        AliasTarget.objects.create(
            alias=alias, priority=priority, provider=provider, model="fake-model"
        )
    return alias


def _call(alias):
    """One routed call as the paths make it; (provider name, outcome) of each attempt."""
    result = run(generate_routed(planned_targets(alias), ask()))
    return [(a.provider.name, a.outcome) for a in result.attempts]


def _order(alias):
    return [t.provider.name for t in planned_targets(alias)]


def _health(alias):
    return {t.provider.name: (t.recent_failures, t.cooling_since) for t in annotate_targets(alias)}


def annotate_targets(alias):
    from routing.plans import targets_of

    return annotate(targets_of(alias))


@pytest.mark.parametrize(
    ("knobs", "kind"), [("fault=500", "provider_error"), ("fault=429", "rate_limit")]
)
def test_a_target_failing_n_times_in_the_window_is_tried_last(fake_upstream, knobs, kind):
    failing = fake_provider(fake_upstream, knobs=knobs)
    spare = fake_provider(fake_upstream, knobs="tokens=3")
    alias = _alias(failing, spare)
    with switchboard(HEALTH_FAILURES=2, HEALTH_WINDOW_SECONDS=60, HEALTH_COOLDOWN_SECONDS=60):
        for _ in range(2):  # 1 failure, then the 2nd: below the threshold when planned
            assert _call(alias) == [(failing.name, kind), (spare.name, "ok")]
        assert _order(alias) == [spare.name, failing.name]
        # The cooling target is not called: the healthy one answers at once.
        assert _call(alias) == [(spare.name, "ok")]


def test_a_refused_connection_counts_too(fake_upstream, refused_provider):
    spare = fake_provider(fake_upstream)
    alias = _alias(refused_provider, spare)
    with switchboard(HEALTH_FAILURES=1):
        assert _call(alias) == [(refused_provider.name, "network"), (spare.name, "ok")]
        assert _call(alias) == [(spare.name, "ok")]


def test_a_success_clears_the_count(fake_upstream):
    flaky = fake_provider(fake_upstream, knobs="fault=500")
    spare = fake_provider(fake_upstream)
    alias = _alias(flaky, spare)
    healthy_url, failing_url = fake_upstream.openai_base_url(""), flaky.base_url
    with switchboard(HEALTH_FAILURES=2):
        assert _call(alias)[0] == (flaky.name, "provider_error")
        flaky.base_url = healthy_url  # the provider recovers
        flaky.save()
        assert _call(alias) == [(flaky.name, "ok")]
        assert _health(alias)[flaky.name] == (0, None)
        flaky.base_url = failing_url
        flaky.save()
        # One failure since the success: below the threshold, still tried first.
        assert _call(alias)[0] == (flaky.name, "provider_error")
        assert _order(alias) == [flaky.name, spare.name]


def test_failures_outside_the_window_do_not_add_up(fake_upstream):
    failing = fake_provider(fake_upstream, knobs="fault=529")
    spare = fake_provider(fake_upstream)
    alias = _alias(failing, spare)
    with switchboard(HEALTH_FAILURES=2, HEALTH_WINDOW_SECONDS=0.3):
        assert _call(alias)[0] == (failing.name, "overloaded")
        assert _health(alias)[failing.name][0] == 1
        wait_for(lambda: _health(alias)[failing.name] == (0, None))  # the window ended
        assert _call(alias)[0] == (failing.name, "overloaded")
        assert _order(alias) == [failing.name, spare.name]


def test_the_cooldown_ends(fake_upstream):
    failing = fake_provider(fake_upstream, knobs="fault=402")
    spare = fake_provider(fake_upstream)
    alias = _alias(failing, spare)
    with switchboard(HEALTH_FAILURES=1, HEALTH_COOLDOWN_SECONDS=0.3):
        assert _call(alias)[0] == (failing.name, "billing")
        assert _order(alias) == [spare.name, failing.name]
        wait_for(lambda: _health(alias)[failing.name][1] is None)
        assert _order(alias) == [failing.name, spare.name]


def test_when_every_target_cools_the_least_recently_failed_is_tried(fake_upstream):
    first = fake_provider(fake_upstream, knobs="fault=500")
    second = fake_provider(fake_upstream, knobs="fault=429")
    alias = _alias(first, second)
    with switchboard(HEALTH_FAILURES=2, RETRY_MAX_ATTEMPTS=1):
        for _ in range(2):
            assert _call(alias) == [(first.name, "provider_error"), (second.name, "rate_limit")]
        # Both cool; `first` failed less recently, so it is tried first, anyway.
        assert all(since is not None for _, since in _health(alias).values())
        assert _order(alias) == [first.name, second.name]
        assert _call(alias) == [(first.name, "provider_error"), (second.name, "rate_limit")]
        # A cooling target that fails again goes behind the others.
        run(generate_routed([t for t in planned_targets(alias) if t.provider == first], ask()))
        assert _order(alias) == [second.name, first.name]


def test_api_generate_skips_a_cooling_target(client, fake_upstream, django_user_model):
    _, raw = ApiToken.issue(user=django_user_model.objects.create_user("u"), name="t")
    failing = fake_provider(fake_upstream, knobs="fault=500")
    spare = fake_provider(fake_upstream, knobs="tokens=3")
    _alias(failing, spare)
    with switchboard(HEALTH_FAILURES=2):
        for _ in range(3):
            response = _post(client, raw, {"model": "smart", "prompt": "Hi"})
            assert response.json()["data"]["provider"] == spare.name
    calls = {}
    for record in UsageRecord.objects.order_by("created_at", "attempt_number"):
        calls.setdefault(record.request_id, []).append((record.provider.name, record.outcome))
    assert list(calls.values()) == [
        [(failing.name, "provider_error"), (spare.name, "ok")],
        [(failing.name, "provider_error"), (spare.name, "ok")],
        [(spare.name, "ok")],
    ]


def test_an_unreachable_cache_does_not_stop_planning(fake_upstream, refused_provider, caplog):
    from django.test import override_settings

    first, second = fake_provider(fake_upstream), fake_provider(fake_upstream)
    alias = _alias(first, second)
    dead = {
        "BACKEND": "django_redis.cache.RedisCache",
        # The refused provider's port: nothing listens there.
        "LOCATION": refused_provider.base_url.replace("http://", "redis://").replace("/v1", "/0"),
    }
    with override_settings(CACHES={"default": dead}):
        assert _order(alias) == [first.name, second.name]
    assert "routing health not read: ConnectionError" in caplog.text
