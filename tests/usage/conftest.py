from __future__ import annotations

import pytest

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
