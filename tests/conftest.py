from __future__ import annotations

import os
import shutil

import pytest
from django.db import connection
from django.test import override_settings

from providers.crypto import generate_key_entry

pytest_plugins: list[str] = ["tests.fixtures.fake_upstream", "tests.fixtures.browser"]

IN_CI = os.environ.get("CI") == "true"
CHROMIUM = "/usr/bin/chromium"
TEST_KEYS = [generate_key_entry()]


def _redis_available() -> bool:
    import redis

    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False
    return True


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Service-bound tests skip with a reason on a laptop; in CI a missing service fails.
    if item.get_closest_marker("browser") and not shutil.which(CHROMIUM):
        if IN_CI:
            pytest.fail(f"CI=true but {CHROMIUM} is missing")
        pytest.skip(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    if item.get_closest_marker("redis") and not _redis_available():
        if IN_CI:
            pytest.fail("CI=true but Redis is unreachable")
        pytest.skip("needs Redis (REDIS_URL or 127.0.0.1:6379)")
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: runs in make test's PostgreSQL pass")


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    # A transactional test's flush deletes prices without a signal: start every test
    # from the database. Likewise the process's copies of model lists.
    from providers.models_list import forget_local_models
    from usage import price_cache

    price_cache.clear()
    forget_local_models()
    yield
    price_cache.clear()
    forget_local_models()


@pytest.fixture(autouse=True)
def _encryption_keys():
    # Every test runs under a keyring of its own, never the developer's key file.
    with override_settings(ENCRYPTION_KEYS=TEST_KEYS):
        yield


@pytest.fixture
def refused_provider(db):
    """An OpenAI provider whose base URL is a loopback port nothing listens on: every call
    is refused at connect (a target an alias falls back from)."""
    import socket

    from providers.models import Provider
    from tests.providers.fake_helpers import TEST_KEY

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = Provider(
        name="Nobody home",
        kind="openai",
        base_url=f"http://127.0.0.1:{port}/v1",
        default_model="fake-model",
    )
    provider.set_api_key(TEST_KEY)
    provider.save()
    return provider
