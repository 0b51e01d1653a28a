"""Checks a generation or embeddings request must pass before any upstream call is made."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING

from django.conf import settings

from providers.adapters import adapter_class
from providers.adapters.base import GenerationRequest, ToolCallPart
from providers.adapters.common import prompt_chars
from providers.adapters.embeddings import EmbeddingRequest

if TYPE_CHECKING:
    from providers.models import Provider

MAX_MODEL_NAME_LENGTH = 200


class InvalidRequest(ValueError):
    """A request the provider would reject; `field` names the offending parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class NotOffered(InvalidRequest):
    """A call this provider's kind cannot make at all (embeddings from Anthropic): no
    other value of `field` would help but another provider."""


def encodable(text: str) -> bool:
    """False for text no provider (nor database) can take: a lone surrogate, which JSON
    (``"\\ud800"``) and some form charsets can carry but UTF-8 cannot encode."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_request(
    provider: Provider, request: GenerationRequest, known_models: list[str] | None
) -> GenerationRequest:
    """`request` with its model resolved, or InvalidRequest.

    `known_models` is the provider's published list; None skips that check (no list,
    or it could not be fetched).
    """
    limits = settings.SWITCHBOARD
    model = _model(provider, request.model)
    adapter = adapter_class(provider.kind)
    if not adapter.accepts_image_urls and any(
        image.url for message in request.messages for image in message.images
    ):
        raise InvalidRequest(
            "messages",
            f"The provider {provider.name!r} does not take image URLs: "
            "send the image itself, as a data URL.",
        )
    for name in sorted(adapter.unsupported_params):
        if getattr(request, name) not in (None, ()):
            raise InvalidRequest(name, f"The provider {provider.name!r} does not take {name!r}.")
    wanted = request.response_format
    if wanted is not None and wanted.type not in adapter.response_formats:
        takes = " or ".join(sorted(adapter.response_formats))
        raise InvalidRequest(
            "response_format",
            f"The provider {provider.name!r} does not take the response format "
            f"{wanted.type!r}; it takes {takes}.",
        )
    budget = adapter.effort_budgets.get(request.reasoning_effort)
    if budget is not None and request.thinking_budget is None:
        # A kind that thinks within a budget gets the effort as one (and the budget hold
        # counts it, as it does the chat's thinking); "none" is no thinking.
        request = dataclasses.replace(request, thinking_budget=budget)
    if adapter.tool_arguments_are_objects:
        for call in _tool_calls(request):
            if not _is_json_object(call.arguments):
                raise InvalidRequest(
                    "messages",
                    f"The arguments of tool call {call.id!r} are not a JSON object, which "
                    f"the provider {provider.name!r} needs.",
                )
    max_temperature = adapter.max_temperature
    temperature = request.temperature
    if temperature is not None and not 0 <= temperature <= max_temperature:
        raise InvalidRequest(
            "temperature", f"Temperature must be between 0 and {max_temperature:g}."
        )
    cap = limits["MAX_TOKENS_CAP"]
    if request.max_tokens is not None and not 1 <= request.max_tokens <= cap:
        raise InvalidRequest("max_tokens", f"Max tokens must be between 1 and {cap}.")
    budget = request.thinking_budget
    if budget is not None and adapter.supports_thinking_budget:
        low, high = adapter.min_thinking_budget, adapter.max_thinking_budget
        if not low <= budget <= high:
            raise InvalidRequest(
                "thinking_budget", f"The thinking budget must be between {low} and {high} tokens."
            )
    if not any(m.prompt_text().strip() or m.images for m in request.messages):
        raise InvalidRequest("messages", "The prompt is empty.")
    if prompt_chars(request) > limits["MAX_PROMPT_CHARS"]:
        raise InvalidRequest(
            "messages", f"The prompt is too long (at most {limits['MAX_PROMPT_CHARS']} characters)."
        )
    if known_models and model not in known_models:
        raise InvalidRequest("model", f"This provider has no model named {model!r}.")
    return dataclasses.replace(request, model=model)


def _model(provider: Provider, requested: str) -> str:
    model = (requested or provider.effective_default_model).strip()
    if not model:
        raise InvalidRequest("model", "Choose a model: this provider has no default model.")
    if len(model) > MAX_MODEL_NAME_LENGTH or not model.isprintable():
        raise InvalidRequest("model", "That model name is not valid.")
    return model


def check_embedding_request(
    provider: Provider, request: EmbeddingRequest, known_models: list[str] | None
) -> EmbeddingRequest:
    """`request` if this provider can embed it, or InvalidRequest (NotOffered when its
    kind cannot). The model is the one named: a default model is a chat model."""
    adapter = adapter_class(provider.kind)
    offered_by = f"Provider {provider.name!r} ({provider.get_kind_display()})"
    if not adapter.supports_embeddings:
        raise NotOffered("model", f"{offered_by} does not offer embeddings.")
    if request.token_input and not adapter.embeds_token_arrays:
        raise NotOffered(
            "input",
            f"{offered_by} takes text input only: token arrays are ids of OpenAI's "
            "tokenizers, which its models do not share. Send the text itself.",
        )
    if not request.model.strip():
        raise InvalidRequest("model", "Name an embedding model.")
    model = _model(provider, request.model)
    if not request.inputs or any(not item for item in request.inputs):
        raise InvalidRequest("input", "Every input must be a non-empty string or token array.")
    limit = settings.SWITCHBOARD["MAX_EMBEDDING_INPUTS"]
    if len(request.inputs) > limit:
        raise InvalidRequest("input", f"At most {limit} inputs can be embedded in one request.")
    max_chars = settings.SWITCHBOARD["MAX_PROMPT_CHARS"]
    if request.input_size() > max_chars:
        unit = "tokens" if request.token_input else "characters"
        raise InvalidRequest("input", f"The input is too long (at most {max_chars} {unit} in all).")
    if request.dimensions is not None and request.dimensions < 1:
        raise InvalidRequest("dimensions", "Dimensions must be a positive integer.")
    if known_models and model not in known_models:
        raise InvalidRequest("model", f"This provider has no model named {model!r}.")
    return dataclasses.replace(request, model=model)


def _tool_calls(request: GenerationRequest) -> list[ToolCallPart]:
    return [part for m in request.messages for part in m.parts if isinstance(part, ToolCallPart)]


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text or "{}"), dict)
    except ValueError:
        return False
