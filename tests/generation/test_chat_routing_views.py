"""The chat's alias picker and what a send to an alias stores, holds or refuses (no
worker runs: the answers stay pending)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from generation.models import Conversation, Message
from generation.presets import Preset
from usage.models import ModelPrice, Reservation, UsageRecord, UserBudget

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def _post(client, data, *, conversation=""):
    data = {"text": "Hello", "model": "", "conversation": conversation, **data}
    return client.post(reverse("generation:send"), data, headers=HX)


def _composer_error(response) -> str:
    assert response["HX-Retarget"] == "#composer-error"
    return response.content.decode()


def test_the_default_alias_is_preselected_for_a_new_chat_above_the_providers(
    logged_in, make_chat_provider, make_alias
):
    provider = make_chat_provider()
    make_alias("fast", provider)
    smart = make_alias("smart", provider, is_default_for_chats=True)
    make_alias("retired", provider, is_active=False)

    page = logged_in.get(reverse("generation:index")).content.decode()

    assert page.index('name="alias"') < page.index('name="provider"')
    assert f'<option value="{smart.pk}" selected>smart</option>' in page
    assert ">fast</option>" in page
    assert "retired" not in page


def test_without_a_default_alias_a_new_chat_picks_a_provider_as_before(
    logged_in, make_chat_provider, make_alias
):
    provider = make_chat_provider()
    smart = make_alias("smart", provider)
    page = logged_in.get(reverse("generation:index")).content.decode()
    assert f'<option value="{smart.pk}">smart</option>' in page
    assert '<option value="" selected' not in page  # the blank choice, first, is picked
    assert f'<option value="{provider.pk}" selected>' in page


def test_a_preset_picks_its_own_model_over_the_default_alias(
    logged_in, user, make_chat_provider, make_alias
):
    provider = make_chat_provider()
    smart = make_alias("smart", provider, is_default_for_chats=True)
    preset = Preset.objects.create(owner=user, name="Mine", provider=provider, model="fake-model")
    page = logged_in.get(reverse("generation:index") + f"?preset={preset.pk}").content.decode()
    assert f'<option value="{smart.pk}">smart</option>' in page


def test_the_chat_remembers_the_alias_until_a_provider_is_picked(
    logged_in, make_chat_provider, make_alias
):
    provider = make_chat_provider()
    smart = make_alias("smart", provider)
    response = _post(logged_in, {"alias": smart.pk, "provider": provider.pk})
    # Until a target answers, the pending answer names the alias.
    assert '<span class="message__model">smart</span>' in response.content.decode()
    conversation = Conversation.objects.get()
    assert conversation.alias == smart
    answer = Message.objects.get(role="assistant")
    assert (answer.alias, answer.provider, answer.status) == (smart, provider, "pending")
    url = reverse("generation:conversation", args=[conversation.pk])
    assert f'<option value="{smart.pk}" selected>' in logged_in.get(url).content.decode()

    _post(logged_in, {"alias": "", "provider": provider.pk}, conversation=conversation.pk)

    conversation.refresh_from_db()
    assert conversation.alias is None
    assert Message.objects.filter(role="assistant").latest("pk").alias is None
    assert f'<option value="{smart.pk}" selected>' not in logged_in.get(url).content.decode()


def test_a_provider_switched_off_under_the_picked_alias_is_no_reason_to_refuse(
    logged_in, make_chat_provider, make_alias
):
    gone = make_chat_provider(is_active=False)
    target = make_chat_provider()
    smart = make_alias("smart", target)
    response = _post(logged_in, {"alias": smart.pk, "provider": gone.pk})
    assert "HX-Retarget" not in response
    answer = Message.objects.get(role="assistant")
    assert (answer.alias, answer.provider) == (smart, target)


def test_an_alias_with_no_active_target_is_refused_in_the_composer(
    logged_in, make_chat_provider, make_alias
):
    switched_off = make_chat_provider(is_active=False)
    empty = make_alias("smart", switched_off)
    response = _post(logged_in, {"alias": empty.pk, "provider": make_chat_provider().pk})
    assert "The alias &#x27;smart&#x27; has no target with an active provider" in _composer_error(
        response
    )
    assert not Conversation.objects.exists()
    assert not Message.objects.exists()
    assert not UsageRecord.objects.exists()
    assert not Reservation.objects.exists()


def test_an_alias_switched_off_meanwhile_or_no_choice_at_all_is_said_in_words(
    logged_in, make_chat_provider, make_alias
):
    provider = make_chat_provider()
    gone = make_alias("smart", provider, is_active=False)
    response = _post(logged_in, {"alias": gone.pk, "provider": provider.pk})
    assert "That alias is no longer available." in _composer_error(response)
    response = _post(logged_in, {"alias": "", "provider": ""})
    assert "Pick a provider or an alias." in _composer_error(response)
    assert not Message.objects.exists()


def test_the_hold_covers_the_costliest_target(logged_in, user, make_chat_provider, make_alias):
    cheap = make_chat_provider(kind="openai")
    dear = make_chat_provider(kind="anthropic")
    for kind, price in (("openai", "1"), ("anthropic", "100")):
        ModelPrice.objects.create(
            provider_kind=kind,
            model="fake-model",
            input_per_mtok=Decimal(price),
            output_per_mtok=Decimal(price),
            valid_from=timezone.now() - timezone.timedelta(days=1),
        )
    UserBudget.objects.create(user=user, monthly_limit=Decimal("0.05"))
    smart = make_alias("smart", cheap, dear)
    # 1,000 output tokens cost $0.10 at the dear target: over the $0.05 limit, though
    # the cheap first target alone ($0.001) would fit.
    response = _post(logged_in, {"alias": smart.pk, "provider": cheap.pk, "max_tokens": 1000})
    assert "monthly budget" in _composer_error(response)
    assert not Message.objects.exists()
    refusal = UsageRecord.objects.get()
    assert (refusal.outcome, refusal.provider, refusal.alias, refusal.source) == (
        "over_budget",
        dear,
        "smart",
        "chat",
    )

    response = _post(logged_in, {"alias": smart.pk, "provider": cheap.pk, "max_tokens": 100})

    assert "HX-Retarget" not in response
    answer = Message.objects.get(role="assistant")
    held = Reservation.objects.get(pk=answer.reservation_id)
    assert (held.provider, held.model, held.status) == (dear, "fake-model", "active")


def _answered(user, provider, alias, status=Message.Status.COMPLETE) -> Message:
    """A finished answer of an alias, as the worker leaves it."""
    conversation = Conversation.objects.create(owner=user, alias=alias, provider=provider)
    question = Message.objects.create(conversation=conversation, role="user", content="Hi")
    answer = Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        status=status,
        content="Hello!",
        provider=provider,
        model="fake-model",
        alias=alias,
    )
    conversation.current_leaf = answer
    conversation.save()
    return answer


def test_the_answered_by_label_is_escaped(logged_in, user, make_chat_provider, make_alias):
    provider = make_chat_provider(name="<b>Acme</b>")
    alias = make_alias("<i>smart", provider)
    answer = _answered(user, provider, alias)
    url = reverse("generation:conversation", args=[answer.conversation_id])
    page = logged_in.get(url).content.decode()
    assert "answered by &lt;b&gt;Acme&lt;/b&gt;/fake-model via &lt;i&gt;smart" in page
    assert "<b>Acme" not in page
    assert "<i>smart" not in page


def test_alias_answers_stay_their_owners(client, user, other_user, make_chat_provider, make_alias):
    provider = make_chat_provider()
    alias = make_alias("smart", provider)
    answer = _answered(user, provider, alias, status=Message.Status.CANCELLED)
    client.force_login(other_user)
    conversation_url = reverse("generation:conversation", args=[answer.conversation_id])
    assert client.get(conversation_url).status_code == 404
    for name in ("regenerate", "retry", "message"):
        method = client.get if name == "message" else client.post
        assert (
            method(reverse(f"generation:{name}", args=[answer.pk]), headers=HX).status_code == 404
        )
    question_edit = reverse("generation:edit", args=[answer.parent_id])
    assert client.post(question_edit, {"text": "Mine now", "alias": alias.pk}).status_code == 404
    response = _post(client, {"alias": alias.pk}, conversation=answer.conversation_id)
    assert response.status_code == 404
    assert Message.objects.count() == 2  # nothing was added to the owner's chat
    assert not UsageRecord.objects.exists()


def test_the_export_names_the_alias_and_its_target(logged_in, user, make_chat_provider, make_alias):
    provider = make_chat_provider(name="Second")
    answer = _answered(user, provider, make_alias("smart", provider))
    url = reverse("generation:export_json", args=[answer.conversation_id])
    exported = logged_in.get(url).json()["messages"][-1]
    assert (exported["provider"], exported["model"], exported["alias"]) == (
        "Second",
        "fake-model",
        "smart",
    )
    url = reverse("generation:export_markdown", args=[answer.conversation_id])
    assert (
        "## Assistant · fake-model via Second (alias smart)" in logged_in.get(url).content.decode()
    )
