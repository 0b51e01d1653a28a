from __future__ import annotations

import pytest
from django.test import override_settings

from providers.crypto import generate_key_entry

pytest_plugins: list[str] = []

TEST_KEYS = [generate_key_entry()]


@pytest.fixture(autouse=True)
def _encryption_keys():
    # Every test runs under a keyring of its own, never the developer's key file.
    with override_settings(ENCRYPTION_KEYS=TEST_KEYS):
        yield
