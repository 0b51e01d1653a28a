from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_healthz_is_ok_without_login_and_shows_no_settings(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "queue": "ok", "relay": "ok"},
    }
    assert response["Cache-Control"].startswith("max-age=0")
    assert settings.SECRET_KEY not in response.content.decode()


def test_healthz_names_the_part_that_is_down(client):
    unreachable = "redis://127.0.0.1:1/0"
    down_cache = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": unreachable,
        }
    }
    with override_settings(CACHES=down_cache):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["cache"] == "error"
    assert body["checks"]["database"] == "ok"
    assert unreachable not in response.content.decode()
