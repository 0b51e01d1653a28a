"""POST /v1/embeddings with the official openai SDK as the client."""

from __future__ import annotations

import base64
import logging
import struct
from decimal import Decimal

import openai
import pytest

from providers.fake_upstream.embeddings import EMBEDDINGS_PATH, prompt_tokens, vector_for
from tests.generation.conftest import wait_for
from tests.generation.gateway_helpers import *  # noqa: F403 (the fixtures)
from tests.generation.gateway_helpers import model_of
from tests.providers.fake_helpers import TEST_KEY
from usage.models import Reservation, UsageRecord, UserBudget

pytestmark = pytest.mark.django_db(transaction=True)

EMBEDDING_KINDS = ("openai", "openai_compatible")


def upstream_calls(fake) -> list[dict]:
    return [r.body for r in fake.requests if r.path == EMBEDDINGS_PATH]


def decode(encoded: str) -> list[float]:
    raw = base64.b64decode(encoded)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


@pytest.mark.parametrize("kind", EMBEDDING_KINDS)
def test_a_string_is_one_vector_with_its_usage(sdk, make_provider, kind):
    provider = make_provider(kind)
    response = sdk.embeddings.create(
        model=model_of(provider), input="Hello there", encoding_format="float"
    )
    assert response.object == "list"
    assert response.model == model_of(provider)
    (item,) = response.data
    assert (item.object, item.index) == ("embedding", 0)
    assert item.embedding == vector_for("fake-model", "Hello there")
    tokens = prompt_tokens(["Hello there"])
    assert (response.usage.prompt_tokens, response.usage.total_tokens) == (tokens, tokens)
    record = UsageRecord.objects.get()
    assert (record.source, record.outcome, record.model) == ("api", "ok", "fake-model")
    assert (record.input_tokens, record.output_tokens) == (tokens, 0)
    assert record.user.username == "gateway-user"
    assert response._request_id == record.request_id  # the SDK's x-request-id


def test_a_list_of_strings_keeps_its_order(sdk, make_provider):
    provider = make_provider("openai")
    inputs = ["first", "second input", "the third"]
    response = sdk.embeddings.create(
        model=model_of(provider), input=inputs, encoding_format="float"
    )
    assert [item.index for item in response.data] == [0, 1, 2]
    assert [item.embedding for item in response.data] == [
        vector_for("fake-model", text) for text in inputs
    ]
    assert response.usage.prompt_tokens == prompt_tokens(inputs)


@pytest.mark.parametrize("kind", EMBEDDING_KINDS)
def test_base64_is_the_float_vectors_as_little_endian_float32(sdk, make_provider, kind):
    provider = make_provider(kind)
    inputs = ["one", "two"]
    as_floats = sdk.embeddings.create(
        model=model_of(provider), input=inputs, encoding_format="float"
    )
    as_base64 = sdk.embeddings.create(
        model=model_of(provider), input=inputs, encoding_format="base64"
    )
    # Asked for explicitly, the SDK hands base64 back as sent: a string per vector.
    encoded = [item.embedding for item in as_base64.data]
    assert all(isinstance(e, str) for e in encoded)
    assert [decode(e) for e in encoded] == [item.embedding for item in as_floats.data]
    # Not asked, the SDK asks for base64 itself and decodes it: the same numbers.
    default = sdk.embeddings.create(model=model_of(provider), input=inputs)
    assert [item.embedding for item in default.data] == [item.embedding for item in as_floats.data]


def test_dimensions_are_passed_on(sdk, make_provider, fake_upstream):
    provider = make_provider("openai")
    response = sdk.embeddings.create(
        model=model_of(provider), input="Hello", dimensions=3, encoding_format="float"
    )
    assert response.data[0].embedding == vector_for("fake-model", "Hello", 3)
    (body,) = upstream_calls(fake_upstream)
    assert body["dimensions"] == 3


def test_token_arrays_reach_openai(sdk, make_provider, fake_upstream):
    provider = make_provider("openai")
    several = sdk.embeddings.create(
        model=model_of(provider), input=[[1, 2, 3], [4, 5]], encoding_format="float"
    )
    assert [item.embedding for item in several.data] == [
        vector_for("fake-model", [1, 2, 3]),
        vector_for("fake-model", [4, 5]),
    ]
    assert several.usage.prompt_tokens == 5
    one = sdk.embeddings.create(model=model_of(provider), input=[7, 8], encoding_format="float")
    assert [item.embedding for item in one.data] == [vector_for("fake-model", [7, 8])]
    assert [body["input"] for body in upstream_calls(fake_upstream)] == [
        [[1, 2, 3], [4, 5]],
        [[7, 8]],
    ]


def test_token_arrays_are_refused_for_a_compatible_server(sdk, make_provider, fake_upstream):
    provider = make_provider("openai_compatible")
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.embeddings.create(model=model_of(provider), input=[[1, 2, 3]])
    assert caught.value.param == "input"
    assert "text input only" in caught.value.message
    assert upstream_calls(fake_upstream) == []


@pytest.mark.parametrize(("kind", "label"), [("anthropic", "Anthropic"), ("deepseek", "DeepSeek")])
def test_a_provider_without_embeddings_is_a_400_naming_the_model(
    sdk, make_provider, fake_upstream, kind, label
):
    provider = make_provider(kind)
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.embeddings.create(model=model_of(provider), input="Hello")
    error = caught.value
    assert error.status_code == 400
    assert error.param == "model"
    assert (
        error.body["message"] == f"Provider {provider.name!r} ({label}) does not offer embeddings."
    )
    assert error.response.headers["x-should-retry"] == "false"
    assert upstream_calls(fake_upstream) == []
    assert not UsageRecord.objects.exists()


def test_an_unknown_model_is_a_404(sdk, make_provider, fake_upstream):
    provider = make_provider("openai")
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.embeddings.create(model=model_of(provider, "no-such-model"), input="Hello")
    assert (caught.value.code, caught.value.param) == ("model_not_found", "model")
    assert upstream_calls(fake_upstream) == []


BAD_BODIES = [
    # (the body's parameters besides model, the param the 400 names)
    ({"input": []}, "input"),
    ({"input": ""}, "input"),
    ({"input": ["fine", ""]}, "input[1]"),
    ({"input": ["fine", 3]}, "input[1]"),
    ({"input": [[1, 2], "text"]}, "input[1]"),
    ({"input": [[1], []]}, "input[1]"),
    ({"input": [1, -2]}, "input[1]"),
    ({"input": [1, 2.5]}, "input[1]"),
    ({"input": [True]}, "input[0]"),
    ({"input": [{"text": "a"}]}, "input[0]"),
    ({"input": 42}, "input"),
    ({"input": {"text": "a"}}, "input"),
    ({"input": None}, "input"),  # null: not given, and it is required
    ({"input": "a", "encoding_format": "hex"}, "encoding_format"),
    ({"input": "a", "encoding_format": 1}, "encoding_format"),
    ({"input": "a", "dimensions": 0}, "dimensions"),
    ({"input": "a", "dimensions": 10**30}, "dimensions"),
    ({"input": "a", "dimensions": "8"}, "dimensions"),
    ({"input": "a", "dimensions": True}, "dimensions"),
    ({"input": "a", "user": 5}, "user"),
    ({"input": "a", "extra_body": {"truncate": "END"}}, "truncate"),
    ({"input": "a", "extra_body": {"model": None}}, "model"),
]


@pytest.mark.parametrize(("params", "param"), BAD_BODIES)
def test_bad_parameters_are_a_400_naming_them(sdk, make_provider, fake_upstream, params, param):
    provider = make_provider("openai")
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.embeddings.create(model=model_of(provider), **params)
    error = caught.value
    assert error.param == param
    assert error.type == "invalid_request_error"
    assert param.split("[")[0] in error.message
    assert upstream_calls(fake_upstream) == []
    assert not UsageRecord.objects.exists()


def test_too_many_inputs_is_a_400(sdk, make_provider, settings, fake_upstream):
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "MAX_EMBEDDING_INPUTS": 3}
    provider = make_provider("openai")
    sdk.embeddings.create(model=model_of(provider), input=["a", "b", "c"])
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.embeddings.create(model=model_of(provider), input=["a", "b", "c", "d"])
    assert caught.value.param == "input"
    assert "At most 3 inputs" in caught.value.message
    assert len(upstream_calls(fake_upstream)) == 1


def test_openai_s_own_limit_of_2048_inputs_is_the_default(sdk, make_provider):
    provider = make_provider("openai")
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.embeddings.create(model=model_of(provider), input=["a"] * 2049)
    assert "At most 2048 inputs" in caught.value.message
    response = sdk.embeddings.create(model=model_of(provider), input=["a"] * 2048)
    assert len(response.data) == 2048


def test_too_long_an_input_is_a_400_and_the_body_limit_a_413(sdk, make_provider, settings):
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "MAX_PROMPT_CHARS": 100}
    provider = make_provider("openai")
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.embeddings.create(model=model_of(provider), input=["x" * 60, "y" * 41])
    assert caught.value.param == "input"
    assert "too long" in caught.value.message
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "MAX_API_BODY_BYTES": 1000}
    with pytest.raises(openai.APIStatusError) as too_large:
        sdk.embeddings.create(model=model_of(provider), input="z" * 2000)
    assert too_large.value.status_code == 413


def test_each_attempt_is_a_usage_record_priced_at_the_input_price(
    sdk, make_provider, settings, price_fake_model
):
    provider = make_provider("openai", knobs="fault=500")
    price_fake_model(provider)  # $2 per million input tokens
    settings.SWITCHBOARD = {
        **settings.SWITCHBOARD,
        "RETRY_MAX_ATTEMPTS": 2,
        "RETRY_BASE_DELAY_SECONDS": 0.01,
    }
    with pytest.raises(openai.InternalServerError):
        sdk.embeddings.create(model=model_of(provider), input="Hello")
    failed = list(UsageRecord.objects.order_by("attempt_number"))
    assert [(r.attempt_number, r.outcome, r.cost_nanos) for r in failed] == [
        (1, "provider_error", 0),
        (2, "provider_error", 0),
    ]
    assert failed[0].request_id == failed[1].request_id

    good = make_provider("openai")
    inputs = ["a sentence of some length", "another"]
    sdk.embeddings.create(model=model_of(good), input=inputs)
    record = UsageRecord.objects.get(provider=good)
    tokens = prompt_tokens(inputs)
    assert (record.attempt_number, record.outcome, record.input_tokens) == (1, "ok", tokens)
    assert not record.tokens_estimated
    assert record.cost_nanos == tokens * 2000  # $2 / 1M tokens = 2,000 nano-dollars a token
    assert Decimal(record.price_snapshot["input"]) == 2


def test_over_budget_is_refused_before_any_upstream_call(
    sdk, api_user, make_provider, fake_upstream
):
    provider = make_provider("openai")
    UserBudget.objects.create(user=api_user, monthly_limit=Decimal("0.00"))
    with pytest.raises(openai.APIStatusError) as caught:
        sdk.embeddings.create(model=model_of(provider), input="Hello")
    assert caught.value.status_code == 402
    assert caught.value.type == "insufficient_quota"
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert upstream_calls(fake_upstream) == []
    record = UsageRecord.objects.get()
    assert (record.outcome, record.source, record.cost_nanos) == ("over_budget", "api", 0)
    assert not Reservation.objects.filter(status=Reservation.Status.ACTIVE).exists()


def test_the_hold_is_the_input_only_and_is_settled(sdk, api_user, give_budget, make_provider):
    give_budget(api_user)  # fake-model at $1 in, $2 out per million tokens
    provider = make_provider("openai")
    sdk.embeddings.create(model=model_of(provider), input="x" * 30)
    reservation = Reservation.objects.get()
    assert reservation.status == Reservation.Status.SETTLED
    assert reservation.amount_nanos == 10 * 1000  # 30 characters held as 10 tokens, no output
    assert reservation.actual_nanos == UsageRecord.objects.get().cost_nanos


def test_an_upstream_429_is_an_openai_shaped_429(sdk, make_provider):
    provider = make_provider("openai", knobs="fault=429&retry_after=3")
    with pytest.raises(openai.RateLimitError) as caught:
        sdk.embeddings.create(model=model_of(provider), input="Hello")
    error = caught.value
    assert error.status_code == 429
    assert (error.type, error.code) == ("requests", "rate_limit_exceeded")
    assert set(error.body) == {"message", "type", "param", "code"}
    assert error.response.headers["retry-after"] == "3"
    assert error.response.headers["x-should-retry"] == "true"
    assert UsageRecord.objects.get().outcome == "rate_limit"


UPSTREAM_FAULTS = [
    ("fault=401", 502, "upstream_auth_failed", "auth"),
    ("fault=402", 502, "upstream_billing", "billing"),
    ("fault=500", 502, "upstream_error", "provider_error"),
    ("fault=503", 503, "upstream_overloaded", "overloaded"),
    ("fault=html", 502, "upstream_error", "provider_error"),
    ("fault=drop", 502, "upstream_unreachable", "network"),
    ("fault=stall", 504, "upstream_timeout", "timeout"),
]


@pytest.mark.parametrize(("knobs", "status", "code", "outcome"), UPSTREAM_FAULTS)
def test_upstream_failures_have_the_chat_statuses_and_are_metered(
    sdk, make_provider, settings, knobs, status, code, outcome
):
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "CALL_DEADLINE_SECONDS": 0.3}
    provider = make_provider("openai", knobs=knobs)
    with pytest.raises(openai.APIStatusError) as caught:
        sdk.embeddings.create(model=model_of(provider), input="Hello")
    assert (caught.value.status_code, caught.value.code) == (status, code)
    assert UsageRecord.objects.get().outcome == outcome


def test_no_key_or_input_text_in_errors_or_logs(sdk, make_provider, caplog):
    secret_text = "my private sentence 1234"
    provider = make_provider("openai", knobs="fault=401")
    with caplog.at_level(logging.DEBUG), pytest.raises(openai.InternalServerError) as caught:
        sdk.embeddings.create(model=model_of(provider), input=secret_text)
    answer = caught.value.response.text
    assert caught.value.code == "upstream_auth_failed"
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert any("embeddings" in record.getMessage() for record in caplog.records)
    for text in (answer, logged):
        assert TEST_KEY not in text
        assert TEST_KEY[-6:] not in text
        assert secret_text not in text


def test_a_client_that_hangs_up_is_still_metered(
    gateway_url, api_user, give_budget, api_token, make_provider, fake_upstream
):
    give_budget(api_user)
    provider = make_provider("openai", knobs="ttft=3000")
    impatient = openai.OpenAI(
        base_url=f"{gateway_url}/v1", api_key=api_token[1], max_retries=0, timeout=0.3
    )
    with pytest.raises(openai.APITimeoutError):
        impatient.embeddings.create(model=model_of(provider), input="x" * 12)
    assert fake_upstream.wait_for(lambda: fake_upstream.early_closes == 1, timeout=5)
    record = wait_for(lambda: UsageRecord.objects.filter(outcome="cancelled").first())
    assert (record.input_tokens, record.tokens_estimated) == (3, True)
    reservation = wait_for(
        lambda: Reservation.objects.filter(status=Reservation.Status.SETTLED).first()
    )
    assert reservation.actual_nanos == record.cost_nanos


def test_a_wrong_token_or_method_is_refused(gateway_url, make_provider):
    import httpx2 as httpx

    provider = make_provider("openai")
    body = {"model": model_of(provider), "input": "Hello"}
    wrong = httpx.post(
        f"{gateway_url}/v1/embeddings", json=body, headers={"Authorization": "Bearer sb_nope"}
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{gateway_url}/v1/embeddings").status_code == 405
