from __future__ import annotations

import os

import pytest
from django.db import connection

from providers.models import Provider


@pytest.fixture
def make_provider(db):
    def make(name: str = "OpenAI", kind: str = "openai") -> Provider:
        provider = Provider(name=name, kind=kind)
        provider.set_api_key("sk-test-abcdef0123456789")
        provider.save()
        return provider

    return make


@pytest.fixture
def openai(make_provider) -> Provider:
    return make_provider("OpenAI", "openai")


@pytest.fixture
def anthropic(make_provider) -> Provider:
    return make_provider("Anthropic", "anthropic")


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw-alice-123")


@pytest.fixture(autouse=True)
def _postgres_only(request):
    # PostgreSQL variants run when the suite runs on PostgreSQL (DATABASE_URL, as
    # `make test` does for its second pass); elsewhere they skip, but fail under CI.
    if request.node.get_closest_marker("postgres") is None:
        return
    if connection.vendor != "postgresql":
        if os.environ.get("CI") == "true" and "postgres" in os.environ.get("DATABASE_URL", ""):
            pytest.fail("PostgreSQL test ran without PostgreSQL under CI")
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://... (make test does)")
