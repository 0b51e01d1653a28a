"""Money in the chat, in headless Chromium: the composer's estimate follows what is typed
and equals the hold the send then makes; the chat's running total follows its answers.

Screenshots land in test-artifacts/ at the repository root.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from generation.models import Conversation
from tests.fixtures.browser import screenshot
from tests.generation.conftest import wait_for
from tests.generation.test_browser import ChatServer, _log_in
from usage.models import Reservation, UsageRecord

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOWN_NANOS = (
    "(() => { const s = document.querySelector('#send-estimate strong');"
    " return s ? Number(s.dataset.nanos) : null; })()"
)


@pytest.fixture
def tab(open_page, huey_consumer, user) -> Iterator:
    server = ChatServer()
    server.start()
    page = open_page(server.url)
    _log_in(page, server.url)
    yield page
    server.stop()


def _shown_becomes(page, previous: int | None) -> int:
    """The estimate once it differs from `previous` (it is asked for after a pause)."""
    page.wait_for_function(
        f"(() => {{ const n = {SHOWN_NANOS}; return n !== null && n !== {previous or 'null'}; }})()"
    )
    return int(page.evaluate(SHOWN_NANOS))


def test_the_estimate_follows_the_composer_and_the_total_follows_the_chat(
    tab, user, make_chat_provider, give_budget
):
    make_chat_provider("tokens=12", name="Demo (local)")
    give_budget(user)  # fake-model at $1 in and $2 out per million tokens
    tab.reload()
    tab.fill("#composer textarea", "How do switchboards route calls? " * 30)
    typed = _shown_becomes(tab, None)  # the default max tokens (the cap) held
    tab.fill("#composer input[name=max_tokens]", "100")
    capped = _shown_becomes(tab, typed)
    assert capped < typed
    screenshot(tab, "chat-send-estimate")

    tab.press("#composer textarea", "Enter")
    wait_for(lambda: Reservation.objects.exists())
    assert Reservation.objects.get().amount_nanos == capped  # shown = held
    tab.wait_for_selector(".message--assistant.is-complete")

    # The answer ended: the chat's total is its metered cost, and the next estimate
    # counts the longer history.
    conversation = Conversation.objects.get(owner=user)
    wait_for(lambda: UsageRecord.objects.filter(message__conversation=conversation).exists())
    cost = UsageRecord.objects.get(message__conversation=conversation).cost_nanos
    tab.wait_for_function(
        f"document.querySelector('#conversation-cost [data-nanos=\"{cost}\"]') !== null"
    )
    tab.fill("#composer textarea", "How do switchboards route calls? " * 30)
    after = _shown_becomes(tab, capped)
    assert after > capped  # the same words and max tokens, with the history as prompt now
    screenshot(tab, "chat-running-total")


def test_the_budget_banner_is_above_the_thread(tab, user, make_chat_provider):
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from usage.models import BudgetAlert

    make_chat_provider("tokens=12", name="Demo (local)")
    sales = Group.objects.create(name="Sales")
    user.groups.add(sales)
    month = timezone.localdate().replace(day=1)
    BudgetAlert.objects.create(
        user=user, period_start=month, threshold=80, spent_nanos=8_200_000_000, limit=10
    )
    BudgetAlert.objects.create(
        team=sales, period_start=month, threshold=100, spent_nanos=50_000_000_000, limit=50
    )
    tab.reload()
    banner = tab.locator("#budget-banner")
    assert banner.is_visible()
    lines = banner.locator(".budget-banner__line").all_inner_texts()
    assert lines[0].startswith("You have used 80% of your monthly budget ($8.20 of $10")
    assert lines[1].startswith("Your team Sales has used up its monthly budget ($50.00 of $50")
    screenshot(tab, "chat-budget-banner")
