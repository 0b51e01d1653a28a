"""The kinds of provider Switchboard speaks to, and what each needs to be configured."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models


class ProviderKind(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    ANTHROPIC = "anthropic", "Anthropic"
    DEEPSEEK = "deepseek", "DeepSeek"
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible (custom base URL)"


@dataclass(frozen=True)
class KindSpec:
    default_base_url: str  # used when the provider's base URL is blank; "" = the SDK's own
    requires_base_url: bool
    default_model: str
    # Hosted APIs refuse a call without a key. A self-hosted server (Ollama, llama.cpp,
    # vLLM without --api-key) needs none: calls to it then carry no Authorization at all.
    requires_api_key: bool = True


KIND_SPECS: dict[str, KindSpec] = {
    ProviderKind.OPENAI: KindSpec("", requires_base_url=False, default_model="gpt-4o-mini"),
    ProviderKind.ANTHROPIC: KindSpec(
        "", requires_base_url=False, default_model="claude-3-5-haiku-latest"
    ),
    ProviderKind.DEEPSEEK: KindSpec(
        "https://api.deepseek.com", requires_base_url=False, default_model="deepseek-chat"
    ),
    ProviderKind.OPENAI_COMPATIBLE: KindSpec(
        "", requires_base_url=True, default_model="", requires_api_key=False
    ),
}
