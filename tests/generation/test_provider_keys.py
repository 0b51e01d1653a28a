"""Providers without a usable key, as the chat, /api/generate and /v1 show it."""

from __future__ import annotations

import json

import openai
import pytest
from django.test import override_settings
from django.urls import reverse

from generation.api_tokens import ApiToken
from generation.models import Message
from providers.crypto import generate_key_entry
from providers.errors import ErrorKind
from providers.models import Provider
from tests.generation.conftest import expected_text, send_hello, wait_for
from tests.generation.gateway_helpers import *  # noqa: F403 (the fixtures)
from tests.generation.gateway_helpers import model_of, user_says
from tests.providers.fake_helpers import fake_provider
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)

CONFIGURATION_WORDS = "Ask an administrator"
UNKNOWN_WORDS = "Something went wrong"


def keyless_provider(fake_upstream, kind: str = "openai_compatible", knobs: str = "") -> Provider:
    return fake_provider(fake_upstream, kind, knobs=knobs, key=None)


def _final(message: Message) -> Message:
    wait_for(lambda: Message.objects.get(pk=message.pk).status not in Message.ACTIVE)
    return Message.objects.get(pk=message.pk)


def _bubble(client, user, message: Message) -> str:
    client.force_login(user)
    page = client.get(reverse("generation:conversation", args=[message.conversation_id]))
    return page.content.decode()


def test_the_chat_answers_through_a_keyless_provider(user, fake_upstream, huey_consumer):
    provider = keyless_provider(fake_upstream, knobs="keyless=1&tokens=6")
    message = _final(send_hello(user, provider))
    assert message.status == Message.Status.COMPLETE, message.error_text
    assert message.content == expected_text(6)
    assert fake_upstream.requests
    assert {r.auth_scheme for r in fake_upstream.requests} == {""}


def test_a_hosted_provider_without_a_key_fails_in_the_chat_with_words(
    client, user, fake_upstream, huey_consumer
):
    provider = keyless_provider(fake_upstream, "openai", knobs="tokens=4")
    message = _final(send_hello(user, provider))
    assert message.status == Message.Status.FAILED
    assert message.error_kind == ErrorKind.CONFIGURATION
    assert not message.retryable
    page = _bubble(client, user, message)
    assert "no API key" in message.error_text
    assert message.error_text in page
    assert CONFIGURATION_WORDS in page
    assert UNKNOWN_WORDS not in page
    assert fake_upstream.requests == []
    assert not UsageRecord.objects.exists()


def test_a_key_that_cannot_be_decrypted_fails_in_the_chat_with_words(
    client, user, make_chat_provider, fake_upstream, huey_consumer
):
    provider = make_chat_provider("tokens=4")
    with override_settings(ENCRYPTION_KEYS=[generate_key_entry()]):
        message = _final(send_hello(user, provider))
    assert message.error_kind == ErrorKind.CONFIGURATION
    assert "cannot be decrypted" in message.error_text
    assert UNKNOWN_WORDS not in _bubble(client, user, message)


def test_api_generate_reports_a_missing_key_as_a_configuration_error(
    client, django_user_model, fake_upstream
):
    _, raw = ApiToken.issue(user=django_user_model.objects.create_user("scripter"), name="s")
    provider = keyless_provider(fake_upstream, "anthropic", knobs="tokens=4")
    response = client.post(
        "/api/generate",
        json.dumps({"provider_id": str(provider.pk), "prompt": "Hi"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["kind"] == "configuration"
    assert "no API key" in error["message"]
    assert CONFIGURATION_WORDS in error["message"]
    assert error["retryable"] is False
    assert fake_upstream.requests == []


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_v1_reports_a_missing_key_as_a_configuration_error(sdk, fake_upstream, stream):
    provider: Provider = keyless_provider(fake_upstream, "deepseek", knobs="tokens=4")
    with pytest.raises(openai.InternalServerError) as caught:
        sdk.chat.completions.create(model=model_of(provider), messages=user_says(), stream=stream)
    error = caught.value
    assert error.status_code == 500
    assert error.code == "provider_not_configured"
    assert "no API key" in error.body["message"]
    assert error.response.headers["x-should-retry"] == "false"
    assert not any(r.path == "/v1/chat/completions" for r in fake_upstream.requests)


def test_every_error_kind_has_a_status_and_words_everywhere():
    # A kind missing from one of these maps is a KeyError (a 500) the day it happens.
    from generation.gateway.errors import UPSTREAM_ERRORS
    from generation.json_api import STATUS_BY_ERROR_KIND
    from providers.errors import ERROR_WORDS

    for kind_map in (STATUS_BY_ERROR_KIND, UPSTREAM_ERRORS, ERROR_WORDS):
        assert set(kind_map) == set(ErrorKind)
