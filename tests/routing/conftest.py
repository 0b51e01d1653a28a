from __future__ import annotations

import socket

import pytest
from django.conf import settings
from django.test import override_settings

from providers.models import Provider
from tests.providers.fake_helpers import TEST_KEY

FAST = {
    "MAX_TOKENS_CAP": 1000,
    "MAX_PROMPT_CHARS": 5000,
    "RETRY_MAX_ATTEMPTS": 3,
    "RETRY_BASE_DELAY_SECONDS": 0.01,
    "RETRY_MAX_DELAY_SECONDS": 5.0,
    "CALL_DEADLINE_SECONDS": 10.0,
}


def switchboard(**changes: object):
    return override_settings(SWITCHBOARD={**settings.SWITCHBOARD, **FAST, **changes})


@pytest.fixture
def fast_settings():
    with switchboard():
        yield


@pytest.fixture
def refused_provider(db) -> Provider:
    """An OpenAI provider whose base URL is a loopback port nothing listens on."""
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
