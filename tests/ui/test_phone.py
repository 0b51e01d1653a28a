"""The phone layout at 390 x 844: the sidebar as a drawer, the composer above the
keyboard, long code scrolling inside its block, never the page sideways."""

from __future__ import annotations

import pytest

from tests.ui.conftest import DESKTOP, LONG_LINE, PHONE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FOCUS_IN = "(selector) => Boolean(document.activeElement.closest(selector))"


def test_the_sidebar_is_a_drawer_on_a_phone(signed_in, chat_with_code):
    page = signed_in(f"/c/{chat_with_code.pk}/", size=PHONE)
    sidebar, toggle = page.locator(".sidebar"), page.locator(".drawer-toggle")
    assert sidebar.is_hidden()
    assert toggle.get_attribute("aria-expanded") == "false"

    toggle.click()
    sidebar.wait_for(state="visible")
    assert toggle.get_attribute("aria-expanded") == "true"
    assert page.evaluate(FOCUS_IN, "#new-chat")
    assert page.evaluate("document.querySelector('main').inert")  # the chat behind is out of reach
    # Tab goes through the drawer (and out to the browser's own controls, as from a
    # modal dialog), never to the chat behind it.
    stops = []
    for _ in range(16):
        page.keyboard.press("Tab")
        assert not page.evaluate(FOCUS_IN, "main")
        stops.append(page.evaluate(FOCUS_IN, ".sidebar"))
    assert sum(stops) >= 10
    page.keyboard.press("Escape")
    sidebar.wait_for(state="hidden")
    assert page.evaluate(FOCUS_IN, ".drawer-toggle")
    assert not page.evaluate("document.querySelector('main').inert")

    # The backdrop and the close button close it too.
    toggle.click()
    sidebar.wait_for(state="visible")
    page.mouse.click(PHONE["width"] - 15, PHONE["height"] // 2)
    sidebar.wait_for(state="hidden")
    toggle.click()
    page.click(".drawer-close")
    sidebar.wait_for(state="hidden")
    assert page.evaluate(FOCUS_IN, ".drawer-toggle")

    # A chat is picked from it.
    toggle.click()
    page.click(f"#conversation-{chat_with_code.pk} a")
    page.wait_for_url(f"**/c/{chat_with_code.pk}/")


def test_search_shortcut_opens_the_drawer_on_a_phone(signed_in):
    page = signed_in("/", size=PHONE)
    page.keyboard.press("/")
    page.locator(".sidebar").wait_for(state="visible")
    assert page.evaluate(FOCUS_IN, "#search-form input[name=q]")


def test_desktop_keeps_the_sidebar_as_a_column(signed_in):
    page = signed_in("/", size=DESKTOP)
    assert page.locator(".sidebar").is_visible()
    assert page.locator(".drawer-toggle").is_hidden()


@pytest.mark.parametrize("path", ["chat", "search", "usage"])
def test_no_sideways_scroll_with_a_long_code_block(path, signed_in, chat_with_code):
    url = {"chat": f"/c/{chat_with_code.pk}/", "search": "/search/?q=loop", "usage": "/usage/"}
    page = signed_in(url[path], size=PHONE)
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]"
    )
    assert widths == [PHONE["width"]] * 3
    if path == "chat":
        code = page.locator(".message--assistant pre")
        assert LONG_LINE in code.inner_text()
        assert code.evaluate("pre => pre.scrollWidth > pre.clientWidth")  # it scrolls itself
        box = code.bounding_box()
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= PHONE["width"]
        # The keyboard scrolls it (it takes focus).
        code.focus()
        page.keyboard.press("ArrowRight")
        assert code.get_attribute("tabindex") == "0"
        page.wait_for_function("document.querySelector('.message--assistant pre').scrollLeft > 0")


def test_the_composer_stays_above_the_keyboard(signed_in, make_chat_provider, chat_with_code):
    make_chat_provider()
    page = signed_in(f"/c/{chat_with_code.pk}/", size=PHONE)

    def composer_fits() -> bool:
        return page.evaluate(
            """() => {
              const box = document.querySelector('#composer').getBoundingClientRect();
              const view = visualViewport;
              return box.top >= 0 && box.bottom <= view.offsetTop + view.height + 0.5;
            }"""
        )

    assert composer_fits()
    page.focus("#composer textarea")
    # An on-screen keyboard leaves about this much of the page (headless Chromium has no
    # keyboard to open: the visible viewport is made that small instead).
    page.set_viewport_size({"width": 390, "height": 460})
    page.wait_for_function(
        "getComputedStyle(document.documentElement).getPropertyValue('--app-height') === '460px'"
    )
    assert composer_fits()
    assert page.evaluate("document.documentElement.scrollHeight") <= 460
    page.keyboard.type("Still visible")
    assert page.input_value("#composer textarea") == "Still visible"
