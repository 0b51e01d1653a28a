"""/v1 plans an alias with its targets' health (read once per request, off the event loop)."""

from __future__ import annotations

import pytest

from routing.models import Alias, AliasTarget
from tests.generation.conftest import expected_text
from tests.generation.gateway_helpers import *  # noqa: F403 (the fixtures)
from tests.generation.gateway_helpers import user_says
from tests.routing.conftest import switchboard
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_streamed_call_skips_a_cooling_target(sdk, make_provider):
    failing = make_provider("anthropic", knobs="fault=529")
    spare = make_provider("openai", knobs="tokens=4")
    alias = Alias.objects.create(name="smart")
    AliasTarget.objects.create(alias=alias, priority=1, provider=failing, model="fake-model")
    AliasTarget.objects.create(alias=alias, priority=2, provider=spare, model="fake-model")
    with switchboard(HEALTH_FAILURES=1):
        for _ in range(2):
            stream = sdk.chat.completions.create(model="smart", messages=user_says(), stream=True)
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            assert text == expected_text(4)
    calls: dict[str, list[tuple[object, str]]] = {}
    for r in UsageRecord.objects.order_by("created_at", "attempt_number"):
        calls.setdefault(r.request_id, []).append((r.provider_id, r.outcome))
    assert list(calls.values()) == [
        [(failing.pk, "overloaded"), (spare.pk, "ok")],
        [(spare.pk, "ok")],  # the second call did not try the cooling target
    ]
