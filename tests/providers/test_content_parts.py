"""Typed message parts (text, image, file text, reasoning) on each wire format, sent
through the real SDKs to the fake upstream, which records what arrived."""

from __future__ import annotations

import base64

import pytest

from providers.adapters import get_adapter
from providers.adapters.base import (
    ChatMessage,
    FilePart,
    GenerationRequest,
    ImagePart,
    ReasoningPart,
    TextPart,
    merge_turns,
)
from providers.adapters.common import IMAGE_TOKENS_ESTIMATE, estimate_usage
from providers.errors import ErrorKind
from providers.fake_upstream.app import IMAGE_TOKENS
from tests.providers.fake_helpers import collect, fake_provider, run

pytestmark = pytest.mark.django_db

# The smallest valid PNG (1x1, transparent): real bytes, so the base64 is what a file gives.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
DATA_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


def _request(*messages: ChatMessage) -> GenerationRequest:
    return GenerationRequest(model="fake-model", messages=messages)


def _with_image_and_file() -> GenerationRequest:
    question = ChatMessage(
        "user",
        (
            ImagePart("image/png", PNG, "dot.png"),
            FilePart("notes.md", "# Notes\nship it"),
            TextPart("What is in these?"),
        ),
    )
    return _request(question)


def _sent(fake_upstream) -> dict:
    bodies = [r.body for r in fake_upstream.requests if r.method == "POST"]
    assert len(bodies) == 1
    return bodies[0]


def test_openai_sends_image_parts_and_files_as_text(fake_upstream):
    adapter = get_adapter(fake_provider(fake_upstream, "openai"))
    _, result = run(collect(adapter.stream(_with_image_and_file())))
    assert result.ok
    content = _sent(fake_upstream)["messages"][0]["content"]
    assert content == [
        {"type": "image_url", "image_url": {"url": DATA_URL}},
        {"type": "text", "text": "<file name='notes.md'>\n# Notes\nship it\n</file>"},
        {"type": "text", "text": "What is in these?"},
    ]
    # The fake bills the image at a fixed count, not as the length of its base64.
    text_only = run(adapter.complete(_request(ChatMessage.of_text("user", "x"))))
    assert result.usage.input_tokens >= IMAGE_TOKENS > text_only.usage.input_tokens


def test_anthropic_sends_base64_image_blocks_and_file_text(fake_upstream):
    adapter = get_adapter(fake_provider(fake_upstream, "anthropic"))
    result = run(adapter.complete(_with_image_and_file()))
    assert result.ok
    blocks = _sent(fake_upstream)["messages"][0]["content"]
    assert blocks[0] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": DATA_URL.split(",")[1]},
    }
    assert blocks[1:] == [
        {"type": "text", "text": "<file name='notes.md'>\n# Notes\nship it\n</file>"},
        {"type": "text", "text": "What is in these?"},
    ]
    assert result.usage.input_tokens >= IMAGE_TOKENS


def test_text_alone_stays_a_plain_string_on_both_formats(fake_upstream):
    for kind in ("openai", "anthropic"):
        fake_upstream.reset()
        adapter = get_adapter(fake_provider(fake_upstream, kind))
        run(adapter.complete(_request(ChatMessage.of_text("user", "Hello"))))
        assert _sent(fake_upstream)["messages"] == [{"role": "user", "content": "Hello"}]


def test_reasoning_goes_back_to_anthropic_with_its_signature_and_never_to_openai(fake_upstream):
    thought = ReasoningPart("Two and two make four.", signature="sig-abc")
    unsigned = ReasoningPart("A guess", signature="")
    history = _request(
        ChatMessage.of_text("user", "2+2?"),
        ChatMessage("assistant", (thought, unsigned, TextPart("4"))),
        ChatMessage.of_text("user", "And 3+3?"),
    )
    anthropic = get_adapter(fake_provider(fake_upstream, "anthropic"))
    run(anthropic.complete(history))
    assert _sent(fake_upstream)["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "Two and two make four.", "signature": "sig-abc"},
        {"type": "text", "text": "4"},
    ]
    fake_upstream.reset()
    deepseek = get_adapter(fake_provider(fake_upstream, "deepseek"))
    run(deepseek.complete(history))
    # DeepSeek answers 400 to its own reasoning_content sent back: the text alone goes.
    assert _sent(fake_upstream)["messages"][1] == {"role": "assistant", "content": "4"}


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_model_without_vision_refuses_an_image_as_bad_request(fake_upstream, kind):
    adapter = get_adapter(fake_provider(fake_upstream, kind, knobs="text_only=1"))
    _, result = run(collect(adapter.stream(_with_image_and_file())))
    assert result.error is not None
    assert result.error.kind == ErrorKind.BAD_REQUEST
    assert result.text == ""
    # Text alone still works on that model.
    ok = run(adapter.complete(_request(ChatMessage.of_text("user", "Hello"))))
    assert ok.ok


def test_request_round_trips_through_json_with_every_part():
    request = _request(
        ChatMessage("user", (ImagePart("image/png", PNG, "dot.png"), TextPart("Look"))),
        ChatMessage("assistant", (ReasoningPart("hm", "sig"), TextPart("A dot."))),
        ChatMessage("user", (FilePart("a.csv", "x,y\n1,2"), TextPart("And this?"))),
    )
    assert GenerationRequest.from_json(request.to_json()) == request


def test_consecutive_turns_merge_keeping_every_part():
    merged = merge_turns(
        [
            ChatMessage("user", (ImagePart("image/png", PNG), TextPart("first"))),
            ChatMessage.of_text("user", "second"),
            ChatMessage.of_text("assistant", "answer"),
        ]
    )
    assert [m.role for m in merged] == ["user", "assistant"]
    assert merged[0].images == (ImagePart("image/png", PNG),)
    assert merged[0].text == "first\n\nsecond"


def test_estimates_count_each_image_and_file_text():
    request = _with_image_and_file()
    usage = estimate_usage(request, "", None)
    file_and_text = len(request.messages[0].prompt_text())
    assert usage.input_tokens == IMAGE_TOKENS_ESTIMATE + (file_and_text + 3) // 4


def test_image_bytes_never_show_in_a_repr():
    part = ImagePart("image/png", PNG, "dot.png")
    assert "iVBOR" not in repr(part)
    assert repr(PNG) not in repr(part)
