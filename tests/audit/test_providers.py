"""Providers in the admin: created, key replaced or removed, (de)activated, changed,
deleted; the key itself never reaches a record."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import EventType
from providers.models import Provider
from tests.audit.conftest import OFFICE, events, every_record_as_text, only

pytestmark = pytest.mark.django_db

FIRST_KEY = "sk-audit-first-7c1e9a2b4d6f8e0a1c3b"
SECOND_KEY = "sk-audit-second-5b7d9f1e3a5c7e9b1d3f"
LIST_URL = reverse("admin:providers_provider_changelist")


def _form(**overrides):
    data = {
        "name": "OpenAI",
        "kind": "openai",
        "base_url": "",
        "default_model": "gpt-4o-mini",
        "is_active": "on",
        "new_api_key": "",
        "cache_ttl_seconds": "3600",
        "prompt_caching": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def _change(client, provider, **overrides):
    url = reverse("admin:providers_provider_change", args=[provider.pk])
    response = client.post(url, _form(**overrides), REMOTE_ADDR=OFFICE)
    assert response.status_code == 302, response.content


@pytest.fixture
def provider(staff_client) -> Provider:
    response = staff_client.post(
        reverse("admin:providers_provider_add"), _form(new_api_key=FIRST_KEY), REMOTE_ADDR=OFFICE
    )
    assert response.status_code == 302, response.content
    return Provider.objects.get()


def test_creating_a_provider_is_recorded_with_who_and_where(provider, admin_user):
    record = only(EventType.PROVIDER_CREATED)
    assert (record.user, record.actor, record.ip_address) == (admin_user, "admin", OFFICE)
    assert (record.object_type, record.object_id, record.object_repr) == (
        "providers.provider",
        str(provider.pk),
        "OpenAI",
    )
    assert record.detail["has_key"] is True
    assert record.detail["changes"]["kind"] == [None, "openai"]


def test_a_replaced_key_is_recorded_as_replaced_never_with_its_value(staff_client, provider):
    _change(staff_client, provider, new_api_key=SECOND_KEY)
    assert only(EventType.PROVIDER_KEY_REPLACED).detail == {"had_key": True}
    # Saving without typing a key keeps it: nothing to record.
    _change(staff_client, provider)
    assert len(events(EventType.PROVIDER_KEY_REPLACED)) == 1
    assert events(EventType.PROVIDER_CHANGED) == []
    text = every_record_as_text()
    for key in (FIRST_KEY, SECOND_KEY):
        assert key not in text
        assert key[8:-4] not in text  # not even the middle of it
    provider.refresh_from_db()
    assert provider.api_key.token not in text  # nor its ciphertext


def test_removing_the_key_of_a_local_server_is_recorded(staff_client, fake_upstream):
    base_url = fake_upstream.openai_base_url("")
    form = _form(name="Ollama", kind="openai_compatible", base_url=base_url, new_api_key="k-123")
    staff_client.post(reverse("admin:providers_provider_add"), form)
    provider = Provider.objects.get()
    _change(
        staff_client,
        provider,
        name="Ollama",
        kind="openai_compatible",
        base_url=base_url,
        clear_api_key="on",
    )
    assert only(EventType.PROVIDER_KEY_REMOVED).object_repr == "Ollama"


def test_deactivation_and_reactivation_by_action_and_by_form(staff_client, provider):
    action = {"_selected_action": [provider.pk]}
    staff_client.post(LIST_URL, {"action": "deactivate", **action}, REMOTE_ADDR=OFFICE)
    staff_client.post(LIST_URL, {"action": "reactivate", **action}, REMOTE_ADDR=OFFICE)
    _change(staff_client, provider, is_active=None)  # unticked in the form
    kinds = [e.event for e in events() if e.event.startswith("provider_")]
    assert kinds == [
        EventType.PROVIDER_CREATED,
        EventType.PROVIDER_DEACTIVATED,
        EventType.PROVIDER_ACTIVATED,
        EventType.PROVIDER_DEACTIVATED,
    ]
    assert {e.actor for e in events(EventType.PROVIDER_DEACTIVATED)} == {"admin"}


def test_a_changed_base_url_is_recorded_with_before_and_after(staff_client, provider):
    _change(staff_client, provider, base_url="https://proxy.example.com/v1")
    record = only(EventType.PROVIDER_CHANGED)
    assert record.detail["changes"] == {"base_url": ["", "https://proxy.example.com/v1"]}


def test_deleting_an_unused_provider_is_recorded(staff_client, provider):
    url = reverse("admin:providers_provider_delete", args=[provider.pk])
    assert staff_client.post(url, {"post": "yes"}).status_code == 302
    assert only(EventType.PROVIDER_DELETED).object_repr == "OpenAI"
