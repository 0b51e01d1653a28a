"""Money in the chat: the send estimate (what the budget would hold), the chat's running
total, and the budget banner."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from generation.models import Conversation, Message
from usage.models import BudgetAlert, Reservation, UsageRecord

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    HUEY.storage.flush_queue()
    return client


def _estimate(client, provider, **fields) -> str:
    data = {"text": "", "provider": provider.pk, "model": "", "conversation": ""}
    data.update(fields)
    response = client.post(reverse("generation:send_estimate"), data, headers=HX)
    assert response.status_code == 200
    return response.content.decode()


def _nanos(html: str) -> int:
    match = re.search(r'data-nanos="(\d+)"', html)
    assert match, html
    return int(match.group(1))


def _answered(conversation: Conversation, text: str) -> None:
    """The pending answer of the chat, finished with `text` (no worker in these tests)."""
    answer = conversation.messages.get(role="assistant", status="pending")
    answer.status, answer.content = Message.Status.COMPLETE, text
    answer.save()
    Reservation.objects.filter(id=answer.reservation_id or 0).update(status="settled")


def test_the_estimate_is_what_the_send_then_holds(logged_in, user, make_chat_provider, give_budget):
    provider = make_chat_provider()
    give_budget(user)  # fake-model at $1 in, $2 out per million tokens
    logged_in.post(
        reverse("generation:send"),
        {
            "text": "First question " * 40,
            "provider": provider.pk,
            "model": "",
            "system_prompt": "Be brief.",
        },
        headers=HX,
    )
    conversation = Conversation.objects.get(owner=user)
    _answered(conversation, "A long answer. " * 100)
    fields = {"text": "And a follow-up? " * 30, "max_tokens": "700"}

    shown = _estimate(logged_in, provider, conversation=conversation.pk, **fields)
    logged_in.post(
        reverse("generation:send"),
        {"provider": provider.pk, "model": "", "conversation": conversation.pk, **fields},
        headers=HX,
    )

    held = Reservation.objects.filter(status="active").get()
    assert _nanos(shown) == held.amount_nanos
    # The history counts: the same words in a new chat may cost less.
    assert _nanos(_estimate(logged_in, provider, **fields)) < held.amount_nanos
    assert "This send may cost up to <strong" in shown
    assert f"${Decimal(held.amount_nanos) / 10**9:.4f}" in shown


def test_the_estimate_follows_max_tokens_and_the_default_cap(
    logged_in, user, make_chat_provider, give_budget, settings
):
    provider = make_chat_provider()
    give_budget(user)
    text = "x" * 300  # 100 prompt tokens: $0.0001
    assert _nanos(_estimate(logged_in, provider, text=text, max_tokens="1000")) == 2_100_000
    cap = settings.SWITCHBOARD["MAX_TOKENS_CAP"]
    assert _nanos(_estimate(logged_in, provider, text=text)) == 100_000 + cap * 2_000


def test_an_unpriced_model_says_its_cost_is_unknown(logged_in, make_chat_provider):
    provider = make_chat_provider()
    html = _estimate(logged_in, provider, text="Hello", model="mystery-model")
    assert "Cost unknown: mystery-model has no price." in html


def test_a_bad_field_is_said_in_words(logged_in, make_chat_provider):
    provider = make_chat_provider()
    html = _estimate(logged_in, provider, text="Hello", max_tokens="0")
    assert "greater than or equal to 1" in html


def test_another_users_chat_is_not_estimated(logged_in, other_user, make_chat_provider):
    provider = make_chat_provider()
    theirs = Conversation.objects.create(owner=other_user, title="Theirs")
    response = logged_in.post(
        reverse("generation:send_estimate"),
        {"text": "Hi", "provider": provider.pk, "conversation": theirs.pk},
        headers=HX,
    )
    assert response.status_code == 404
    cost = logged_in.get(reverse("generation:conversation_cost"), {"conversation": theirs.pk})
    assert cost.status_code == 404


def test_the_estimate_needs_a_login_and_a_post(client, logged_in):
    assert logged_in.get(reverse("generation:send_estimate")).status_code == 405
    logged_in.logout()
    response = client.post(reverse("generation:send_estimate"), {"text": "Hi"})
    assert response.status_code == 302


def test_nothing_typed_nothing_estimated(logged_in, make_chat_provider):
    provider = make_chat_provider()
    assert _estimate(logged_in, provider, text="  ").strip() == ""


def test_the_page_has_the_estimate_box(logged_in, make_chat_provider):
    make_chat_provider()
    page = logged_in.get(reverse("generation:index")).content.decode()
    assert 'id="send-estimate"' in page
    assert f'hx-post="{reverse("generation:send_estimate")}"' in page


def _record(message: Message, provider, nanos: int | None) -> None:
    UsageRecord.objects.create(
        provider=provider,
        model="fake-model",
        user=message.conversation.owner,
        message=message,
        source="chat",
        outcome="ok",
        cost_nanos=nanos,
        created_at=timezone.now(),
    )


def test_the_chat_shows_its_running_total(logged_in, user, make_chat_provider):
    provider = make_chat_provider()
    conversation = Conversation.objects.create(owner=user, title="Costly")
    first = Message.objects.create(conversation=conversation, role="assistant", status="complete")
    second = Message.objects.create(conversation=conversation, role="assistant", status="failed")
    _record(first, provider, 1_234_500)
    _record(second, provider, 100_000)  # a failed attempt is billed too
    _record(second, provider, 1)
    page = logged_in.get(reverse("generation:conversation", args=[conversation.pk]))
    assert 'So far: <span data-nanos="1334501">$0.0013</span>' in page.content.decode()
    refreshed = logged_in.get(
        reverse("generation:conversation_cost"), {"conversation": conversation.pk}
    )
    assert 'data-nanos="1334501"' in refreshed.content.decode()
    _record(first, provider, None)
    refreshed = logged_in.get(
        reverse("generation:conversation_cost"), {"conversation": conversation.pk}
    )
    assert "So far: cost unknown (1 unpriced call)" in refreshed.content.decode()


def _alert(**fields) -> BudgetAlert:
    today = timezone.localdate().replace(day=1)
    fields.setdefault("period_start", today)
    return BudgetAlert.objects.create(limit=Decimal("10"), **fields)


def test_the_banner_shows_this_months_alerts(logged_in, user, django_user_model):
    sales = Group.objects.create(name="Sales")
    user.groups.add(sales)
    elsewhere = Group.objects.create(name="Elsewhere")
    _alert(user=user, threshold=80, spent_nanos=8_100_000_000)
    _alert(team=sales, threshold=80, spent_nanos=8_000_000_000)
    _alert(team=sales, threshold=100, spent_nanos=10_000_000_000)
    _alert(team=elsewhere, threshold=100, spent_nanos=10_000_000_000)
    _alert(
        user=user,
        threshold=100,
        spent_nanos=10_000_000_000,
        period_start=datetime(2020, 1, 1, tzinfo=UTC).date(),
    )
    page = logged_in.get(reverse("generation:index")).content.decode()
    banner = page[page.index('id="budget-banner"') :]
    banner = banner[: banner.index("</div>")]
    text = " ".join(re.sub(r"<[^>]+>", " ", banner).split())
    assert "You have used 80% of your monthly budget ($8.10 of $10.00)." in text
    assert "Your team Sales has used up its monthly budget ($10.00 of $10.00)." in text
    assert "Sales has used 80%" not in text  # the highest of the month only
    assert "Elsewhere" not in text
    assert text.count("You have") == 1  # 2020's is over


def test_no_alert_no_banner(logged_in):
    page = logged_in.get(reverse("generation:index")).content.decode()
    assert 'id="budget-banner"' not in page


def test_an_alias_estimate_is_the_hold_of_its_costliest_target(
    logged_in, user, make_chat_provider, make_alias, give_budget
):
    from usage.models import ModelPrice

    cheap = make_chat_provider()
    dear = make_chat_provider(kind="anthropic")
    give_budget(user)  # fake-model at $1 in, $2 out for every kind
    ModelPrice.objects.filter(provider_kind="anthropic").update(
        input_per_mtok=Decimal("10"), output_per_mtok=Decimal("20")
    )
    alias = make_alias("smart", cheap, dear)  # the cheap one first, the dear one its fallback
    fields = {"text": "Which is it? " * 20, "max_tokens": "500"}

    shown = _estimate(logged_in, cheap, alias=alias.pk, **fields)
    logged_in.post(
        reverse("generation:send"),
        {"provider": cheap.pk, "model": "", "alias": alias.pk, **fields},
        headers=HX,
    )

    held = Reservation.objects.filter(status="active").get()
    assert _nanos(shown) == held.amount_nanos
    assert _nanos(shown) > _nanos(_estimate(logged_in, cheap, **fields))
    assert "with smart" in shown
