"""Health is shared by every process through the cache: on Redis, failures another
process recorded make this process plan the target last."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.test import override_settings

from providers.crypto import generate_key_entry
from routing.engine import generate_routed
from routing.models import Alias, AliasTarget
from routing.services import planned_targets
from tests.providers.fake_helpers import ask, fake_provider, run
from tests.routing.conftest import switchboard

pytestmark = [pytest.mark.django_db, pytest.mark.redis]

REDIS_TEST_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"
ROOT = Path(__file__).resolve().parents[2]

# The other process: the same target (provider id and model), called through the
# routing engine and the real SDK against the failing fake; no database needed.
_OTHER_PROCESS = """
import asyncio, json, sys, uuid
import django
django.setup()
from django.conf import settings
from providers.adapters.base import ChatMessage, GenerationRequest
from providers.models import Provider
from routing.engine import generate_routed
from routing.plans import Target
args = json.loads(sys.argv[1])
settings.SWITCHBOARD = {**settings.SWITCHBOARD, "RETRY_BASE_DELAY_SECONDS": 0.01,
                        "HEALTH_FAILURES": 3}
provider = Provider(pk=uuid.UUID(args["pk"]), name="failing", kind="openai",
                    base_url=args["base_url"], default_model="fake-model")
provider.set_api_key("sk-other-0123456789abcdef")
request = GenerationRequest(model="fake-model", messages=(ChatMessage.of_text("user", "Hi"),))
result = asyncio.run(generate_routed([Target(provider, "fake-model")], request))
print(json.dumps([a.outcome for a in result.attempts]))
"""


def _other_process(prefix: str, pk: str, base_url: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.deploy.settings",
        DATA_DIR=tempfile.mkdtemp(prefix="switchboard-health-"),
        SECRET_KEY=secrets.token_urlsafe(50),
        ENCRYPTION_KEYS=generate_key_entry(),
        REDIS_URL=REDIS_TEST_URL,
        REDIS_KEY_PREFIX=prefix,
        LOG_LEVEL="WARNING",
    )
    args = json.dumps({"pk": pk, "base_url": base_url})
    done = subprocess.run(
        [sys.executable, "-c", _OTHER_PROCESS, args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture
def redis_cache():
    """This process's cache on Redis, under a key prefix of this test's own."""
    import redis

    prefix = f"switchboard-health-test-{secrets.token_hex(4)}"
    cache = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": REDIS_TEST_URL}
    with override_settings(CACHES={"default": {**cache, "KEY_PREFIX": prefix}}):
        yield prefix
    client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)


def test_failures_in_another_process_make_this_one_skip_the_target(fake_upstream, redis_cache):
    failing = fake_provider(fake_upstream, knobs="fault=503")
    spare = fake_provider(fake_upstream)
    alias = Alias.objects.create(name="smart")
    AliasTarget.objects.create(alias=alias, priority=1, provider=failing, model="fake-model")
    AliasTarget.objects.create(alias=alias, priority=2, provider=spare, model="fake-model")
    with switchboard(HEALTH_FAILURES=3):
        assert [t.provider for t in planned_targets(alias)] == [failing, spare]
        # Three failed attempts (a lone target keeps its retries) in the other process.
        assert _other_process(redis_cache, str(failing.pk), failing.base_url) == ["overloaded"] * 3
        assert [t.provider for t in planned_targets(alias)] == [spare, failing]
        result = run(generate_routed(planned_targets(alias), ask()))
    assert result.ok
    assert [a.provider for a in result.attempts] == [spare]
