"""Keyboard shortcuts: new chat, focus the composer, stop, search, and "?" for the list
(a modal <dialog>: Escape closes it and focus goes back)."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def focused(page, selector: str) -> bool:
    return page.evaluate("(s) => document.activeElement.matches(s)", selector)


def test_question_mark_lists_the_shortcuts_in_a_dialog(signed_in):
    page = signed_in("/")
    page.focus("#new-chat")
    page.keyboard.press("?")
    dialog = page.locator("#shortcuts-dialog")
    dialog.wait_for(state="visible")
    assert page.evaluate("document.getElementById('shortcuts-dialog').matches(':modal')")
    assert focused(page, "#shortcuts-dialog *")
    for name in ["New chat", "Focus the message box", "Stop the answer", "Search chats"]:
        assert name in dialog.inner_text()
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert focused(page, "#new-chat")  # back where it was

    # The sidebar's "?" button opens it as well; Close closes it.
    page.click("[data-open-shortcuts]")
    dialog.wait_for(state="visible")
    page.click("#shortcuts-dialog button[value=close]")
    dialog.wait_for(state="hidden")
    assert focused(page, "[data-open-shortcuts]")


def test_single_key_shortcuts_leave_typing_alone(signed_in, make_chat_provider):
    make_chat_provider()
    page = signed_in("/")
    page.focus("#composer textarea")
    page.keyboard.type("What is 6/3? ")
    assert page.input_value("#composer textarea") == "What is 6/3? "
    assert page.locator("#shortcuts-dialog").is_hidden()
    assert focused(page, "#composer textarea")


def test_search_and_composer_shortcuts_move_focus(signed_in, make_chat_provider):
    make_chat_provider()
    page = signed_in("/")
    page.locator("body").click(position={"x": 700, "y": 300})
    page.keyboard.press("/")
    assert focused(page, "#search-form input[name=q]")
    assert page.input_value("#search-form input[name=q]") == ""  # the "/" was not typed
    page.keyboard.press("Shift+Escape")
    assert focused(page, "#composer textarea")
    page.keyboard.press("Control+k")  # from inside the composer too
    assert focused(page, "#search-form input[name=q]")


def test_new_chat_shortcut(signed_in, chat_with_code, ui_server):
    page = signed_in(f"/c/{chat_with_code.pk}/")
    page.focus("#composer textarea")
    with page.expect_navigation():
        page.keyboard.press("Control+Shift+O")
    assert page.url == ui_server + "/"
    assert page.locator("#chat-title").inner_text() == "New chat"


def test_escape_stops_the_answer_being_written(signed_in, make_chat_provider):
    make_chat_provider("tokens=600&delay=25")
    page = signed_in("/")
    page.fill("#composer textarea", "A long one please")
    page.press("#composer textarea", "Enter")
    page.wait_for_function("document.querySelector('.stream-text')?.textContent.length > 20")
    page.focus("#composer textarea")
    page.keyboard.press("Escape")
    page.locator(".message--assistant.is-cancelled").wait_for(timeout=5000)
    assert page.locator("#composer .send").is_visible()
    # A screen reader hears that it stopped.
    assert re.search("Answer stopped", page.locator("#answer-announcer").inner_text())
