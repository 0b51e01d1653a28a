"""The engine: validation, retries and attempts, deadline, cache, models list, logging."""

from __future__ import annotations

import pytest

from providers import engine
from providers.fake_upstream import Knobs
from tests.providers.fake_helpers import ask, collect, fake_provider, run

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
