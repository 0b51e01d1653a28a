"""Fixtures for the chat's frame in headless Chromium: the app served by uvicorn with a
real huey consumer (as tests/generation/test_browser.py), a signed-in page at a given
size and colour scheme, a conversation with a code block, and screenshots."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.utils import timezone

from generation.models import Conversation, Message
from tests.fixtures.browser import ARTIFACTS

# The chat's fixtures (a user, providers on the fake upstream, the huey consumer), shared
# by their names: a conftest's fixtures reach only the tests below it.
from tests.generation.conftest import huey_consumer, make_chat_provider, user  # noqa: F401
from tests.generation.test_browser import ChatServer

SCREENSHOTS = ARTIFACTS / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}

LONG_LINE = "result = " + " + ".join(f"compute_the_value_of_part_{n}(x)" for n in range(12))
ANSWER = (
    "Here is the loop, with one very long line:\n\n"
    f"```python\nfor x in range(3):\n    {LONG_LINE}\n    print(result)\n```\n\n"
    "It prints **three** results. See `range` in the [docs](https://docs.python.org/3/)."
)


@pytest.fixture
def ui_server(huey_consumer) -> Iterator[str]:  # noqa: F811
    server = ChatServer()
    server.start()
    yield server.url
    server.stop()


def log_in(page, server_url: str, path: str = "/") -> None:
    page.goto(server_url + path)
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "pw-alice-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{server_url}{path}")


@pytest.fixture
def signed_in(open_page, ui_server, user) -> Callable[..., object]:  # noqa: F811
    """`signed_in(path="/", size=DESKTOP, scheme="light")`: a signed-in page at `path`;
    `scheme` is the system's colour scheme (prefers-color-scheme)."""

    def open_(path: str = "/", size: dict[str, int] = DESKTOP, scheme: str = "light"):
        page = open_page(ui_server, viewport=size, color_scheme=scheme)
        log_in(page, ui_server, path)
        return page

    return open_


@pytest.fixture
def chat_with_code(user, make_chat_provider) -> Conversation:  # noqa: F811
    """A finished exchange whose answer holds a code block with a very long line."""
    provider = make_chat_provider(name="Fake Cloud")
    conversation = Conversation.objects.create(owner=user, title="Loops in Python")
    question = Message.objects.create(
        conversation=conversation, role="user", content="Show me a loop in Python"
    )
    Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        provider=provider,
        model="fake-model",
        content=ANSWER,
        status="complete",
        input_tokens=12,
        output_tokens=80,
        finished_at=timezone.now(),
    )
    return conversation


def shoot(page, name: str) -> Path:
    """A full-window screenshot in test-artifacts/screenshots/ (gitignored), to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path


def theme_of(page) -> dict[str, str]:
    """The theme <html> carries and the colour its background is painted in."""
    return page.evaluate(
        "() => ({choice: document.documentElement.dataset.theme,"
        " scheme: getComputedStyle(document.documentElement).colorScheme,"
        " background: getComputedStyle(document.documentElement).backgroundColor})"
    )
