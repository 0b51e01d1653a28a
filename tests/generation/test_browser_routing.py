"""An alias in headless Chromium: the composer preselects the default alias, its first
target refuses the connection, and the answer says which target answered.

Screenshots land in test-artifacts/ at the repository root.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from generation.models import Message
from tests.fixtures.browser import screenshot
from tests.generation.conftest import expected_text
from tests.generation.test_browser import ChatServer, _log_in, _send

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def tab(open_page, huey_consumer, user) -> Iterator:
    """A signed-in chat page on a server of its own, as in test_browser.py."""
    server = ChatServer()
    server.start()
    page = open_page(server.url)
    _log_in(page, server.url)
    yield page
    server.stop()


def test_an_alias_answer_shows_the_target_that_answered(
    tab, refused_provider, make_chat_provider, make_alias
):
    second = make_chat_provider("tokens=8&delay=20", name="Second")
    alias = make_alias("smart", refused_provider, second, is_default_for_chats=True)
    tab.reload()
    assert tab.locator("#composer select[name=alias]").input_value() == str(alias.pk)

    _send(tab, "Who answers?")

    answer = tab.locator(".message--assistant").last
    answer.locator(".message__route").wait_for()
    assert answer.locator(".message__route").inner_text() == (
        "answered by Second/fake-model via smart"
    )
    assert answer.locator(".message__body").inner_text() == expected_text(8)
    screenshot(tab, "chat-alias-answered-by")
    # The page shown again (the chat remembers its alias) keeps the label.
    tab.reload()
    assert tab.locator("#composer select[name=alias]").input_value() == str(alias.pk)
    label = tab.locator(".message--assistant .message__route").last.inner_text()
    assert label == "answered by Second/fake-model via smart"


def test_picking_a_provider_sets_the_alias_aside(
    tab, refused_provider, make_chat_provider, make_alias
):
    direct = make_chat_provider("tokens=4", name="Direct")
    make_alias("smart", refused_provider, direct, is_default_for_chats=True)
    tab.reload()
    tab.select_option("#composer select[name=provider]", label="Direct")
    assert tab.locator("#composer select[name=alias]").input_value() == ""

    _send(tab, "Just you")

    tab.locator(".message--assistant.is-complete").wait_for()
    answer = Message.objects.get(role="assistant")
    assert (answer.alias, answer.provider) == (None, direct)
    assert tab.locator(".message__route").count() == 0
