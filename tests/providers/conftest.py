from __future__ import annotations

import pytest

from providers.models import Provider


@pytest.fixture
def make_provider(db):
    def make(name: str = "OpenAI", key: str = "sk-live-abcdef0123456789", **fields) -> Provider:
        fields.setdefault("kind", "openai")
        provider = Provider(name=name, **fields)
        provider.set_api_key(key)
        provider.save()
        return provider

    return make
