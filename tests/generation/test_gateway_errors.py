"""Upstream failures and auth failures through /v1, as the openai SDK raises them."""

from __future__ import annotations

import openai
import pytest

from tests.generation.gateway_helpers import *  # noqa: F403 (the fixtures)
from tests.generation.gateway_helpers import model_of, user_says
from tests.providers.fake_helpers import TEST_KEY
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)

# knobs -> (status, SDK exception class, error code, x-should-retry)
UPSTREAM_FAULTS = [
    ("fault=401", 502, openai.InternalServerError, "upstream_auth_failed", "false"),
    ("fault=402", 502, openai.InternalServerError, "upstream_billing", "false"),
    ("fault=429&retry_after=3", 429, openai.RateLimitError, "rate_limit_exceeded", "true"),
    ("fault=500", 502, openai.InternalServerError, "upstream_error", "true"),
    ("fault=503", 503, openai.InternalServerError, "upstream_overloaded", "true"),
    ("fault=529", 503, openai.InternalServerError, "upstream_overloaded", "true"),
    ("fault=redirect", 400, openai.BadRequestError, "upstream_bad_request", "false"),
    # A 200 whose body is a web page, not an answer (it was a 500 or an empty "answer").
    ("fault=html", 502, openai.InternalServerError, "upstream_error", "true"),
    ("fault=stall", 504, openai.InternalServerError, "upstream_timeout", "true"),
]


@pytest.fixture
def short_deadline(settings):
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "CALL_DEADLINE_SECONDS": 0.3}


@pytest.mark.usefixtures("short_deadline")
@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize(("knobs", "status", "exc_class", "code", "retry"), UPSTREAM_FAULTS)
def test_upstream_failures_raise_the_matching_sdk_exception(
    sdk, make_provider, kind, stream, knobs, status, exc_class, code, retry
):
    provider = make_provider(kind, knobs=knobs)
    with pytest.raises(exc_class) as caught:
        sdk.chat.completions.create(model=model_of(provider), messages=user_says(), stream=stream)
    error = caught.value
    assert error.status_code == status
    assert error.code == code
    assert error.body["message"]
    assert set(error.body) == {"message", "type", "param", "code"}
    assert error.response.headers["x-should-retry"] == retry
    if status == 429:
        assert error.response.headers["retry-after"] == "3"
    # Every failure is metered, with its kind, as an API call.
    record = UsageRecord.objects.get()
    assert (record.source, record.outcome) == ("api", str(provider_kind_outcome(knobs)))


def provider_kind_outcome(knobs: str) -> str:
    return {
        "fault=401": "auth",
        "fault=402": "billing",
        "fault=429&retry_after=3": "rate_limit",
        "fault=500": "provider_error",
        "fault=503": "overloaded",
        "fault=529": "overloaded",
        "fault=redirect": "bad_request",
        "fault=html": "provider_error",
        "fault=stall": "timeout",
    }[knobs]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_dropped_connection_is_a_bad_gateway(sdk, make_provider, kind):
    provider = make_provider(kind, knobs="fault=drop")
    with pytest.raises(openai.InternalServerError) as caught:
        sdk.chat.completions.create(model=model_of(provider), messages=user_says())
    assert caught.value.status_code == 502
    assert caught.value.code == "upstream_unreachable"


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_failure_mid_stream_is_an_error_event_after_the_text(sdk, make_provider, kind):
    provider = make_provider(kind, knobs="tokens=8&fault=error&after=3")
    stream = sdk.chat.completions.create(
        model=model_of(provider), messages=user_says(), stream=True
    )
    texts: list[str] = []

    def read() -> None:
        for chunk in stream:
            texts.extend(c.delta.content or "" for c in chunk.choices)

    with pytest.raises(openai.APIError) as caught:
        read()
    assert len("".join(texts).split()) == 3
    assert caught.value.code == "upstream_error"
    record = UsageRecord.objects.get()
    assert record.outcome == "provider_error"


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_an_upstream_auth_failure_never_shows_the_provider_key(
    gateway_url, api_token, make_provider, stream
):
    import httpx2 as httpx

    provider = make_provider("openai", key=f"{TEST_KEY}-invalid")
    response = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {api_token[1]}"},
        json={"model": model_of(provider), "messages": user_says(), "stream": stream},
    )
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_auth_failed"
    assert TEST_KEY not in response.text
    assert provider.api_key_hint not in response.text
    assert "Hello there" not in response.text


@pytest.mark.parametrize(
    "api_key", ["", "sb_not-a-real-token", "revoked"], ids=["missing", "wrong", "revoked"]
)
def test_a_missing_wrong_or_revoked_token_is_a_401(gateway_url, api_token, make_provider, api_key):
    provider = make_provider("openai")
    if api_key == "revoked":
        token, api_key = api_token
        token.revoke()
    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=api_key or "x", max_retries=0)
    headers = {"Authorization": ""} if not api_key else {}
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(
            model=model_of(provider), messages=user_says(), extra_headers=headers
        )
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client.models.list(extra_headers=headers)
    assert not UsageRecord.objects.exists()


def test_a_session_cookie_is_not_enough(gateway_url, api_user, client):
    import httpx2 as httpx

    client.force_login(api_user)
    cookie = client.cookies["sessionid"].value
    response = httpx.get(f"{gateway_url}/v1/models", cookies={"sessionid": cookie})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.usefixtures("short_deadline")
@pytest.mark.parametrize("wait", ["inf", "nan", "-5"])
def test_a_nonsense_retry_after_from_upstream_is_still_a_clean_429(sdk, make_provider, wait):
    provider = make_provider("openai", knobs=f"fault=429&retry_after={wait}")
    with pytest.raises(openai.RateLimitError) as caught:
        sdk.chat.completions.create(model=model_of(provider), messages=user_says())
    assert caught.value.status_code == 429
    assert caught.value.response.headers["x-should-retry"] == "true"
