"""The chat in headless Chromium, served by uvicorn (ASGI) with a real huey consumer.

Screenshots land in test-artifacts/ at the repository root.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.handlers.asgi import ASGIHandler

from generation.models import Message
from tests.conftest import CHROMIUM
from tests.generation.conftest import expected_text, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def server_url(huey_consumer) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = ASGIStaticFilesHandler(ASGIHandler())
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the ORM calls tests make
    # between browser steps are still plain sync calls, so Django may allow them.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(request, browser, server_url, user):
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(server_url + "/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "pw-alice-123")
    page.click("button[type=submit]")
    page.wait_for_selector(".chat__header")
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        _shot(page, f"failed-{request.node.name}")
    context.close()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _send(page, text: str) -> None:
    page.fill("#composer textarea", text)
    page.press("#composer textarea", "Enter")


# The length of the streaming answer's text, or null once it is no longer streaming.
STREAMED_LENGTH = (
    "(() => { const t = document.querySelector('[data-stream-url] .stream-text');"
    " return t ? t.textContent.length : null; })()"
)


def _answer_text(page) -> str:
    return page.locator(".message--assistant").last.locator(".message__body").inner_text()


def test_tokens_arrive_one_by_one(page, make_chat_provider):
    make_chat_provider("tokens=40&delay=40", name="Demo (local)")
    page.reload()
    _send(page, "Tell me about switchboards")
    page.wait_for_selector(".message--assistant.is-streaming")
    assert page.locator("#composer .send").is_hidden()  # busy: Stop replaces Send

    lengths: list[int] = []
    while (length := page.evaluate(STREAMED_LENGTH)) is not None:
        lengths.append(length)
        if len(lengths) == 15:
            _shot(page, "chat-streaming")
        time.sleep(0.03)
    page.wait_for_selector(".message--assistant.is-complete")
    distinct = sorted(set(lengths))
    assert len(distinct) >= 10, f"text grew in steps before completion: {distinct}"
    assert _answer_text(page) == expected_text(40)
    assert page.locator(".message__usage").last.inner_text().count("out") == 1
    assert page.locator("#composer .send").is_enabled()
    _shot(page, "chat-complete")


def test_stop_a_long_answer(page, make_chat_provider):
    make_chat_provider("tokens=600&delay=25")
    page.reload()
    _send(page, "A long one please")
    page.wait_for_function("document.querySelector('.stream-text')?.textContent.length > 20")
    page.click("#composer .stop-all")
    page.wait_for_selector(".message--assistant.is-cancelled", timeout=5000)
    kept = _answer_text(page)
    message = Message.objects.get(role="assistant")
    assert message.status == Message.Status.CANCELLED
    assert len(kept) > 20
    assert message.content.startswith(kept.strip()[:20])
    assert len(message.content) < len(expected_text(600))
    _shot(page, "chat-stopped")


def test_reload_mid_answer_continues(page, make_chat_provider):
    make_chat_provider("tokens=80&delay=60")
    page.reload()
    _send(page, "Keep going")
    page.wait_for_function("document.querySelector('.stream-text')?.textContent.length > 40")
    page.reload(wait_until="domcontentloaded")
    shown = page.evaluate(STREAMED_LENGTH)
    assert shown is not None, "still streaming after the reload"
    assert shown > 20, "the text so far (as last saved) is on the reloaded page"
    _shot(page, "chat-reloaded-mid-answer")
    page.wait_for_selector(".message--assistant.is-complete", timeout=15_000)
    assert _answer_text(page) == expected_text(80)


def test_auth_error_is_shown_in_words(page, make_chat_provider):
    make_chat_provider("tokens=5", key="sk-invalid-0000")
    page.reload()
    _send(page, "Hello?")
    alert = page.wait_for_selector(".message--assistant .alert--error")
    assert "The provider rejected the API key. Ask an administrator to update it." in (
        alert.inner_text()
    )
    assert page.locator(".message--assistant .retry").count() == 0
    _shot(page, "chat-auth-error")


def test_retry_rename_delete_and_new_chat(page, make_chat_provider, settings):
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "RETRY_MAX_ATTEMPTS": 1}
    provider = make_chat_provider("tokens=8&fault=503")
    page.reload()
    _send(page, "First question")
    page.wait_for_selector(".message--assistant .alert--error")
    assert "overloaded" in page.locator(".message--assistant .alert--error").inner_text()
    # The provider recovers; Retry writes a fresh answer under the failed one.
    provider.base_url = provider.base_url.replace("&fault=503", "")
    provider.save()
    page.click(".message--assistant .retry")
    page.wait_for_selector(".message--assistant.is-complete")
    assert page.locator(".message--assistant .retry").count() == 0
    assert _answer_text(page) == expected_text(8)
    _shot(page, "chat-retried")

    page.click(".conversation.is-current button[title=Rename]")
    page.fill(".rename input[name=title]", "Renamed chat")
    page.press(".rename input[name=title]", "Enter")
    page.wait_for_selector(".conversation a:text('Renamed chat')")

    page.click("#new-chat")
    page.wait_for_selector("#empty-state")
    _send(page, "Second question")
    page.wait_for_selector(".message--assistant.is-complete")
    titles = page.locator(".conversation a").all_inner_texts()
    assert titles == ["Second question", "Renamed chat"], "newest first"
    assert page.locator("#conversations-empty").count() == 0

    # Writing in an older chat moves it to the top, once, without a reload.
    page.click(".conversation a:text('Renamed chat')")
    page.wait_for_selector(".conversation.is-current a:text('Renamed chat')")
    _send(page, "Back to the first")
    page.wait_for_function(
        "document.querySelector('.conversation a').textContent === 'Renamed chat'"
    )
    assert page.locator(".conversation a").all_inner_texts() == ["Renamed chat", "Second question"]

    page.on("dialog", lambda dialog: dialog.accept())
    page.locator(".conversation", has_text="Renamed chat").hover()
    page.locator(".conversation", has_text="Renamed chat").locator("button[title=Delete]").click()
    page.wait_for_function("document.querySelectorAll('.conversation').length === 1")
    _shot(page, "chat-list-after-delete")
