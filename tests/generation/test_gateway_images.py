"""Image content parts on /v1, with the official SDK: data URLs checked and sent as each
provider's image format, https URLs passed on (never fetched by us) or refused."""

from __future__ import annotations

import base64

import openai
import pytest

from tests.generation.gateway_helpers import *  # noqa: F403 (the fixtures)
from tests.generation.gateway_helpers import model_of
from tests.providers.fake_helpers import generation_calls
from tests.providers.test_content_parts import PNG

pytestmark = pytest.mark.django_db(transaction=True)
DATA_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
HTTPS_URL = "https://images.example/cat.png"


def _question(url: str, **image: str) -> list[dict]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": url, **image}},
            ],
        }
    ]


def _sent(fake_upstream) -> dict:
    return next(r.body for r in fake_upstream.requests if r.method == "POST")


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_data_url_image_reaches_the_provider_and_is_billed(
    sdk, make_provider, fake_upstream, kind
):
    provider = make_provider(kind)
    completion = sdk.chat.completions.create(model=model_of(provider), messages=_question(DATA_URL))
    assert completion.choices[0].message.content
    content = _sent(fake_upstream)["messages"][0]["content"]
    if kind == "openai":
        assert content[1] == {"type": "image_url", "image_url": {"url": DATA_URL}}
    else:
        assert content[1]["source"] == {
            "type": "base64",
            "media_type": "image/png",
            "data": DATA_URL.split(",", 1)[1],
        }
    assert completion.usage is not None
    assert completion.usage.prompt_tokens >= 765  # the fake's price of one image


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_an_https_image_url_is_passed_on_for_the_provider_to_fetch(
    sdk, make_provider, fake_upstream, kind
):
    provider = make_provider(kind)
    stream = sdk.chat.completions.create(
        model=model_of(provider), messages=_question(HTTPS_URL, detail="low"), stream=True
    )
    # Read to the end: the call is metered before [DONE], so nothing of it outlives the
    # test (a stream closed early is metered after, while the next test empties the tables).
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    content = _sent(fake_upstream)["messages"][0]["content"]
    if kind == "openai":
        assert content[1] == {"type": "image_url", "image_url": {"url": HTTPS_URL, "detail": "low"}}
    else:
        assert content[1]["source"] == {"type": "url", "url": HTTPS_URL}


@pytest.mark.parametrize("kind", ["deepseek", "openai_compatible"])
def test_kinds_without_image_urls_refuse_them_before_any_call(
    sdk, make_provider, fake_upstream, kind
):
    provider = make_provider(kind)
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model=model_of(provider), messages=_question(HTTPS_URL))
    assert caught.value.body["param"] == "messages"
    assert "image URLs" in caught.value.body["message"]
    assert generation_calls(fake_upstream) == 0


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://images.example/cat.png", "https URL or a base64 data URL"),
        ("file:///etc/passwd", "https URL or a base64 data URL"),
        ("data:image/svg+xml;base64,PHN2Zy8+", "PNG, JPEG, WebP or GIF"),
        ("data:image/png;base64,not base64!", "invalid base64"),
        (
            "data:image/jpeg;base64," + base64.b64encode(PNG).decode(),
            "is not an image of type image/jpeg",
        ),
    ],
)
def test_bad_image_urls_are_400_naming_the_part(sdk, make_provider, fake_upstream, url, says):
    provider = make_provider("openai")
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model=model_of(provider), messages=_question(url))
    assert caught.value.body["param"] == "messages[0].content[1].image_url.url"
    assert says in caught.value.body["message"]
    assert generation_calls(fake_upstream) == 0


def test_too_many_images_is_400(sdk, make_provider, fake_upstream, settings):
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "MAX_API_IMAGES": 2}
    provider = make_provider("openai")
    images = [{"type": "image_url", "image_url": {"url": DATA_URL}}] * 3
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(
            model=model_of(provider), messages=[{"role": "user", "content": images}]
        )
    assert caught.value.body["param"] == "messages"
    assert "at most 2" in caught.value.body["message"]
    assert generation_calls(fake_upstream) == 0


def test_a_body_over_djangos_form_limit_but_under_ours_is_read(sdk, make_provider, fake_upstream):
    # 3 MB of image: more than Django's 2.5 MB DATA_UPLOAD_MAX_MEMORY_SIZE for forms.
    big = PNG + b"\0" * 3_000_000
    url = "data:image/png;base64," + base64.b64encode(big).decode()
    provider = make_provider("openai")
    completion = sdk.chat.completions.create(model=model_of(provider), messages=_question(url))
    assert completion.choices[0].message.content
    sent_url = _sent(fake_upstream)["messages"][0]["content"][1]["image_url"]["url"]
    assert base64.b64decode(sent_url.split(",", 1)[1]) == big
