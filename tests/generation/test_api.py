"""POST /api/generate through the real SDKs against the fake upstream."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from generation.api_tokens import ApiToken
from tests.providers.fake_helpers import TEST_KEY, fake_provider, generation_calls
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db
URL = "/api/generate"


@pytest.fixture
def token(django_user_model):
    user = django_user_model.objects.create_user("scripter")
    return ApiToken.issue(user=user, name="script")


def _post(client: Client, raw: str | None, body: object, **extra: Any):
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {raw}"} if raw else {}
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(URL, data, content_type="application/json", **headers, **extra)


def test_success_returns_text_usage_and_is_metered(client, fake_upstream, token):
    _, raw = token
    provider = fake_provider(fake_upstream, "openai", knobs="tokens=5")
    response = _post(
        client, raw, {"provider_id": str(provider.pk), "prompt": "Hi", "temperature": 0}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    assert len(data["text"].split()) == 5
    assert data["finish_reason"] == "stop"
    assert data["usage"]["output_tokens"] == 5
    assert data["cached"] is False
    assert fake_upstream.requests[-1].body["temperature"] == 0
    record = UsageRecord.objects.get()
    assert (record.source, record.outcome, record.output_tokens) == ("api", "ok", 5)
    assert record.user.username == "scripter"


def test_anthropic_provider_works_through_the_same_api(client, fake_upstream, token):
    _, raw = token
    provider = fake_provider(fake_upstream, "anthropic", knobs="tokens=4")
    response = _post(
        client,
        raw,
        {
            "provider_id": str(provider.pk),
            "messages": [{"role": "user", "content": "Hi"}],
            "system": "Be brief",
        },
    )
    assert response.status_code == 200, response.content
    assert len(response.json()["data"]["text"].split()) == 4


def test_logged_in_users_need_the_csrf_token(fake_upstream, django_user_model):
    user = django_user_model.objects.create_user("browser")
    provider = fake_provider(fake_upstream, "openai", knobs="tokens=3")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    body = {"provider_id": str(provider.pk), "prompt": "Hi"}
    refused = _post(client, None, body)
    assert refused.status_code == 403
    assert refused.json()["error"]["kind"] == "csrf"
    client.get("/accounts/login/")  # sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value
    allowed = _post(client, None, body, HTTP_X_CSRFTOKEN=csrf)
    assert allowed.status_code == 200, allowed.content


@pytest.mark.parametrize(
    ("fault", "status", "kind", "retryable"),
    [
        ("401", 502, "auth", False),
        ("402", 502, "billing", False),
        ("429", 429, "rate_limit", True),
        ("500", 502, "provider_error", True),
        ("503", 503, "overloaded", True),
        ("529", 503, "overloaded", True),
        ("html", 502, "provider_error", True),  # a 200 with a web page: was a 500
    ],
)
def test_upstream_failures_map_to_statuses(
    client, fake_upstream, token, settings, fault, status, kind, retryable
):
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "RETRY_MAX_ATTEMPTS": 1}
    _, raw = token
    provider = fake_provider(
        fake_upstream, "anthropic" if fault == "529" else "openai", knobs=f"fault={fault}"
    )
    response = _post(client, raw, {"provider_id": str(provider.pk), "prompt": "Hi"})
    assert response.status_code == status
    error = response.json()["error"]
    assert (error["kind"], error["retryable"]) == (kind, retryable)
    assert TEST_KEY not in response.content.decode()
    assert UsageRecord.objects.get().outcome == kind


def test_stall_is_a_timeout_504(client, fake_upstream, token, settings):
    settings.SWITCHBOARD = {
        **settings.SWITCHBOARD,
        "RETRY_MAX_ATTEMPTS": 1,
        "CALL_DEADLINE_SECONDS": 0.5,
    }
    _, raw = token
    provider = fake_provider(fake_upstream, "openai", knobs="fault=stall&after=2")
    response = _post(client, raw, {"provider_id": str(provider.pk), "prompt": "Hi"})
    assert response.status_code == 504
    assert response.json()["error"]["kind"] == "timeout"


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [
        ("{not json", None, "not valid JSON"),
        (b'{"prompt": "\xed\xa0\x80"}', None, "not valid UTF-8"),  # an encoded surrogate
        ("[1, 2]", None, "JSON object"),
        ({"prompt": "Hi"}, "provider_id", "required"),
        ({"provider_id": 12, "prompt": "Hi"}, "provider_id", "string"),
        ({"provider_id": "nope", "prompt": "Hi"}, "provider_id", "UUID"),
        ({"provider_id": "PID"}, "prompt", "either prompt or messages"),
        ({"provider_id": "PID", "prompt": 5}, "prompt", "string"),
        (
            {"provider_id": "PID", "messages": [{"role": "wizard", "content": "x"}]},
            "messages[0]",
            "role",
        ),
        ({"provider_id": "PID", "prompt": "Hi", "max_tokens": "10"}, "max_tokens", "integer"),
        ({"provider_id": "PID", "prompt": "Hi", "temperature": "hot"}, "temperature", "number"),
        ({"provider_id": "PID", "prompt": "Hi", "temperature": 3}, "temperature", "between"),
        ({"provider_id": "PID", "prompt": "Hi", "max_tokens": 0}, "max_tokens", ""),
        ({"provider_id": "PID", "prompt": "   "}, "prompt", ""),
        ({"provider_id": "PID", "prompt": "Hi", "stream": True}, "stream", "Unknown field"),
    ],
)
def test_bad_input_is_a_400_naming_the_problem(client, fake_upstream, token, body, field, needle):
    _, raw = token
    provider = fake_provider(fake_upstream, "openai")
    if isinstance(body, dict) and body.get("provider_id") == "PID":
        body = {**body, "provider_id": str(provider.pk)}
    response = _post(client, raw, body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["kind"] == "invalid_request"
    assert needle in error["message"]
    if field:
        assert error["field"] == field
    assert fake_upstream.calls == 0
    assert not UsageRecord.objects.exists()


def test_oversized_body_is_a_400(client, fake_upstream, token, settings):
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "MAX_API_BODY_BYTES": 1000}
    _, raw = token
    provider = fake_provider(fake_upstream, "openai")
    response = _post(client, raw, {"provider_id": str(provider.pk), "prompt": "x" * 2000})
    assert response.status_code == 400
    assert "larger than 1000 bytes" in response.json()["error"]["message"]
    assert fake_upstream.calls == 0


def test_unknown_and_inactive_providers_are_404(client, fake_upstream, token, admin_user):
    _, raw = token
    provider = fake_provider(fake_upstream, "openai")
    provider.deactivate(by=admin_user)
    for provider_id in (str(provider.pk), "00000000-0000-0000-0000-000000000000"):
        response = _post(client, raw, {"provider_id": provider_id, "prompt": "Hi"})
        assert response.status_code == 404
        assert response.json()["error"]["kind"] == "not_found"
    assert fake_upstream.calls == 0


def test_missing_wrong_and_revoked_tokens_are_401(client, fake_upstream, token):
    api_token, raw = token
    provider = fake_provider(fake_upstream, "openai")
    body = {"provider_id": str(provider.pk), "prompt": "Hi"}
    assert _post(client, None, body).status_code == 401
    assert _post(client, "sb_wrong", body).status_code == 401
    api_token.revoke()
    response = _post(client, raw, body)
    assert response.status_code == 401
    assert response.json()["error"]["kind"] == "unauthenticated"
    assert fake_upstream.calls == 0


def test_a_tokens_rate_limit_holds_on_this_api_too(client, fake_upstream, token):
    api_token, raw = token
    ApiToken.objects.filter(pk=api_token.pk).update(requests_per_minute=2)
    provider = fake_provider(fake_upstream, "openai", knobs="tokens=2")
    body = {"provider_id": str(provider.pk), "prompt": "Hi"}
    assert [_post(client, raw, body).status_code for _ in range(2)] == [200, 200]
    refused = _post(client, raw, body)
    assert refused.status_code == 429
    assert refused.json()["error"]["kind"] == "rate_limit"
    assert refused.json()["error"]["retryable"] is True
    assert 0 < int(refused["Retry-After"]) <= 60
    assert UsageRecord.objects.count() == 2  # the refused call never went upstream


def test_one_users_cached_answers_are_not_anothers(client, fake_upstream, django_user_model):
    # A hit would tell Bob what Alice asked, and hand him her answer.
    provider = fake_provider(fake_upstream, "openai", knobs="tokens=4", cache_responses=True)
    body = {"provider_id": str(provider.pk), "prompt": "Alice's question", "temperature": 0}
    alice, bob = (django_user_model.objects.create_user(name) for name in ("alice", "bob"))
    alices, bobs = (ApiToken.issue(user=u, name="script")[1] for u in (alice, bob))
    assert _post(client, alices, body).json()["data"]["cached"] is False
    assert _post(client, alices, body).json()["data"]["cached"] is True  # her own: shared
    assert _post(client, bobs, body).json()["data"]["cached"] is False
    assert generation_calls(fake_upstream) == 2


def test_only_post_is_allowed(client, token):
    _, raw = token
    assert client.get(URL, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 405


def test_deeply_nested_json_is_a_400_in_this_apis_shape(client, fake_upstream, token):
    _, raw = token
    response = _post(client, raw, b"[" * 100_000 + b"]" * 100_000)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["success"] is False
    assert body["error"]["kind"] == "invalid_request"
    assert body["error"]["retryable"] is False
    assert "nested too deeply" in body["error"]["message"]
    assert fake_upstream.calls == 0


# A lone surrogate, as JSON escapes it: valid JSON, but no UTF-8 (nor any provider) takes it.
SURROGATE = "hi \\ud800"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ('"prompt": "SURROGATE"', "prompt"),
        ('"messages": [{"role": "user", "content": "SURROGATE"}]', "messages[0].content"),
        ('"prompt": "Hi", "system": "SURROGATE"', "system"),
        ('"prompt": "Hi", "model": "SURROGATE"', "model"),
    ],
)
def test_unencodable_text_is_a_400_naming_the_field_and_nothing_is_metered(
    client, fake_upstream, token, fields, field
):
    _, raw = token
    provider = fake_provider(fake_upstream, "openai")
    body = f'{{"provider_id": "{provider.pk}", {fields.replace("SURROGATE", SURROGATE)}}}'
    response = _post(client, raw, body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["kind"], error["field"], error["retryable"]) == ("invalid_request", field, False)
    assert "cannot be encoded" in error["message"]
    assert fake_upstream.calls == 0
    assert not UsageRecord.objects.exists()


def test_a_surrogate_pair_is_ordinary_text(client, fake_upstream, token):
    _, raw = token
    provider = fake_provider(fake_upstream, "openai", knobs="tokens=2")
    body = f'{{"provider_id": "{provider.pk}", "prompt": "a smile \\ud83d\\ude00"}}'
    assert _post(client, raw, body).status_code == 200
    assert "\U0001f600" in str(fake_upstream.requests[-1].body["messages"])
