"""What /v1 accepts: bad requests, model names, the models list, parameters sent upstream."""

from __future__ import annotations

import json

import openai
import pytest

from tests.generation.gateway_helpers import *  # noqa: F403 (the fixtures)
from tests.generation.gateway_helpers import model_of, user_says
from tests.providers.fake_helpers import generation_calls

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/v1/chat/completions"


@pytest.fixture
def post(client, api_token, make_provider):
    """POST a raw body with Django's test client (no upstream is reached in these tests)."""
    provider = make_provider("openai")

    def send(body: object, **headers: str):
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        headers.setdefault("HTTP_AUTHORIZATION", f"Bearer {api_token[1]}")
        return client.post(URL, data, content_type="application/json", **headers)

    send.model = model_of(provider)
    return send


def assert_openai_error(response, status: int, param: str | None, code: str | None = None):
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    return error


BAD_BODIES = [
    ({}, "model", "missing_required_parameter"),
    ({"model": "M"}, "messages", "missing_required_parameter"),
    ({"model": "M", "messages": "hi"}, "messages", "invalid_type"),
    ({"model": "M", "messages": []}, "messages", "empty_array"),
    ({"model": "M", "messages": ["hi"]}, "messages[0]", "invalid_type"),
    ({"model": "M", "messages": [{"role": "user", "content": 3}]}, "messages[0].content", None),
    (
        {"model": "M", "messages": [{"role": "tool", "content": "x"}]},
        "messages[0].tool_call_id",
        "missing_required_parameter",
    ),
    ({"model": "M", "messages": [{"role": "function", "content": "x"}]}, "messages[0].role", None),
    ({"model": "M", "messages": [{"role": ["user"], "content": "x"}]}, "messages[0].role", None),
    (
        {"model": "M", "messages": [{"role": "user", "content": "x", "tool_calls": []}]},
        "messages[0].tool_calls",
        "unsupported_parameter",
    ),
    (
        {
            "model": "M",
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
            ],
        },
        "messages[0].content[0].image_url.url",
        "invalid_image_url",
    ),
    (
        {
            "model": "M",
            "messages": [
                {"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
            ],
        },
        "messages[0].content[0]",
        "unsupported_value",
    ),
    (
        {"model": "M", "messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
        "messages[0].content[0]",
        "unsupported_value",
    ),
    ({"model": 5, "messages": user_says()}, "model", "invalid_type"),
    ({"model": "M", "messages": user_says(), "temperature": "hot"}, "temperature", "invalid_type"),
    ({"model": "M", "messages": user_says(), "temperature": 3}, "temperature", "invalid_value"),
    ({"model": "M", "messages": user_says(), "top_p": 1.5}, "top_p", "invalid_value"),
    ({"model": "M", "messages": user_says(), "max_tokens": 0}, "max_tokens", "invalid_value"),
    ({"model": "M", "messages": user_says(), "max_tokens": True}, "max_tokens", "invalid_type"),
    ({"model": "M", "messages": user_says(), "stop": [1]}, "stop", "invalid_type"),
    ({"model": "M", "messages": user_says(), "stop": list("abcde")}, "stop", "invalid_value"),
    ({"model": "M", "messages": user_says(), "stream": "yes"}, "stream", "invalid_type"),
    (
        {"model": "M", "messages": user_says(), "stream_options": {"include_usage": True}},
        "stream_options",
        "invalid_value",
    ),
]


@pytest.mark.parametrize(("body", "param", "code"), BAD_BODIES)
def test_bad_bodies_are_400_naming_the_parameter(post, fake_upstream, body, param, code):
    if body.get("model") == "M":
        body = {**body, "model": post.model}
    error = assert_openai_error(post(body), 400, param, code)
    assert error["type"] == "invalid_request_error"
    assert fake_upstream.calls == 0


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"function_call": "auto"}, "function_call"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"logprobs": True}, "logprobs"),
        ({"made_up": 1}, "made_up"),
    ],
)
def test_unsupported_parameters_are_named_not_ignored(
    sdk, make_provider, fake_upstream, extra, param
):
    provider = make_provider("openai")
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(
            model=model_of(provider), messages=user_says(), extra_body=extra
        )
    assert caught.value.param == param
    assert caught.value.code == "unsupported_parameter"
    assert generation_calls(fake_upstream) == 0


def test_neutral_values_of_unsupported_parameters_are_accepted(sdk, make_provider):
    provider = make_provider("openai", knobs="tokens=2")
    completion = sdk.chat.completions.create(
        model=model_of(provider),
        messages=user_says(),
        n=1,
        presence_penalty=0,
        frequency_penalty=0.0,
        logprobs=False,
        tools=None,
    )
    assert len(completion.choices) == 1


def test_invalid_json_and_oversized_bodies(post, settings):
    assert_openai_error(post("{not json"), 400, None, "invalid_json")
    assert_openai_error(post("[1, 2]"), 400, None, "invalid_json")
    assert_openai_error(post(b'{"model": "\xed\xa0\x80"}'), 400, None, "invalid_json")
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "MAX_API_BODY_BYTES": 1000}
    body = {"model": post.model, "messages": user_says("x" * 2000)}
    assert_openai_error(post(body), 413, None, "request_too_large")


def test_deeply_nested_json_is_a_400_in_openais_shape(post, fake_upstream):
    response = post(b"[" * 100_000 + b"]" * 100_000)
    assert response["Content-Type"] == "application/json"
    error = assert_openai_error(response, 400, None, "invalid_json")
    assert error["type"] == "invalid_request_error"
    assert "nested too deeply" in error["message"]
    assert fake_upstream.calls == 0


# A lone surrogate, as JSON escapes it: valid JSON, but no UTF-8 (nor any provider) takes it.
SURROGATE = "hi \\ud800"
UNENCODABLE = [
    ('"messages": [{"role": "user", "content": "S"}]', "messages[0].content"),
    ('"messages": [{"role": "system", "content": "S"}, U]', "messages[0].content"),
    (
        '"messages": [{"role": "user", "content": [{"type": "text", "text": "S"}]}]',
        "messages[0].content[0].text",
    ),
    ('"messages": [U], "stop": ["END", "S"]', "stop[1]"),
    ('"messages": [U], "user": "S"', "user"),
    ('"messages": [{"role": "user", "content": "Hi", "name": "S"}]', "messages[0].name"),
]


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize(("fields", "param"), UNENCODABLE)
def test_unencodable_text_is_a_400_naming_the_parameter_and_nothing_is_metered(
    post, fake_upstream, fields, param, stream
):
    from usage.models import UsageRecord

    fields = fields.replace("U", '{"role": "user", "content": "Hi"}').replace("S", SURROGATE)
    body = f'{{"model": "{post.model}", "stream": {json.dumps(stream)}, {fields}}}'
    error = assert_openai_error(post(body), 400, param, "invalid_value")
    assert error["type"] == "invalid_request_error"
    assert "cannot be encoded" in error["message"]
    assert fake_upstream.calls == 0
    assert not UsageRecord.objects.exists()


def test_an_unencodable_model_name_is_a_400_too(post, fake_upstream):
    body = f'{{"model": "{SURROGATE}", "messages": [{{"role": "user", "content": "Hi"}}]}}'
    assert_openai_error(post(body), 400, "model", "invalid_value")
    assert fake_upstream.calls == 0


def test_engine_limits_name_the_parameter_the_client_sent(post, settings):
    cap = settings.SWITCHBOARD["MAX_TOKENS_CAP"]
    for name in ("max_tokens", "max_completion_tokens"):
        body = {"model": post.model, "messages": user_says(), name: cap + 1}
        assert_openai_error(post(body), 400, name, "invalid_value")
    body = {"model": post.model, "messages": [{"role": "user", "content": "  "}]}
    assert_openai_error(post(body), 400, "messages", "invalid_value")


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic abc", "Bearer sb_nope"])
def test_requests_without_a_valid_bearer_token_are_401(client, post, fake_upstream, header):
    body = json.dumps({"model": post.model, "messages": user_says()})
    headers = {} if header is None else {"HTTP_AUTHORIZATION": header}
    response = client.post(URL, body, content_type="application/json", **headers)
    error = assert_openai_error(response, 401, None, "invalid_api_key")
    assert error["type"] == "invalid_request_error"
    assert generation_calls(fake_upstream) == 0


def test_wrong_methods_are_405(client, api_token):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {api_token[1]}"}
    assert client.get(URL, **auth).status_code == 405
    assert client.post("/v1/models", **auth).status_code == 405


def test_unknown_model_is_a_404(sdk, make_provider, fake_upstream):
    provider = make_provider("openai")
    for name in ("no-such-model", model_of(provider, "no-such-model"), "Nope/fake-model"):
        with pytest.raises(openai.NotFoundError) as caught:
            sdk.chat.completions.create(model=name, messages=user_says())
        assert caught.value.code == "model_not_found"
        assert caught.value.param == "model"
    assert generation_calls(fake_upstream) == 0


def test_plain_model_names_work_when_unambiguous(sdk, make_provider, fake_upstream):
    make_provider("anthropic", knobs="tokens=3")
    completion = sdk.chat.completions.create(model="fake-model-large", messages=user_says())
    assert len(completion.choices[0].message.content.split()) == 3
    assert completion.model == "fake-model-large"
    assert fake_upstream.requests[-1].path == "/v1/messages"
    make_provider("openai")
    with pytest.raises(openai.NotFoundError, match="Several providers"):
        sdk.chat.completions.create(model="fake-model-large", messages=user_says())


def test_inactive_providers_are_not_offered(sdk, make_provider):
    provider = make_provider("openai")
    provider.deactivate(by=None)
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(model=model_of(provider), messages=user_says())
    assert not [m for m in sdk.models.list() if m.id.startswith(provider.name)]


def test_models_list(sdk, make_provider):
    openai_provider = make_provider("openai")
    anthropic_provider = make_provider("anthropic")
    broken = make_provider("openai_compatible", knobs="fault=500", default_model="only-model")
    page = sdk.models.list()
    ids = [m.id for m in page]
    assert page.object == "list"
    assert all(m.object == "model" for m in page)
    for provider in (openai_provider, anthropic_provider):
        for model in ("fake-model", "fake-model-large", "demo-model"):
            assert model_of(provider, model) in ids
    # A provider whose list cannot be fetched offers its default model.
    assert model_of(broken, "only-model") in ids
    # Plain names only where one provider offers them.
    assert "only-model" in ids
    assert "fake-model" not in ids
    owners = {m.id: m.owned_by for m in page}
    assert owners["only-model"] == owners[model_of(broken, "only-model")] == broken.name


def test_parameters_reach_the_provider_and_nothing_else_does(sdk, make_provider, fake_upstream):
    provider = make_provider("openai", knobs="tokens=3")
    sdk.chat.completions.create(
        model=model_of(provider),
        messages=[
            {"role": "developer", "content": "Be brief"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "you"}],
            },
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Again"},
        ],
        max_completion_tokens=7,
        temperature=0.2,
        top_p=0.9,
        stop=["END"],
        seed=42,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        logit_bias={"50256": -100},
        user="user-7",
        extra_headers={"X-Forward-Me": "no", "OpenAI-Organization": "org-x"},
    )
    sent = fake_upstream.requests[-1]
    assert sent.body["messages"] == [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "Hi you"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Again"},
    ]
    assert sent.body["max_completion_tokens"] == 7
    assert (sent.body["temperature"], sent.body["top_p"], sent.body["stop"]) == (0.2, 0.9, ["END"])
    assert sent.body["seed"] == 42
    assert (sent.body["presence_penalty"], sent.body["frequency_penalty"]) == (0.5, -0.5)
    assert sent.body["logit_bias"] == {"50256": -100}
    assert sent.body["user"] == "user-7"
    assert "x-forward-me" not in sent.headers
    assert "openai-organization" not in sent.headers


def test_anthropic_gets_its_own_parameters(sdk, make_provider, fake_upstream):
    provider = make_provider("anthropic", knobs="tokens=3")
    completion = sdk.chat.completions.create(
        model=model_of(provider),
        messages=[{"role": "system", "content": "Be brief"}, *user_says()],
        max_tokens=2,
        temperature=0.5,
        top_p=0.5,
        stop="END",
    )
    sent = fake_upstream.requests[-1].body
    assert sent["system"][0]["text"] == "Be brief"
    assert sent["messages"][0]["content"][0]["text"] == user_says()[0]["content"]
    assert (sent["max_tokens"], sent["temperature"], sent["top_p"]) == (2, 0.5, 0.5)
    assert sent["stop_sequences"] == ["END"]
    # Anthropic's max_tokens stop reason, in OpenAI's words.
    assert completion.choices[0].finish_reason == "length"


def test_anthropic_temperature_above_one_is_refused_before_the_call(
    sdk, make_provider, fake_upstream
):
    provider = make_provider("anthropic")
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model=model_of(provider), messages=user_says(), temperature=1.5)
    assert caught.value.param == "temperature"
    assert generation_calls(fake_upstream) == 0


def test_prompt_and_answer_text_stay_out_of_the_logs(sdk, make_provider, caplog):
    provider = make_provider("openai", knobs="tokens=4")
    caplog.set_level("DEBUG")
    completion = sdk.chat.completions.create(
        model=model_of(provider), messages=user_says("confidential plans")
    )
    assert "confidential" not in caplog.text
    assert completion.choices[0].message.content not in caplog.text


def test_one_model_is_retrieved_by_its_id_or_is_a_json_404(sdk, make_provider, gateway_url):
    # The SDK's models.retrieve: an id may hold a slash ("Provider name/model").
    provider = make_provider("openai")
    name = model_of(provider)
    model = sdk.models.retrieve(name)
    assert (model.id, model.owned_by) == (name, provider.name)
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.models.retrieve(f"{provider.name}/no-such-model")
    assert caught.value.code == "model_not_found"
    assert caught.value.response.headers["content-type"] == "application/json"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="sb_wrong").models.retrieve(name)


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"seed": 1}, "seed"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"logit_bias": {"1": 5}}, "logit_bias"),
    ],
)
def test_anthropic_refuses_controls_it_has_no_equivalent_for(
    sdk, make_provider, fake_upstream, extra, param
):
    provider = make_provider("anthropic")
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(
            model=model_of(provider), messages=user_says(), extra_body=extra
        )
    assert caught.value.param == param
    assert "does not take" in caught.value.message
    assert generation_calls(fake_upstream) == 0


def test_anthropic_gets_the_user_as_metadata(sdk, make_provider, fake_upstream):
    provider = make_provider("anthropic", knobs="tokens=2")
    sdk.chat.completions.create(model=model_of(provider), messages=user_says(), user="user-7")
    assert fake_upstream.requests[-1].body["metadata"] == {"user_id": "user-7"}


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"seed": 1.5}, "seed"),
        ({"seed": True}, "seed"),
        ({"seed": 2**70}, "seed"),
        ({"logit_bias": {str(token): 1 for token in range(301)}}, "logit_bias"),
        ({"presence_penalty": 3}, "presence_penalty"),
        ({"logit_bias": {"abc": 1}}, "logit_bias"),
        ({"logit_bias": {"1": 101}}, "logit_bias"),
        ({"logit_bias": [1]}, "logit_bias"),
        ({"user": "u" * 257}, "user"),
    ],
)
def test_bad_sampling_controls_are_400(sdk, make_provider, fake_upstream, extra, param):
    provider = make_provider("openai")
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(
            model=model_of(provider), messages=user_says(), extra_body=extra
        )
    assert caught.value.param == param
    assert generation_calls(fake_upstream) == 0


def test_n_answers_come_as_n_choices_metered_and_held_once_each(sdk, make_provider, fake_upstream):
    from usage.models import UsageRecord

    provider = make_provider("openai", knobs="tokens=4")
    completion = sdk.chat.completions.create(model=model_of(provider), messages=user_says(), n=3)
    assert [choice.index for choice in completion.choices] == [0, 1, 2]
    texts = [choice.message.content for choice in completion.choices]
    assert len(set(texts)) == 3, "three different answers"
    assert fake_upstream.requests[-1].body["n"] == 3
    (record,) = UsageRecord.objects.all()  # one call, its usage covering every answer
    assert record.output_tokens == completion.usage.completion_tokens == 12


@pytest.mark.parametrize(
    ("kind", "extra", "says"),
    [
        ("anthropic", {"n": 2}, "does not take 'n'"),
        ("openai", {"n": 9}, "between 1 and 8"),
        ("openai", {"n": "2"}, "an integer"),
    ],
)
def test_n_that_cannot_be_honoured_is_a_400(sdk, make_provider, fake_upstream, kind, extra, says):
    provider = make_provider(kind)
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(
            model=model_of(provider), messages=user_says(), extra_body=extra
        )
    assert caught.value.param == "n"
    assert says in caught.value.message
    assert generation_calls(fake_upstream) == 0


def test_n_answers_stream_as_indexed_choices(sdk, make_provider, fake_upstream):
    provider = make_provider("openai", knobs="tokens=4")
    stream = sdk.chat.completions.create(
        model=model_of(provider),
        messages=user_says(),
        n=2,
        stream=True,
        stream_options={"include_usage": True},
    )
    texts, finished, usage = {0: "", 1: ""}, set(), None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finished.add(choice.index)
    complete = sdk.chat.completions.create(model=model_of(provider), messages=user_says(), n=2)
    # The same two answers as without streaming, each finished, the usage covering both.
    assert texts == {c.index: c.message.content for c in complete.choices}
    assert texts[0] != texts[1]
    assert finished == {0, 1}
    assert usage is not None
    assert usage.completion_tokens == 8
