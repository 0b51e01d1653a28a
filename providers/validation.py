"""Checks a generation request must pass before any upstream call is made."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from django.conf import settings

from providers.adapters import adapter_class
from providers.adapters.base import GenerationRequest
from providers.adapters.common import prompt_chars

if TYPE_CHECKING:
    from providers.models import Provider

MAX_MODEL_NAME_LENGTH = 200


class InvalidRequest(ValueError):
    """A request the provider would reject; `field` names the offending parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


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
    model = (request.model or provider.effective_default_model).strip()
    if not model:
        raise InvalidRequest("model", "Choose a model: this provider has no default model.")
    if len(model) > MAX_MODEL_NAME_LENGTH or not model.isprintable():
        raise InvalidRequest("model", "That model name is not valid.")
    adapter = adapter_class(provider.kind)
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
