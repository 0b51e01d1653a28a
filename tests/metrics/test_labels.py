"""Label values are bounded and never carry a path, a user, a key or a prompt."""

from __future__ import annotations

import pytest

from metrics import labels
from providers.adapters.base import Usage
from providers.cache import models_key
from providers.models_list import store_models
from tests.metrics.scrape import label_values, value
from tests.usage.factories import ok_result
from usage.services import record_generation

pytestmark = pytest.mark.django_db


@pytest.fixture
def provider():
    from providers.models import Provider

    made = Provider(name="Team OpenAI", kind="openai", default_model="gpt-4o")
    made.set_api_key("sk-label-test-0123456789abcdef")
    made.save()
    return made


def record(provider, model: str, request_id: str, capture) -> None:
    with capture(execute=True):
        record_generation(
            provider=provider,
            user=None,
            source="api",
            result=ok_result(model, Usage(input_tokens=10, output_tokens=5)),
            request_id=request_id,
        )


def test_requests_are_labelled_by_route_name_never_by_path(client, scrape, django_user_model):
    client.force_login(django_user_model.objects.create_user("label-user"))
    assert client.get("/c/987654/").status_code == 404
    assert client.get("/no-such-page-4242/").status_code == 404
    text = scrape()
    requests = "switchboard_http_requests_total"
    assert value(text, requests, view="generation:conversation", status="404") >= 1
    assert value(text, requests, view="unmatched", status="404") >= 1
    assert "987654" not in text
    assert "no-such-page" not in text
    assert "label-user" not in text


def test_models_staff_configured_are_labels_others_are_other(
    provider, scrape, django_capture_on_commit_callbacks
):
    # gpt-4o-mini has a list price (seeded); gpt-4o is the provider's default model;
    # listed-model is in the provider's published list; the last one is none of those.
    store_models(models_key(provider), ["listed-model"])
    for n, model in enumerate(
        ["gpt-4o-mini", "gpt-4o", "listed-model", "Summarise: my secret plan"]
    ):
        record(provider, model, f"label-{n}", django_capture_on_commit_callbacks)
    text = scrape()
    models = label_values(text, "switchboard_upstream_attempts_total", "model")
    assert {"gpt-4o-mini", "gpt-4o", "listed-model", "other"} <= models
    assert "secret plan" not in text
    assert (
        value(text, "switchboard_upstream_attempts_total", provider="Team OpenAI", model="other")
        >= 1
    )


def test_model_labels_per_provider_are_capped(
    provider, scrape, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(labels, "MAX_MODELS_PER_PROVIDER", 2)
    store_models(models_key(provider), ["m-one", "m-two", "m-three"])
    for n, model in enumerate(["m-one", "m-two", "m-three", "m-one"]):
        record(provider, model, f"cap-{n}", django_capture_on_commit_callbacks)
    text = scrape()
    assert value(text, "switchboard_upstream_attempts_total", model="m-one") == 2
    assert value(text, "switchboard_upstream_attempts_total", model="m-two") == 1
    assert "m-three" not in text, "past the cap: other"
