"""Presets: personal ones saved from a chat, shared ones managed by staff in the admin,
and a new chat started from either (its settings go upstream, its name shows)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from generation.models import Conversation, Message
from generation.presets import Preset
from tests.generation.conftest import wait_for

HX = {"HX-Request": "true"}


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def _save_url(conversation: Conversation) -> str:
    return reverse("generation:save_preset", args=[conversation.pk])


def _delete_url(preset: Preset) -> str:
    return reverse("generation:delete_preset", args=[preset.pk])


def _index(client, preset: Preset | None = None) -> str:
    query = {"preset": preset.pk} if preset else {}
    response = client.get(reverse("generation:index"), query)
    assert response.status_code == 200
    return response.content.decode()


def _preset(provider, owner=None, **fields) -> Preset:
    fields.setdefault("name", "Reviewer")
    fields.setdefault("model", "fake-model-large")
    fields.setdefault("system_prompt", "You review code.")
    fields.setdefault("temperature", 0.3)
    fields.setdefault("max_tokens", 77)
    return Preset.objects.create(owner=owner, provider=provider, **fields)


def _send(client, provider, **extra):
    data = {"text": "Hello", "provider": provider.pk, "model": "", "conversation": ""}
    data.update(extra)
    return client.post(reverse("generation:send"), data, headers=HX)


@pytest.mark.django_db
def test_save_a_chat_as_a_personal_preset(logged_in, user, make_chat_provider):
    provider = make_chat_provider()
    conversation = Conversation.objects.create(
        owner=user, provider=provider, model="fake-model-large", system_prompt="Be terse."
    )
    page = logged_in.get(reverse("generation:conversation", args=[conversation.pk]))
    assert _save_url(conversation) in page.content.decode()

    response = logged_in.post(
        _save_url(conversation),
        {"name": "Terse", "temperature": "0.5", "max_tokens": "300", "thinking": "on"},
        headers=HX,
    )

    assert response.status_code == 200
    assert "Saved the preset “Terse”." in response.content.decode()
    preset = Preset.objects.get()
    assert (preset.owner, preset.name, preset.provider, preset.model) == (
        user,
        "Terse",
        provider,
        "fake-model-large",
    )
    assert (preset.system_prompt, preset.temperature, preset.max_tokens, preset.thinking) == (
        "Be terse.",
        0.5,
        300,
        True,
    )
    # The new-chat page offers it, and lists it as the user's own to delete.
    page = _index(logged_in)
    assert f'<option value="{preset.pk}"' in page
    assert _delete_url(preset) in page
    assert "thinking on" in page


@pytest.mark.django_db
def test_a_name_is_unique_per_owner_and_refused_in_words(
    logged_in, user, other_user, make_chat_provider
):
    provider = make_chat_provider()
    conversation = Conversation.objects.create(owner=user, provider=provider, model="m")
    _preset(provider, owner=user, name="Mine")
    _preset(provider, owner=other_user, name="Theirs")

    taken = logged_in.post(_save_url(conversation), {"name": "Mine"}, headers=HX)
    free = logged_in.post(_save_url(conversation), {"name": "Theirs"}, headers=HX)

    assert "You already have a preset named “Mine”." in taken.content.decode()
    assert 'value="Mine"' in taken.content.decode(), "the name typed is kept"
    assert "Saved the preset “Theirs”." in free.content.decode()
    assert Preset.objects.filter(owner=user).count() == 2


@pytest.mark.django_db
def test_a_chat_without_a_provider_yet_cannot_be_saved(logged_in, user):
    conversation = Conversation.objects.create(owner=user)

    response = logged_in.post(_save_url(conversation), {"name": "Empty"}, headers=HX)

    assert "Send a message first" in response.content.decode()
    assert not Preset.objects.exists()


@pytest.mark.django_db
def test_delete_own_preset(logged_in, user, make_chat_provider):
    preset = _preset(make_chat_provider(), owner=user)

    response = logged_in.post(_delete_url(preset), headers=HX)

    assert response.status_code == 200
    assert not Preset.objects.exists()


@pytest.mark.django_db
def test_another_users_preset_is_404_everywhere(logged_in, user, other_user, make_chat_provider):
    provider = make_chat_provider()
    theirs = _preset(provider, owner=other_user, name="Secret recipe")
    mine = Conversation.objects.create(owner=user, provider=provider, model="m")
    their_chat = Conversation.objects.create(owner=other_user, provider=provider, model="m")

    assert "Secret recipe" not in _index(logged_in)
    assert logged_in.get(reverse("generation:index"), {"preset": theirs.pk}).status_code == 404
    assert logged_in.post(_delete_url(theirs)).status_code == 404
    assert _send(logged_in, provider, preset=theirs.pk).status_code == 404
    assert logged_in.post(_save_url(their_chat), {"name": "x"}).status_code == 404
    assert Preset.objects.filter(pk=theirs.pk).exists()
    assert not Message.objects.exists()
    assert mine.preset is None


@pytest.mark.django_db
def test_shared_presets_are_offered_to_all_but_not_deletable_by_users(
    logged_in, make_chat_provider
):
    shared = _preset(make_chat_provider(), owner=None, name="House style")

    page = _index(logged_in)

    assert "House style · shared" in page
    assert _delete_url(shared) not in page
    assert logged_in.post(_delete_url(shared)).status_code == 404
    assert Preset.objects.filter(pk=shared.pk).exists()


@pytest.mark.django_db
def test_staff_manage_shared_presets_in_the_admin(client, admin_user, user, make_chat_provider):
    provider = make_chat_provider()
    personal = _preset(provider, owner=user, name="Alice's own")
    add_url = reverse("admin:generation_preset_add")
    list_url = reverse("admin:generation_preset_changelist")
    client.force_login(admin_user)

    response = client.post(
        add_url,
        {
            "name": "House style",
            "provider": provider.pk,
            "model": "fake-model",
            "system_prompt": "Use British spelling.",
            "temperature": "",
            "max_tokens": "",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    shared = Preset.objects.get(name="House style")
    assert shared.owner is None
    assert shared.is_shared
    listing = client.get(list_url, {"q": "house"}).content.decode()
    assert "House style" in listing
    assert personal.name not in client.get(list_url).content.decode(), "personal ones stay out"

    # A second shared preset of that name is refused in words, not a server error.
    again = client.post(add_url, {"name": "House style", "provider": provider.pk})
    assert again.status_code == 200
    assert "A shared preset named “House style” already exists." in again.content.decode()
    assert Preset.objects.filter(name="House style").count() == 1

    # A signed-in user who is not staff is sent to the admin's login instead.
    client.force_login(user)
    assert client.get(list_url).status_code == 302
    assert client.post(add_url, {"name": "Sneaky", "provider": provider.pk}).status_code == 302
    assert not Preset.objects.filter(name="Sneaky").exists()


@pytest.mark.django_db
def test_the_new_chat_page_fills_in_the_presets_settings(logged_in, make_chat_provider):
    make_chat_provider(name="First")
    provider = make_chat_provider(name="Second")
    preset = _preset(provider, owner=None, name="Reviewer", thinking=True)

    page = _index(logged_in, preset)

    assert 'id="composer-preset"' in page
    assert "Preset: Reviewer · thinking on" in page
    assert f'<option value="{provider.pk}" selected>' in page
    assert '<option value="fake-model-large" selected>' in page
    assert 'value="0.3"' in page
    assert 'value="77"' in page
    assert ">You review code.</textarea>" in page
    assert f'<input type="hidden" name="preset" value="{preset.pk}">' in page


@pytest.mark.django_db
def test_a_preset_whose_provider_is_off_is_refused_in_words(logged_in, user, make_chat_provider):
    still_on = make_chat_provider(name="Still on")
    off = make_chat_provider(name="Switched off")
    preset = _preset(off, owner=user, name="Old one")
    off.is_active = False
    off.save()

    page = _index(logged_in, preset)

    assert "uses the provider “Switched off”, which is not available now" in page
    assert 'id="composer-preset"' not in page
    # Picked before it was switched off: the send says so, and nothing is stored.
    response = _send(logged_in, still_on, preset=preset.pk)
    assert response["HX-Retarget"] == "#composer-error"
    assert "which is not available now" in response.content.decode()
    assert not Message.objects.exists()


def _generation_bodies(fake_upstream) -> list[dict]:
    return [r.body for r in fake_upstream.requests if r.path == "/v1/chat/completions"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("relay_backend")
def test_a_chat_started_from_a_preset_sends_its_settings_upstream(
    client, user, make_chat_provider, huey_consumer, fake_upstream
):
    provider = make_chat_provider("tokens=3")
    preset = _preset(provider, owner=user)
    client.force_login(user)
    page = _index(client, preset)
    assert "Preset: Reviewer" in page

    # The composer as the page filled it in.
    response = _send(
        client,
        provider,
        model="fake-model-large",
        temperature="0.3",
        max_tokens="77",
        system_prompt="You review code.",
        preset=preset.pk,
    )

    assert response.status_code == 200
    conversation = Conversation.objects.get(owner=user)
    assert conversation.preset == preset
    answer = conversation.messages.get(role="assistant")
    wait_for(lambda: Message.objects.get(pk=answer.pk).status not in Message.ACTIVE)
    (body,) = _generation_bodies(fake_upstream)
    assert body["model"] == "fake-model-large"
    assert body["temperature"] == 0.3
    assert body["max_completion_tokens"] == 77
    assert body["messages"][0] == {"role": "system", "content": "You review code."}
    # The chat's own page keeps saying which preset it started from.
    chat = client.get(reverse("generation:conversation", args=[conversation.pk]))
    assert "Preset: Reviewer" in chat.content.decode()
    # Deleting the preset leaves the chat, without the label.
    client.post(_delete_url(preset))
    conversation.refresh_from_db()
    assert conversation.preset is None


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["save", "delete"])
def test_preset_posts_need_the_csrf_token(user, make_chat_provider, action):
    provider = make_chat_provider()
    conversation = Conversation.objects.create(owner=user, provider=provider, model="m")
    preset = _preset(provider, owner=user)
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(user)
    url = _save_url(conversation) if action == "save" else _delete_url(preset)

    response = csrf_client.post(url, {"name": "New"})

    assert response.status_code == 403
    assert list(Preset.objects.values_list("name", flat=True)) == ["Reviewer"]


@pytest.mark.django_db
def test_the_send_with_a_preset_needs_the_csrf_token(user, make_chat_provider):
    provider = make_chat_provider()
    preset = _preset(provider, owner=user)
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(user)

    response = _send(csrf_client, provider, preset=preset.pk)

    assert response.status_code == 403
    assert not Conversation.objects.exists()
