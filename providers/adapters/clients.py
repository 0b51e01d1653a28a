"""SDK clients built once per provider version and event loop, then reused for pooling.

An async client's connections belong to the loop that opened them, so the cache is per
loop (weakly held: a finished loop's clients go with it). Chat answers all stream on
one loop per process (generation/stream_loop.py), so they share one client per
provider and its kept-alive connections; the web server's loop (the gateway) has its
own. A provider edit changes `updated_at`, which builds a new client with the new key
and base URL.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import httpx2

from providers.redaction import NO_KEY_PLACEHOLDER

if TYPE_CHECKING:
    from providers.adapters.embeddings import EmbeddingRequest, EmbeddingResult
    from providers.models import Provider


logger = logging.getLogger(__name__)

ClientT = TypeVar("ClientT")
T = TypeVar("T")

# Between two bytes of a response; the engine's deadline bounds a whole call.
READ_TIMEOUT_SECONDS = 120.0
CONNECT_TIMEOUT_SECONDS = 10.0

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Any, Any]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def cached_client(provider: Provider, build: Callable[[], ClientT]) -> ClientT:
    """The client for `provider` on the running loop, built by `build()` on first use."""
    loop = asyncio.get_running_loop()
    key = (provider.pk, provider.updated_at)
    with _lock:
        per_loop = _clients.setdefault(loop, {})
        client = per_loop.get(key)
        if client is None:
            # Drop clients of older versions of this provider (an edited key or URL).
            for stale in [k for k in per_loop if k[0] == provider.pk]:
                del per_loop[stale]
            client = per_loop[key] = build()
    return client


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle takes 50-100 ms; a client built without a context of its
    # own pays it each time (a worker thread's first answer, every admin test). One
    # context serves every client and connection in the process.
    return httpx2.create_ssl_context()


def http_client() -> httpx2.AsyncClient:
    """The HTTP client under each SDK client.

    Redirects are not followed: a redirect to another host would carry the key there.
    """
    return httpx2.AsyncClient(
        verify=_tls_context(),
        follow_redirects=False,
        timeout=httpx2.Timeout(READ_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS),
        limits=httpx2.Limits(max_connections=100, max_keepalive_connections=20),
    )


async def aclose_clients() -> None:
    """Close the clients built on the running loop. Call it before closing a loop you made."""
    loop = asyncio.get_running_loop()
    with _lock:
        per_loop = _clients.pop(loop, {})
    for client in per_loop.values():
        await client.close()


def run_in_own_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` from sync code in a private loop, closing its clients at the end.

    Used by the sync wrappers (the admin, sync views), whose thread has no running loop.
    """

    async def main() -> T:
        try:
            return await coroutine
        finally:
            await aclose_clients()

    return asyncio.run(main())


class SdkAdapter:
    """What every adapter does the same way: one pooled SDK client per provider and loop.

    Subclasses name their SDK's async client class and the API's own base URL, spelled
    out so that an SDK's *_BASE_URL environment variable can never redirect a key.
    """

    sdk_class: ClassVar[Callable[..., Any]]
    sdk_default_base_url: ClassVar[str]
    client_options: ClassVar[dict[str, Any]] = {}
    # Embeddings are an API of their own that not every provider has; an adapter that
    # implements `embed` says so. Token arrays (OpenAI's token input) are ids of one
    # tokenizer, so only an API that shares it may take them.
    supports_embeddings: ClassVar[bool] = False
    embeds_token_arrays: ClassVar[bool] = False
    # Whether a request's thinking_budget is sent (and within which limits); an adapter
    # without it ignores the budget.
    supports_thinking_budget: ClassVar[bool] = False
    min_thinking_budget: ClassVar[int] = 0
    max_thinking_budget: ClassVar[int] = 0

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def _client(self) -> Any:
        provider = self.provider
        return cached_client(
            provider,
            lambda: self.sdk_class(
                # A provider without a key gets a stand-in the SDK accepts (see
                # openai_adapter for why it never goes out).
                api_key=provider.api_key_for_calls() or NO_KEY_PLACEHOLDER,
                base_url=provider.effective_base_url or self.sdk_default_base_url,
                max_retries=0,  # the engine's retry policy is the only one
                http_client=http_client(),
                **self.client_options,
            ),
        )

    async def list_models(self) -> list[str]:
        return sorted([model.id async for model in self._client().models.list()])

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        # The engine checks `supports_embeddings` first: reaching this is a bug.
        raise NotImplementedError(f"{type(self).__name__} does not offer embeddings.")
