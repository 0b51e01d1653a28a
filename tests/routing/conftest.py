from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings

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
