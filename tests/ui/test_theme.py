"""Dark mode: the system's scheme by default, a light / dark / system switch that is
remembered, and the remembered theme on <html> before anything paints."""

from __future__ import annotations

import pytest

from tests.ui.conftest import theme_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LIGHT_BG = "rgb(247, 247, 248)"
DARK_BG = "rgb(15, 17, 21)"

# Runs before the page's own scripts: notes the theme on <html> when the first
# stylesheet is parsed into the document and at the first animation frame (before the
# first paint), and the colour that frame paints the page in.
WATCH_FIRST_PAINT = """
window.__seen = {};
new MutationObserver((changes, observer) => {
  const link = document.querySelector('link[rel=stylesheet]');
  if (!link) return;
  window.__seen.atStylesheet = document.documentElement.dataset.theme || null;
  observer.disconnect();
}).observe(document, {childList: true, subtree: true});
requestAnimationFrame(() => {
  window.__seen.atFirstFrame = document.documentElement.dataset.theme || null;
  window.__seen.firstFrameBackground = getComputedStyle(document.documentElement).backgroundColor;
});
"""


def pressed(page) -> str:
    return page.get_attribute(".theme-switch [aria-pressed=true]", "data-theme-choice")


@pytest.mark.parametrize(("scheme", "background"), [("light", LIGHT_BG), ("dark", DARK_BG)])
def test_the_system_scheme_is_followed_until_one_is_chosen(scheme, background, signed_in):
    page = signed_in("/", scheme=scheme)
    assert theme_of(page) == {"choice": "system", "scheme": "light dark", "background": background}
    assert pressed(page) == "system"


def test_the_choice_is_remembered_across_reloads_and_pages(signed_in, ui_server):
    page = signed_in("/", scheme="light")
    page.click("[data-theme-choice=dark]")
    assert theme_of(page)["background"] == DARK_BG
    page.reload()
    assert theme_of(page) == {"choice": "dark", "scheme": "dark", "background": DARK_BG}
    assert pressed(page) == "dark"
    page.goto(ui_server + "/usage/")  # another page, same choice
    assert theme_of(page)["background"] == DARK_BG
    assert pressed(page) == "dark"

    # Light on a dark system, then back to following the system.
    page.emulate_media(color_scheme="dark")
    page.click("[data-theme-choice=light]")
    page.reload()
    assert theme_of(page) == {"choice": "light", "scheme": "light", "background": LIGHT_BG}
    page.click("[data-theme-choice=system]")
    assert theme_of(page)["background"] == DARK_BG
    page.reload()
    assert theme_of(page)["choice"] == "system"
    assert page.evaluate("localStorage.getItem('switchboard-theme')") is None


def test_the_sign_in_page_has_the_switch_and_the_choice_outlives_signing_in(
    open_page, ui_server, user
):
    page = open_page(ui_server, color_scheme="light")
    page.goto(ui_server + "/accounts/login/")
    page.click("[data-theme-choice=dark]")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "pw-alice-123")
    page.click("button[type=submit]")
    page.wait_for_url(ui_server + "/")
    assert theme_of(page)["background"] == DARK_BG


@pytest.mark.parametrize("path", ["/", "/accounts/login/"])
def test_the_remembered_theme_is_set_before_the_first_paint(path, open_page, ui_server, user):
    page = open_page(ui_server, color_scheme="light")
    page.goto(ui_server + "/accounts/login/")
    page.click("[data-theme-choice=dark]")
    if path == "/":
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "pw-alice-123")
        page.click("button[type=submit]")
        page.wait_for_url(ui_server + "/")
    page.add_init_script(WATCH_FIRST_PAINT)
    response = page.goto(ui_server + path)
    page.wait_for_function("window.__seen && 'firstFrameBackground' in window.__seen")
    seen = page.evaluate("window.__seen")
    assert seen == {"atStylesheet": "dark", "atFirstFrame": "dark", "firstFrameBackground": DARK_BG}
    # The inline script that sets it comes before the first stylesheet in the head.
    html = response.text()
    assert html.index("switchboard-theme") < html.index('rel="stylesheet"') < html.index("</head>")
