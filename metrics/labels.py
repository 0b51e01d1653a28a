"""Label values with a bound: never a key, a prompt, a user or anything a caller invents.

Provider names are set by staff in the admin. A model name is chosen by the caller (a
/v1 client may send any string, and an OpenAI-compatible server may accept it), so it
is a label only when staff's configuration or the provider itself names it: the
provider's default model, a model with a price, or one in the provider's published
models list (as cached; never fetched here). Anything else is "other", and so is every
model past MAX_MODELS_PER_PROVIDER in one process: a bound on series even if a provider
publishes thousands.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from providers.models_list import cached_models

if TYPE_CHECKING:
    from providers.models import Provider

OTHER = "other"
MAX_MODELS_PER_PROVIDER = 50
MAX_LABEL_CHARS = 100

_lock = threading.Lock()
# provider id -> the model labels this process has given it (only grows, to the cap).
_known: dict[str, set[str]] = {}


def provider_label(provider: Provider) -> str:
    return provider.name[:MAX_LABEL_CHARS]


def model_label(provider: Provider, model: str, *, priced: bool) -> str:
    """`model`, if staff's configuration or the provider names it, else "other"."""
    key = str(provider.pk)
    seen = _known.get(key)
    if seen is not None and model in seen:
        return model  # the usual case: a dict and a set lookup, no lock
    if len(model) > MAX_LABEL_CHARS or not _named_by_provider(provider, model, priced=priced):
        return OTHER
    with _lock:
        seen = _known.setdefault(key, set())
        if len(seen) >= MAX_MODELS_PER_PROVIDER:
            return OTHER
        seen.add(model)
    return model


def _named_by_provider(provider: Provider, model: str, *, priced: bool) -> bool:
    if priced or model == provider.effective_default_model:
        return True
    try:
        listed = cached_models(provider)
    except Exception:  # a metric must never fail a call
        return False
    return listed is not None and model in listed


def forget() -> None:
    """For tests: start from no known model."""
    with _lock:
        _known.clear()
