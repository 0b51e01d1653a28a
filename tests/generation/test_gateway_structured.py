"""Structured output on /v1 with the official SDK: `parse()` with a Pydantic model end to
end on OpenAI and Anthropic kinds, JSON mode, and the 400s for what cannot be honoured."""

from __future__ import annotations

import json
from enum import StrEnum

import openai
import pytest
from pydantic import BaseModel

from tests.generation.gateway_helpers import *  # noqa: F403 (the fixtures)
from tests.generation.gateway_helpers import model_of, user_says
from tests.providers.fake_helpers import generation_calls

pytestmark = pytest.mark.django_db(transaction=True)


class Severity(StrEnum):
    LOW = "low"
    HIGH = "high"


class Finding(BaseModel):
    title: str
    severity: Severity


class Review(BaseModel):
    summary: str
    score: int
    approved: bool
    findings: list[Finding]


def _sent(fake_upstream) -> dict:
    return next(r.body for r in fake_upstream.requests if r.method == "POST")


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_parse_with_a_pydantic_model_works_end_to_end(sdk, make_provider, fake_upstream, kind):
    provider = make_provider(kind)
    completion = sdk.chat.completions.parse(
        model=model_of(provider), messages=user_says("Review this"), response_format=Review
    )
    review = completion.choices[0].message.parsed
    assert isinstance(review, Review)
    assert review.findings
    assert review.findings[0].severity in Severity
    sent = _sent(fake_upstream)
    if kind == "openai":
        assert sent["response_format"]["type"] == "json_schema"
        assert sent["response_format"]["json_schema"]["name"] == "Review"
        assert sent["response_format"]["json_schema"]["strict"] is True
    else:
        # Anthropic's structured outputs, with the same schema.
        schema = sent["output_config"]["format"]["schema"]
        assert set(schema["properties"]) == {"summary", "score", "approved", "findings"}


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_streamed_structured_answer_is_valid_json(sdk, make_provider, kind):
    provider = make_provider(kind)
    schema = Review.model_json_schema()
    stream = sdk.chat.completions.create(
        model=model_of(provider),
        messages=user_says("Review this"),
        response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": schema}},
        stream=True,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert Review.model_validate(json.loads(text))


def test_json_mode_on_openai(sdk, make_provider, fake_upstream):
    provider = make_provider("openai")
    completion = sdk.chat.completions.create(
        model=model_of(provider),
        messages=user_says("Answer in JSON"),
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)
    assert _sent(fake_upstream)["response_format"] == {"type": "json_object"}


def test_json_mode_on_anthropic_is_a_400_pointing_to_json_schema(sdk, make_provider, fake_upstream):
    provider = make_provider("anthropic")
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(
            model=model_of(provider),
            messages=user_says(),
            response_format={"type": "json_object"},
        )
    assert caught.value.param == "response_format"
    assert "json_schema" in caught.value.message
    assert generation_calls(fake_upstream) == 0


@pytest.mark.parametrize(
    ("response_format", "param"),
    [
        ({"type": "yaml"}, "response_format.type"),
        ("json", "response_format.type"),
        ({"type": "json_schema"}, "response_format.json_schema"),
        (
            {"type": "json_schema", "json_schema": {"schema": {}}},
            "response_format.json_schema.name",
        ),
        (
            {"type": "json_schema", "json_schema": {"name": "a b", "schema": {}}},
            "response_format.json_schema.name",
        ),
        (
            {"type": "json_schema", "json_schema": {"name": "r", "schema": "{}"}},
            "response_format.json_schema.schema",
        ),
        (
            {"type": "json_schema", "json_schema": {"name": "r", "schema": {}, "strict": "yes"}},
            "response_format.json_schema.strict",
        ),
    ],
)
def test_malformed_response_formats_are_400_naming_the_part(
    sdk, make_provider, fake_upstream, response_format, param
):
    provider = make_provider("openai")
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(
            model=model_of(provider), messages=user_says(), response_format=response_format
        )
    assert caught.value.param == param
    assert generation_calls(fake_upstream) == 0


def test_text_format_is_free_text(sdk, make_provider, fake_upstream):
    provider = make_provider("openai", knobs="tokens=3")
    sdk.chat.completions.create(
        model=model_of(provider), messages=user_says(), response_format={"type": "text"}
    )
    assert "response_format" not in _sent(fake_upstream)
