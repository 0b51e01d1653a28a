"""Opt-in exact-match response cache (temperature 0 only) and the models-list cache."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from django.core.cache import cache

from providers.adapters.base import GenerationRequest, GenerationResult

if TYPE_CHECKING:
    from providers.models import Provider

_PREFIX = "switchboard:providers"


def response_cacheable(provider: Provider, request: GenerationRequest) -> bool:
    # One answer is stored: a request for several is never served from it.
    return bool(provider.cache_responses) and request.temperature == 0 and not request.n


FLOAT_FIELDS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")


def response_key(provider: Provider, request: GenerationRequest) -> str:
    """A sha256 over everything that shapes an answer, so any change is a miss."""
    material = {
        # Every field, cache_scope included: one user's cached answers are not another's
        # (a hit would tell them what was asked, and answer it). Every part of every
        # message too, images' bytes included: another picture is another prompt.
        **request.to_json(),
        "provider": str(provider.pk),
        "version": provider.updated_at.isoformat() if provider.updated_at else "",
    }
    for name in FLOAT_FIELDS:  # 0 and 0.0 are the same request: numbers, not spellings
        if material[name] is not None:
            material[name] = float(material[name])
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    return f"{_PREFIX}:response:{digest}"


async def get_response(key: str) -> dict[str, Any] | None:
    value = await cache.aget(key)
    return value if isinstance(value, dict) else None


async def store_response(provider: Provider, key: str, result: GenerationResult) -> None:
    value = {
        "text": result.text,
        "model": result.model,
        "finish_reason": result.finish_reason,
        # With signatures: a replayed answer's thinking can go back on the next turn.
        "reasoning": [part.to_json() for part in result.reasoning],
        "tool_calls": [asdict(call) for call in result.tool_calls],
    }
    await cache.aset(key, value, timeout=provider.cache_ttl_seconds)


def models_key(provider: Provider) -> str:
    version = provider.updated_at.isoformat() if provider.updated_at else ""
    return f"{_PREFIX}:models:{provider.pk}:{version}"
