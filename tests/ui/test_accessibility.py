"""axe-core (through axe-playwright-python, which bundles it) on every page a member
uses, light and dark, phone and desktop; screenshots of each to look at; focus that
shows; a streamed answer read out once."""

from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.generation.conftest import expected_text
from tests.ui.conftest import DESKTOP, PHONE, shoot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = {"phone": PHONE, "desktop": DESKTOP}


def serious_violations(page) -> list[str]:
    results = Axe().run(page)
    return [
        f"{page.url}: {v['id']} ({v['impact']}) {v['help']}: "
        + "; ".join(node["html"][:120] for node in v["nodes"][:3])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("size", ["desktop", "phone"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_pages_have_no_serious_axe_violations(
    scheme, size, open_page, ui_server, signed_in, chat_with_code
):
    problems: list[str] = []
    login = open_page(ui_server, viewport=SIZES[size], color_scheme=scheme)
    login.goto(ui_server + "/accounts/login/")
    problems += serious_violations(login)
    shoot(login, f"login-{size}-{scheme}")

    page = signed_in(f"/c/{chat_with_code.pk}/", size=SIZES[size], scheme=scheme)
    page.locator(".message--assistant pre").wait_for()
    problems += serious_violations(page)
    shoot(page, f"chat-{size}-{scheme}")
    if size == "phone":
        page.click(".drawer-toggle")
        page.locator(".sidebar").wait_for(state="visible")
        problems += serious_violations(page)
        shoot(page, f"chat-drawer-{size}-{scheme}")

    page.goto(f"{ui_server}/search/?q=loop")
    page.locator(".search-page .search-hit").wait_for()
    problems += serious_violations(page)
    shoot(page, f"search-{size}-{scheme}")

    page.goto(f"{ui_server}/usage/")
    problems += serious_violations(page)
    shoot(page, f"usage-{size}-{scheme}")

    page.goto(ui_server + "/")
    page.keyboard.press("?")
    page.locator("#shortcuts-dialog").wait_for(state="visible")
    problems += serious_violations(page)
    shoot(page, f"shortcuts-{size}-{scheme}")
    assert not problems, "\n".join(problems)


# What shows where focus is: the element's outline, or the composer's ring around its box.
FOCUS_MARK = """() => {
  const el = document.activeElement;
  // A visually hidden control (the file input) shows focus on its label.
  const style = getComputedStyle(el.matches('.visually-hidden') ? el.parentElement : el);
  const ring = el.matches('#composer textarea')
    ? getComputedStyle(el.closest('.composer__box')).boxShadow : 'none';
  return {html: el.outerHTML.slice(0, 80), inBody: el !== document.body,
          outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
          ring: ring !== 'none'};
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_focus_is_visible_on_everything_the_keyboard_reaches(
    scheme, signed_in, make_chat_provider, chat_with_code
):
    make_chat_provider()
    page = signed_in(f"/c/{chat_with_code.pk}/", scheme=scheme)
    seen = 0
    for _ in range(45):
        page.keyboard.press("Tab")
        mark = page.evaluate(FOCUS_MARK)
        if mark["inBody"]:
            seen += 1
            assert mark["outline"] or mark["ring"], mark
    assert seen >= 30


def test_a_streamed_answer_is_announced_once_politely(signed_in, make_chat_provider):
    make_chat_provider("tokens=120&delay=5")
    page = signed_in("/")
    # The thread itself is not live (its final swap would read the answer again).
    assert page.locator("#thread").get_attribute("aria-live") is None
    assert page.locator("#answer-announcer").get_attribute("aria-live") == "polite"
    page.fill("#composer textarea", "Tell me about switchboards")
    page.press("#composer textarea", "Enter")
    page.locator(".message--assistant.is-complete").wait_for()
    no_live_ancestor = page.evaluate(
        "() => !document.querySelector('.message--assistant').closest('[aria-live], [role=log]')"
    )
    assert no_live_ancestor
    heard = page.locator("#answer-announcer p").all_inner_texts()
    assert len(heard) >= 2, heard  # read out as it comes, not all at the end
    squash = lambda text: re.sub(r"\s+", " ", text).strip()  # noqa: E731
    assert squash(" ".join(heard)) == squash(expected_text(120))
