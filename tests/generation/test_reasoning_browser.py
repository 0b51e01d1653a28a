"""Reasoning in headless Chromium: the thinking streams into a collapsed block, opens on
demand, then says how long it took; a reload mid-thought shows it and goes on.

Screenshots land in test-artifacts/ at the repository root.
"""

from __future__ import annotations

import re

import pytest

from generation.models import Message
from tests.fixtures.browser import screenshot
from tests.generation.conftest import expected_text, expected_thought

# The chat server, the logged-in page and sending, as the chat's browser tests have them.
from tests.generation.test_browser import _send, chat_server, page, server_url  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

THINKING = ".message--assistant[data-stream-url] .reasoning"
# The length of the streaming answer's thinking so far, or null once it is not streaming.
THOUGHT_LENGTH = (
    "(() => { const t = document.querySelector('[data-stream-url] .reasoning__text');"
    " return t ? t.textContent.length : null; })()"
)


def _thought_grows_past(on, length: int) -> None:
    on.wait_for_function(f"{THOUGHT_LENGTH} > {length}")


def test_thinking_streams_collapsed_then_says_how_long_it_took(page, make_chat_provider):  # noqa: F811
    make_chat_provider("think=40&tokens=20&delay=50", kind="anthropic")
    page.reload()
    _send(page, "Hello")
    page.wait_for_selector(".message--assistant.is-complete")
    # Anthropic thinks only when asked: the first answer had no thinking block.
    assert page.locator(".message--assistant .reasoning").count() == 0

    # Turned on from the chat's header (the page now belongs to the chat).
    page.reload()
    page.click("#thinking-setting summary")
    page.check("#thinking-setting input[name=thinking]")
    page.fill("#thinking-setting input[name=budget]", "2048")
    page.click("#thinking-setting button[type=submit]")
    page.wait_for_selector("#thinking-setting [role=status]")
    assert "Thinking on · 2048 tokens" in page.locator("#thinking-setting summary").inner_text()
    screenshot(page, "reasoning-setting-saved")

    _send(page, "Think it through")
    page.wait_for_selector(f"{THINKING}:not([hidden])")
    block = page.locator(THINKING)
    assert block.locator(".reasoning__label").inner_text() == "Thinking…"
    assert block.get_attribute("open") is None, "collapsed while it thinks"
    assert "Thinking…" in page.locator(".message--assistant .badge--live").last.inner_text()
    shown = page.evaluate(THOUGHT_LENGTH)
    _thought_grows_past(page, shown + 10)  # it fills while collapsed
    screenshot(page, "reasoning-streaming-collapsed")

    block.locator("summary").click()
    assert block.get_attribute("open") is not None
    opened_at = page.evaluate(THOUGHT_LENGTH)
    _thought_grows_past(page, opened_at + 10)
    assert block.locator(".reasoning__text").is_visible()
    screenshot(page, "reasoning-streaming-open")

    # The answer begins: the block says how long the model thought, the answer streams.
    page.wait_for_function(
        "(() => { const b = document.querySelector('[data-stream-url]');"
        " return b && b.querySelector('.stream-text').textContent.length > 0"
        " && b.querySelector('.reasoning__label').textContent.startsWith('Thought for'); })()"
    )
    screenshot(page, "reasoning-answer-streaming")

    page.wait_for_selector(".message--assistant.is-complete >> nth=1")
    final = page.locator(".message--assistant").last
    label = final.locator(".reasoning__label").inner_text()
    assert re.fullmatch(r"Thought for \d+ s", label), label
    assert final.locator(".reasoning").get_attribute("open") is None, "collapsed when done"
    assert final.locator(".message__body").inner_text() == expected_text(20)
    screenshot(page, "reasoning-done-collapsed")
    final.locator(".reasoning summary").click()
    assert final.locator(".reasoning__text").inner_text() == expected_thought(40)
    screenshot(page, "reasoning-done-expanded")
    answer = Message.objects.filter(role="assistant").last()
    assert answer is not None
    assert answer.reasoning == expected_thought(40)


def test_a_reload_mid_thought_shows_the_thinking_so_far_and_goes_on(page, make_chat_provider):  # noqa: F811
    make_chat_provider("think=80&tokens=6&delay=50", kind="deepseek")
    page.reload()
    _send(page, "Take your time")
    page.wait_for_selector(f"{THINKING}:not([hidden])")
    _thought_grows_past(page, 60)

    page.reload(wait_until="domcontentloaded")

    shown = page.evaluate(THOUGHT_LENGTH)
    assert shown is not None, "still thinking after the reload"
    assert shown > 20, "the thinking so far (as last saved) is on the reloaded page"
    block = page.locator(THINKING)
    assert block.locator(".reasoning__label").inner_text() == "Thinking…"
    block.locator("summary").click()
    screenshot(page, "reasoning-reloaded-mid-thought")
    _thought_grows_past(page, shown + 10)  # and it goes on from there

    page.wait_for_selector(".message--assistant.is-complete")
    final = page.locator(".message--assistant").last
    assert re.fullmatch(r"Thought for \d+ s", final.locator(".reasoning__label").inner_text())
    final.locator(".reasoning summary").click()
    # Every piece exactly once: nothing lost across the reload, nothing repeated.
    assert final.locator(".reasoning__text").inner_text() == expected_thought(80)
    assert final.locator(".message__body").inner_text() == expected_text(6)
    screenshot(page, "reasoning-after-reload-done")
