"""The chat in headless Chromium, served by uvicorn (ASGI) with a real huey consumer.

Screenshots land in test-artifacts/ at the repository root.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.handlers.asgi import ASGIHandler

from generation.models import Message
from tests.fixtures.browser import screenshot
from tests.generation.conftest import expected_text, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


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


@pytest.fixture
def page(open_page, server_url, user):
    page = open_page(server_url)
    page.goto(server_url + "/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "pw-alice-123")
    page.click("button[type=submit]")
    page.wait_for_selector(".chat__header")
    return page


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
            screenshot(page, "chat-streaming")
        time.sleep(0.03)
    page.wait_for_selector(".message--assistant.is-complete")
    distinct = sorted(set(lengths))
    assert len(distinct) >= 10, f"text grew in steps before completion: {distinct}"
    assert _answer_text(page) == expected_text(40)
    assert page.locator(".message__usage").last.inner_text().count("out") == 1
    assert page.locator("#composer .send").is_enabled()
    screenshot(page, "chat-complete")


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
    screenshot(page, "chat-stopped")


def test_reload_mid_answer_continues(page, make_chat_provider):
    make_chat_provider("tokens=80&delay=60")
    page.reload()
    _send(page, "Keep going")
    page.wait_for_function("document.querySelector('.stream-text')?.textContent.length > 40")
    page.reload(wait_until="domcontentloaded")
    shown = page.evaluate(STREAMED_LENGTH)
    assert shown is not None, "still streaming after the reload"
    assert shown > 20, "the text so far (as last saved) is on the reloaded page"
    screenshot(page, "chat-reloaded-mid-answer")
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
    screenshot(page, "chat-auth-error")


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
    screenshot(page, "chat-retried")

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
    screenshot(page, "chat-list-after-delete")
