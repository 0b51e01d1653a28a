from __future__ import annotations

from collections.abc import Callable

import pytest
from django.conf import settings
from django.test import Client

from metrics import labels


@pytest.fixture
def scrape(client: Client) -> Callable[[], str]:
    """GET /metrics as Prometheus does, with the suite's token (config/settings_test.py)."""

    def get() -> str:
        response = client.get(
            "/metrics", headers={"Authorization": f"Bearer {settings.METRICS_TOKEN}"}
        )
        assert response.status_code == 200, response.content[:300]
        return response.content.decode()

    return get


@pytest.fixture(autouse=True)
def _no_known_models():
    labels.forget()
    yield
    labels.forget()
