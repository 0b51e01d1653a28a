"""No provider key and no prompt text ever reaches the audit log, whatever is audited
on the way: a provider created and its key replaced, sign-ins, token use, API calls."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from audit.models import AuditEvent, EventType
from providers.models import Provider
from tests.audit.conftest import every_record_as_text
from tests.generation.gateway_helpers import *  # noqa: F403 (the fixtures)
from tests.generation.gateway_helpers import user_says

FIRST_KEY = "sk-secret-first-3e5a7c9b1d3f5a7c9e1b"
SECOND_KEY = "sk-secret-second-8d6b4f2a0c8e6d4b2f0a"
GATEWAY_PROMPT = "Summarise the merger plan codenamed BLUE-HERON-7731"
API_PROMPT = "Draft the layoff memo for project QUIET-OTTER-2290"


@pytest.mark.django_db(transaction=True)
def test_keys_and_prompts_never_appear_in_any_audit_record(
    admin_client, client, sdk, api_user, fake_upstream
):
    form = {
        "name": "Keyed",
        "kind": "openai",
        "base_url": fake_upstream.openai_base_url(""),
        "default_model": "fake-model",
        "is_active": "on",
        "new_api_key": FIRST_KEY,
        "cache_ttl_seconds": "3600",
    }
    assert admin_client.post(reverse("admin:providers_provider_add"), form).status_code == 302
    provider = Provider.objects.get()
    change = reverse("admin:providers_provider_change", args=[provider.pk])
    assert admin_client.post(change, {**form, "new_api_key": SECOND_KEY}).status_code == 302
    assert provider.get_api_key() == FIRST_KEY  # the old instance; the row has the new one
    assert Provider.objects.get().get_api_key() == SECOND_KEY

    answer = sdk.chat.completions.create(
        model="Keyed/fake-model", messages=user_says(GATEWAY_PROMPT)
    )
    assert answer.choices[0].message.content
    client.force_login(api_user)
    body = {"provider_id": str(provider.pk), "prompt": API_PROMPT}
    response = client.post("/api/generate", json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.content

    recorded = {e.event for e in AuditEvent.objects.all()}
    assert {EventType.PROVIDER_CREATED, EventType.PROVIDER_KEY_REPLACED} <= recorded
    assert {EventType.TOKEN_USED_TODAY, EventType.LOGIN_SUCCEEDED} <= recorded
    text = every_record_as_text()
    for secret in (FIRST_KEY, SECOND_KEY, GATEWAY_PROMPT, API_PROMPT):
        assert secret not in text
    for fragment in ("BLUE-HERON", "QUIET-OTTER", FIRST_KEY[10:-4], SECOND_KEY[10:-4]):
        assert fragment not in text
