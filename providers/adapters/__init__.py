"""The adapter registry: one adapter class per provider kind, looked up in a dict."""

from __future__ import annotations

from typing import TYPE_CHECKING

from providers.adapters.anthropic_adapter import AnthropicAdapter
from providers.adapters.openai_adapter import (
    DeepSeekAdapter,
    OpenAIAdapter,
    OpenAICompatibleAdapter,
)
from providers.kinds import ProviderKind

if TYPE_CHECKING:
    from providers.models import Provider

AdapterClass = type[OpenAIAdapter] | type[AnthropicAdapter]

ADAPTERS: dict[str, AdapterClass] = {
    ProviderKind.OPENAI: OpenAIAdapter,
    ProviderKind.DEEPSEEK: DeepSeekAdapter,
    ProviderKind.OPENAI_COMPATIBLE: OpenAICompatibleAdapter,
    ProviderKind.ANTHROPIC: AnthropicAdapter,
}


def adapter_class(kind: str) -> AdapterClass:
    """The adapter class for a provider kind (its per-kind limits live on the class)."""
    try:
        return ADAPTERS[kind]
    except KeyError:
        raise ValueError(f"No adapter for provider kind {kind!r}.") from None


def get_adapter(provider: Provider) -> OpenAIAdapter | AnthropicAdapter:
    return adapter_class(provider.kind)(provider)
