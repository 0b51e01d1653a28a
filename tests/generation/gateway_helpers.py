"""Fixtures for the /v1 gateway tests: the real ASGI app under uvicorn, tokens, SDK clients.

The gateway is served by uvicorn in a background thread (pytest-django's live_server is
WSGI and cannot stream an async response); tests use the official `openai` SDK against
it, and the gateway's providers point at the fake upstream. Import the fixtures into a
test module to use them.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import openai
import pytest
import uvicorn

from generation.api_tokens import ApiToken
from providers.fake_upstream import FakeUpstream
from providers.models import Provider
from tests.providers.fake_helpers import TEST_KEY, fake_provider

# What `from tests.generation.gateway_helpers import *` brings: the fixtures.
__all__ = ["api_token", "api_user", "gateway_server", "gateway_url", "make_provider", "sdk"]

KINDS = ("openai", "anthropic", "deepseek", "openai_compatible")


class GatewayServer:
    def __init__(self) -> None:
        from config.asgi import application

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(application, lifespan="off", log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GatewayServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the gateway server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
        self.socket.close()


@pytest.fixture(scope="session")
def gateway_server(django_db_setup, django_db_blocker) -> Iterator[GatewayServer]:
    server = GatewayServer().start()
    yield server
    server.stop()


@pytest.fixture
def gateway_url(gateway_server: GatewayServer, settings) -> str:
    # The engine's retries are tested with the engine; here one attempt keeps tests fast.
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "RETRY_MAX_ATTEMPTS": 1}
    return gateway_server.url


@pytest.fixture
def api_user(django_user_model):
    return django_user_model.objects.create_user("gateway-user")


@pytest.fixture
def api_token(api_user) -> tuple[ApiToken, str]:
    return ApiToken.issue(user=api_user, name="gateway tests")


@pytest.fixture
def sdk(gateway_url: str, api_token: tuple[ApiToken, str]) -> openai.OpenAI:
    """The official SDK pointed at the gateway; its own retries off so errors surface."""
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=api_token[1], max_retries=0)


@pytest.fixture
def make_provider(fake_upstream: FakeUpstream) -> Callable[..., Provider]:
    def make(
        kind: str = "openai",
        knobs: str = "",
        key: str = TEST_KEY,
        default_model: str = "",
        **fields,
    ) -> Provider:
        provider = fake_provider(fake_upstream, kind, knobs=knobs, key=key, **fields)
        if default_model:
            provider.default_model = default_model
            provider.save()
        return provider

    return make


def model_of(provider: Provider, model: str = "fake-model") -> str:
    return f"{provider.name}/{model}"


def user_says(text: str = "Hello there") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]
