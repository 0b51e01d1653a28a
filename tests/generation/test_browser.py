"""The chat in headless Chromium, served by uvicorn (ASGI) with a real huey consumer.

Screenshots land in test-artifacts/ at the repository root.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.handlers.asgi import ASGIHandler

from generation.models import Conversation, Message
from generation.presets import Preset
from tests.fixtures.browser import screenshot
from tests.generation.conftest import expected_text, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


class ChatServer:
    """uvicorn serving the app (ASGI) on one port; a test may stop it and start it again."""

    def __init__(self) -> None:
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        sock = socket.socket()
        # The port of a stopped server is taken again at once (its cut streams linger).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        app = ASGIStaticFilesHandler(ASGIHandler())
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            # A stop cuts open streams at once, as a crashed or restarted server does.
            timeout_graceful_shutdown=0,
        )
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        wait_for(lambda: server.started, timeout=10)

    def stop(self) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.should_exit = True
        self._thread.join(timeout=5)
        assert not self._thread.is_alive(), "the server stopped"


@pytest.fixture
def chat_server(huey_consumer) -> Iterator[ChatServer]:
    server = ChatServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def server_url(chat_server) -> str:
    return chat_server.url


def _log_in(page, server_url: str) -> None:
    page.goto(server_url + "/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "pw-alice-123")
    page.click("button[type=submit]")
    page.wait_for_selector(".chat__header")


@pytest.fixture
def page(open_page, server_url, user):
    page = open_page(server_url)
    _log_in(page, server_url)
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


def _system_sent(fake_upstream) -> dict:
    """The first message of the last chat request the provider received."""
    bodies = [r.body for r in fake_upstream.requests if r.path == "/v1/chat/completions"]
    return bodies[-1]["messages"][0]


def test_system_prompt_for_a_new_chat_and_from_the_header(page, make_chat_provider, fake_upstream):
    make_chat_provider("tokens=4")
    page.reload()
    page.click("#system-prompt summary")
    page.fill("#system-prompt textarea", "Answer like a pirate.")
    _send(page, "Ahoy?")
    page.wait_for_selector(".message--assistant.is-complete")
    assert _system_sent(fake_upstream) == {"role": "system", "content": "Answer like a pirate."}
    assert page.locator("#system-prompt summary").inner_text() == "System prompt set"

    # Edited in the header: saved in place, and the next answer is asked with it.
    page.click("#system-prompt summary")
    page.fill("#system-prompt textarea", "Answer like a poet.")
    page.click("#system-prompt button[type=submit]")
    page.wait_for_selector("#system-prompt .system-prompt__saved")
    screenshot(page, "chat-system-prompt-saved")
    _send(page, "And now?")
    page.wait_for_function(
        "document.querySelectorAll('.message--assistant.is-complete').length === 2"
    )
    assert _system_sent(fake_upstream) == {"role": "system", "content": "Answer like a poet."}
    page.reload()
    page.click("#system-prompt summary")
    assert page.input_value("#system-prompt textarea") == "Answer like a poet."


# Records, in the page's own (fake) time, when each EventSource was opened and when it
# first failed. Its error listener runs before chat.js's, at the same page time.
RECORD_STREAMS = """
(() => {
  const Native = window.EventSource;
  window.streamLog = [];
  window.EventSource = class extends Native {
    constructor(url, options) {
      super(url, options);
      const entry = { url: String(url), openedAt: Date.now(), failedAt: null };
      window.streamLog.push(entry);
      this.addEventListener("error", () => { entry.failedAt ??= Date.now(); });
    }
  };
})();
"""
RETRY_MAX_MS = 30_000


def _pause_time(page) -> None:
    page.clock.pause_at((page.evaluate("Date.now()") + 1) / 1000)  # in seconds


def _retry_delays(page, server: ChatServer, retries: int) -> list[int]:
    """Stop the server and let the page retry `retries` times; the delays it waited (ms)."""
    first = page.evaluate("streamLog.length") - 1  # the stream the stop cuts
    server.stop()
    for _ in range(retries):
        opened = page.evaluate("streamLog.length")
        wait_for(lambda: page.evaluate("streamLog.at(-1).failedAt !== null"))
        page.clock.run_for(RETRY_MAX_MS + 1)  # the next retry falls due in here
        assert page.evaluate("streamLog.length") > opened, "retried within the cap"
    log = page.evaluate("streamLog")[first : first + retries + 1]
    return [after["openedAt"] - before["failedAt"] for before, after in itertools.pairwise(log)]


def test_a_failing_stream_is_retried_with_growing_gaps_and_resumes(
    open_page, chat_server, user, make_chat_provider, browser_watch
):
    browser_watch.allow("/stream/")  # the stream fails on purpose while the server is down
    make_chat_provider("tokens=400&delay=25")
    page = open_page(chat_server.url)
    page.add_init_script(RECORD_STREAMS)
    page.clock.install()  # time flows as usual until the test stops it
    _log_in(page, chat_server.url)
    _send(page, "Keep going")
    page.wait_for_function("document.querySelector('.stream-text')?.textContent.length > 20")

    # From here the page's time moves only when the test moves it: each retry falls due
    # at the exact time chat.js chose, which makes its delays exact to read.
    _pause_time(page)
    delays = _retry_delays(page, chat_server, retries=7)
    nominal = [1000, 2000, 4000, 8000, 16000, 30000, 30000]
    for delay, expected in zip(delays, nominal, strict=True):
        assert 0.8 * expected <= delay <= min(1.2 * expected, RETRY_MAX_MS), delays
    assert delays[:5] == sorted(delays[:5]), "the gaps grow"
    assert len(set(delays)) > 1, "jitter"
    shown = page.evaluate("document.querySelector('.stream-text').textContent")
    retried = page.evaluate("streamLog.slice(-7).map(e => e.url)")
    assert all(url.endswith(f"?after={len(shown)}") for url in retried), retried

    # The server is back: the pending retry resumes after the text shown, nothing lost
    # and nothing twice.
    chat_server.start()
    page.clock.run_for(RETRY_MAX_MS + 1)
    page.clock.resume()
    more = page.wait_for_function(
        "(() => { const t = document.querySelector('.stream-text');"
        f" return t && t.textContent.length > {len(shown) + 40} ? t.textContent : null; }})()"
    ).json_value()
    assert expected_text(400).startswith(more)

    # A delta reset the count: the next failure is retried after about a second again.
    _pause_time(page)
    (delay,) = _retry_delays(page, chat_server, retries=1)
    assert 800 <= delay <= 1200
    chat_server.start()
    page.clock.run_for(RETRY_MAX_MS + 1)
    page.clock.resume()
    page.wait_for_selector(".message--assistant.is-complete", timeout=20_000)
    assert _answer_text(page) == expected_text(400)


def test_export_a_conversation_as_markdown(page, make_chat_provider):
    make_chat_provider("tokens=12", name="Demo (local)")
    page.reload()
    assert page.locator("#chat-export a").count() == 0  # a new chat has nothing to export
    _send(page, "Export me")
    page.wait_for_selector(".message--assistant.is-complete")
    conversation = Conversation.objects.get()
    # The chat started on this page: its header now offers the export without a reload.
    with page.expect_download() as download_info:
        page.locator("#chat-export").get_by_role("link", name="Markdown").click()
    download = download_info.value
    assert download.suggested_filename == f"export-me-{conversation.pk}.md"
    text = Path(download.path()).read_text(encoding="utf-8")
    assert text.startswith("# Export me\n")
    assert "```text\nExport me\n```" in text
    assert f"```markdown\n{expected_text(12)}\n```" in text
    assert "## Assistant · fake-model via Demo (local)" in text
    screenshot(page, "chat-exported")


def test_start_a_chat_from_a_preset(page, make_chat_provider, fake_upstream):
    make_chat_provider("tokens=4", name="Other")
    provider = make_chat_provider("tokens=4", name="Reviewing")
    preset = Preset.objects.create(
        name="Code review",
        provider=provider,
        model="fake-model-large",
        system_prompt="You review code.",
        temperature=0.2,
    )
    page.reload()
    page.click("#preset-picker summary")
    page.select_option("#preset-picker select[name=preset]", str(preset.pk))
    page.click("#preset-picker button[type=submit]")
    page.wait_for_selector("#composer-preset")
    assert page.locator("#composer-preset").inner_text() == "Preset: Code review"
    assert page.input_value("#system-prompt textarea") == "You review code."
    page.wait_for_function(
        "document.querySelector('#model-select').value === 'fake-model-large'"
        " && document.querySelectorAll('#model-select option').length > 1"
    )
    screenshot(page, "chat-preset-picked")
    _send(page, "Is this fine?")
    page.wait_for_selector(".message--assistant.is-complete")
    bodies = [r.body for r in fake_upstream.requests if r.path == "/v1/chat/completions"]
    assert bodies[-1]["messages"][0] == {"role": "system", "content": "You review code."}
    assert bodies[-1]["model"] == "fake-model-large"
    assert bodies[-1]["temperature"] == 0.2
    assert Conversation.objects.get().preset == preset
    assert page.locator("#composer-preset").inner_text() == "Preset: Code review"
