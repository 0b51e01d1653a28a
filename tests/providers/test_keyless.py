"""Providers without a stored API key: a local server (Ollama, llama.cpp) needs none,
a hosted kind does, and a key that cannot be used is a configuration error in words."""

from __future__ import annotations

import logging

import pytest
from django.test import override_settings
from django.urls import reverse

from providers import engine
from providers.crypto import generate_key_entry
from providers.errors import ErrorKind
from providers.fake_upstream import Knobs
from providers.kinds import KIND_SPECS, ProviderKind
from providers.models import Provider
from providers.redaction import NO_KEY_PLACEHOLDER, redact
from tests.providers.fake_helpers import (
    ask,
    collect,
    fake_provider,
    generation_calls,
    run,
)

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:providers_provider_add")
LIST_URL = reverse("admin:providers_provider_changelist")
# The fake answers without a key, as a local server does.
KEYLESS = "keyless=1&tokens=4"
HOSTED_KINDS = ["openai", "anthropic", "deepseek"]


def keyless_provider(fake_upstream, kind: str = "openai_compatible", knobs: str = KEYLESS):
    return fake_provider(fake_upstream, kind, knobs=knobs, key=None)


def _form(**overrides: str) -> dict[str, str]:
    data = {
        "name": "Local",
        "kind": "openai_compatible",
        "base_url": "http://127.0.0.1:11434/v1",
        "default_model": "fake-model",
        "is_active": "on",
        "new_api_key": "",
        "cache_ttl_seconds": "3600",
    }
    data.update(overrides)
    return data


def _change_url(provider: Provider) -> str:
    return reverse("admin:providers_provider_change", args=[provider.pk])


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_only_the_openai_compatible_kind_may_go_without_a_key():
    assert {kind for kind, spec in KIND_SPECS.items() if not spec.requires_api_key} == {
        ProviderKind.OPENAI_COMPATIBLE
    }


def test_staff_add_a_keyless_openai_compatible_provider_and_its_connection_test_works(
    staff_client, fake_upstream
):
    base_url = fake_upstream.openai_base_url(KEYLESS)
    response = staff_client.post(ADD_URL, _form(base_url=base_url))
    assert response.status_code == 302, response.content
    provider = Provider.objects.get()
    assert provider.get_api_key() is None
    assert provider.api_key_hint == ""
    assert "No key" in staff_client.get(LIST_URL).content.decode()

    page = staff_client.post(
        LIST_URL, {"action": "test_connection", "_selected_action": [provider.pk]}, follow=True
    ).content.decode()
    assert "connected in" in page, page
    result = run(engine.generate(Provider.objects.get(), ask()))
    assert result.ok, result.error
    assert result.text == "".join(Knobs(tokens=4).text_tokens())
    # No key went out, not even a stand-in: no Authorization header at all.
    assert [r.auth_scheme for r in fake_upstream.requests] == ["", ""]


@pytest.mark.parametrize("kind", HOSTED_KINDS)
def test_a_hosted_kind_cannot_be_added_without_a_key(staff_client, kind):
    response = staff_client.post(ADD_URL, _form(kind=kind, base_url=""))
    assert response.status_code == 200
    assert f"{ProviderKind(kind).label} needs an API key" in response.content.decode()
    assert not Provider.objects.exists()


def test_switching_a_keyless_provider_to_a_hosted_kind_asks_for_a_key(staff_client, fake_upstream):
    provider = keyless_provider(fake_upstream)
    response = staff_client.post(
        _change_url(provider), _form(name=provider.name, kind="openai", base_url="")
    )
    assert response.status_code == 200
    assert "OpenAI needs an API key" in response.content.decode()
    provider.refresh_from_db()
    assert provider.kind == "openai_compatible"


def test_staff_can_remove_the_key_of_an_openai_compatible_provider(staff_client, make_provider):
    provider = make_provider(
        "Local",
        "sk-local-0123456789",
        kind="openai_compatible",
        base_url="http://127.0.0.1:11434/v1",
    )
    response = staff_client.post(
        _change_url(provider),
        _form(name="Local", base_url="http://127.0.0.1:11434/v1", clear_api_key="on"),
    )
    assert response.status_code == 302, response.content
    provider.refresh_from_db()
    assert provider.get_api_key() is None
    assert provider.api_key_hint == ""


def test_the_key_of_a_hosted_kind_cannot_be_removed(staff_client, make_provider):
    provider = make_provider("OpenAI", "sk-live-0123456789abcdef")
    response = staff_client.post(
        _change_url(provider),
        _form(name="OpenAI", kind="openai", base_url="", clear_api_key="on"),
    )
    assert response.status_code == 200
    assert "OpenAI needs an API key" in response.content.decode()
    provider.refresh_from_db()
    assert provider.get_api_key() == "sk-live-0123456789abcdef"


def test_a_keyless_provider_answers_and_the_upstream_never_sees_a_key(fake_upstream):
    provider = keyless_provider(fake_upstream)
    deltas, result = run(collect(engine.stream_generation(provider, ask())))
    assert result.ok, result.error
    assert "".join(deltas) == "".join(Knobs(tokens=4).text_tokens())
    assert run(engine.generate(provider, ask())).ok
    assert generation_calls(fake_upstream) == 2
    assert {r.auth_scheme for r in fake_upstream.requests} == {""}


def test_the_placeholder_key_never_reaches_the_logs(fake_upstream, caplog):
    # Every logger at DEBUG, the SDK's and the HTTP clients' request logs included.
    loggers = ["", "providers", "openai", "httpx", "httpx2", "httpcore", "httpcore2"]
    for name in loggers:
        caplog.set_level(logging.DEBUG, logger=name)
    provider = keyless_provider(fake_upstream)
    run(collect(engine.stream_generation(provider, ask())))
    run(engine.generate(provider, ask()))
    assert caplog.records
    assert NO_KEY_PLACEHOLDER not in caplog.text
    # And were it ever written, the log filter masks it like a key.
    assert NO_KEY_PLACEHOLDER not in redact(f"client api_key={NO_KEY_PLACEHOLDER!r}")


@pytest.mark.parametrize("kind", HOSTED_KINDS)
def test_a_hosted_kind_without_a_key_is_a_configuration_error_and_calls_nobody(
    fake_upstream, kind, monkeypatch
):
    # Not even a key from the environment, which the SDKs would otherwise pick up.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment-000")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-the-environment-000")
    provider = keyless_provider(fake_upstream, kind, knobs="tokens=4")
    _, streamed = run(collect(engine.stream_generation(provider, ask())))
    completed = run(engine.generate(provider, ask()))
    for result in (streamed, completed):
        assert result.error is not None
        assert result.error.kind == ErrorKind.CONFIGURATION
        assert "no API key" in result.error.message
        assert not result.error.retryable
        assert result.attempts == []  # nothing went upstream: nothing to meter
    check = engine.test_connection(provider)
    assert (check.ok, check.error_kind) == (False, "configuration")
    assert fake_upstream.requests == []


def test_a_key_the_keyring_cannot_decrypt_is_a_configuration_error(fake_upstream):
    provider = fake_provider(fake_upstream, "openai", knobs="tokens=4")
    with override_settings(ENCRYPTION_KEYS=[generate_key_entry()]):
        _, result = run(collect(engine.stream_generation(provider, ask())))
    assert result.error is not None
    assert result.error.kind == ErrorKind.CONFIGURATION
    assert "cannot be decrypted" in result.error.message
    assert result.attempts == []
    assert generation_calls(fake_upstream) == 0
