"""The lockout as a person meets it: headless Chromium signing in with a wrong password."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_locked_out_person_is_told_why_on_the_sign_in_page(
    live_server, django_user_model, settings, open_page, browser_watch
):
    django_user_model.objects.create_user("alice", password="pw-alice-123")
    # The lockout page answers 429 on purpose; any other error still fails the test.
    browser_watch.allow("/accounts/login/")
    page = open_page(live_server.url)
    page.goto(f"{live_server.url}/accounts/login/")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "not-the-password")
        with page.expect_navigation():
            page.click("button[type=submit]")
    alert = page.locator("[role=alert]").inner_text()
    assert "Too many failed sign-in attempts" in alert
    assert "Try again in 15 minutes" in alert
    # The form is still there, the username kept: the person knows where they are.
    assert page.input_value("input[name=username]") == "alice"
