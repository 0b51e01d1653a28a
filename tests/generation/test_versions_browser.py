"""Edit, regenerate and switch versions in headless Chromium (the chat served by uvicorn
with a real huey consumer, as in test_browser.py). Screenshots land in test-artifacts/."""

from __future__ import annotations

import pytest

from generation.models import Conversation, Message
from tests.fixtures.browser import screenshot
from tests.generation.conftest import expected_text, wait_for

# The chat's server, as the chat's own browser tests serve it (pytest finds the fixtures
# by their names here).
from tests.generation.test_browser import _log_in, _send, chat_server, server_url  # noqa: F401
from usage.models import UsageRecord

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ANSWERS_DONE = "document.querySelectorAll('#thread .message--assistant.is-complete').length === {}"


@pytest.fixture
def chat(open_page, server_url, user):  # noqa: F811  (server_url: the fixture above)
    """A page signed in to the chat."""
    page = open_page(server_url)
    _log_in(page, server_url)
    return page


def _generation_calls(fake_upstream) -> int:
    return sum(r.path != "/v1/models" for r in fake_upstream.requests)


def _user_texts(page) -> list[str]:
    return page.locator("#thread .message--user .message__body").all_inner_texts()


def test_edit_switch_and_regenerate_with_another_model(chat, make_chat_provider, fake_upstream):
    page = chat
    make_chat_provider("tokens=6&delay=10", name="Fake OpenAI")
    # Listed second (by name): the composer starts on the OpenAI one.
    other = make_chat_provider(kind="anthropic", name="Other (Anthropic)")
    other.base_url = fake_upstream.anthropic_base_url("tokens=9&seed=7")
    other.save()
    page.reload()
    _send(page, "First question")
    page.wait_for_function(ANSWERS_DONE.format(1))
    _send(page, "Second question")
    page.wait_for_function(ANSWERS_DONE.format(2))
    assert page.locator(".versions").count() == 0, "no versions yet"

    # Edit the second question in place: a form with its text.
    second = page.locator("#thread .message--user").nth(1)
    second.get_by_role("button", name="Edit").click()
    area = page.locator("#thread .message--user.is-editing textarea")
    assert area.input_value() == "Second question"
    area.fill("Second question, rephrased")
    screenshot(page, "versions-editing")
    area.press("Enter")  # sends, as in the composer
    page.wait_for_selector(".versions--user .versions__count:text('2/2')")
    page.wait_for_function(ANSWERS_DONE.format(2))
    assert _user_texts(page) == ["First question", "Second question, rephrased"]
    screenshot(page, "versions-edited")
    wait_for(lambda: UsageRecord.objects.count() == 3)
    calls = _generation_calls(fake_upstream)
    paths = {r.path for r in fake_upstream.requests if r.path != "/v1/models"}
    assert paths == {"/v1/chat/completions"}, "so far the OpenAI provider answered"

    # Back (left arrow): the first version and its own answer return; nobody is asked.
    page.locator(".versions--user").get_by_role("button", name="Previous version").click()
    page.wait_for_selector(".versions--user .versions__count:text('1/2')")
    assert _user_texts(page) == ["First question", "Second question"]
    assert page.locator("#thread .message--assistant").count() == 2
    screenshot(page, "versions-switched-to-1")
    # Forward: and back to the edit.
    page.locator(".versions--user").get_by_role("button", name="Next version").click()
    page.wait_for_selector(".versions--user .versions__count:text('2/2')")
    assert _user_texts(page) == ["First question", "Second question, rephrased"]
    assert _generation_calls(fake_upstream) == calls
    assert UsageRecord.objects.count() == 3

    # Regenerate the last answer with another provider and model, from the picker.
    last = page.locator("#thread .message--assistant").last
    last.get_by_role("button", name="With another model…").click()
    picker = page.locator(".regenerate-form")
    picker.locator("select[name=provider]").select_option(label="Other (Anthropic)")
    # Its model list (both providers list the same models here): loaded, none under way.
    page.wait_for_function(
        "[...document.querySelectorAll('.regenerate-form select[name=model] option')]"
        ".some(o => o.value === 'fake-model-large')"
        " && !document.querySelector('.regenerate-form .htmx-request')"
    )
    picker.locator("select[name=model]").select_option("fake-model-large")
    screenshot(page, "versions-regenerate-picker")
    picker.get_by_role("button", name="Regenerate").click()
    page.wait_for_selector(".versions--assistant .versions__count:text('2/2')")
    page.wait_for_function(ANSWERS_DONE.format(2))
    newest = page.locator("#thread .message--assistant").last
    assert newest.locator(".message__model").inner_text() == "fake-model-large"
    assert newest.locator(".message__body").inner_text() == expected_text(9, seed=7)
    screenshot(page, "versions-regenerated")
    last_call = [r for r in fake_upstream.requests if r.path != "/v1/models"][-1]
    assert (last_call.path, last_call.body["model"]) == ("/v1/messages", "fake-model-large")
    wait_for(lambda: UsageRecord.objects.count() == 4)

    # A reload shows the same branch, with both switchers.
    page.reload()
    assert _user_texts(page) == ["First question", "Second question, rephrased"]
    assert page.locator(".versions--user .versions__count").inner_text() == "2/2"
    assert page.locator(".versions--assistant .versions__count").inner_text() == "2/2"
    assert page.locator("#thread .message--assistant .message__model").last.inner_text() == (
        "fake-model-large"
    )
    screenshot(page, "versions-reloaded")
    conversation = Conversation.objects.get()
    assert Message.objects.filter(conversation=conversation).count() == 7
