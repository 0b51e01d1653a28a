from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from providers.models import Provider

KEY = "sk-admin-secret-9f2c4d8e7a6b5c3d9f2c"
ADD_URL = reverse("admin:providers_provider_add")
LIST_URL = reverse("admin:providers_provider_changelist")


def _form(**overrides: str) -> dict[str, str]:
    data = {
        "name": "OpenAI",
        "kind": "openai",
        "base_url": "",
        "default_model": "gpt-4o-mini",
        "is_active": "on",
        "new_api_key": KEY,
        "cache_ttl_seconds": "3600",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


def _change_url(provider: Provider) -> str:
    return reverse("admin:providers_provider_change", args=[provider.pk])


def test_create_stores_the_key_encrypted_and_never_shows_it_again(staff_client):
    response = staff_client.post(ADD_URL, _form())
    assert response.status_code == 302, response.content
    provider = Provider.objects.get()
    assert provider.get_api_key() == KEY
    pages = [
        staff_client.get(LIST_URL),
        staff_client.get(_change_url(provider)),
        staff_client.get(reverse("admin:providers_provider_history", args=[provider.pk])),
    ]
    for page in pages:
        assert page.status_code == 200
        assert KEY not in page.content.decode()
        assert provider.api_key.token not in page.content.decode()
    assert "sk-…9f2c" in pages[0].content.decode()
    assert 'type="password"' in pages[1].content.decode()
    assert all(KEY not in entry.change_message for entry in LogEntry.objects.all())


def test_edit_without_retyping_the_key_keeps_it(staff_client, make_provider):
    provider = make_provider("OpenAI", KEY)
    response = staff_client.post(
        _change_url(provider), _form(new_api_key="", default_model="gpt-4o")
    )
    assert response.status_code == 302, response.content
    provider.refresh_from_db()
    assert provider.default_model == "gpt-4o"
    assert provider.get_api_key() == KEY


def test_a_new_key_replaces_the_stored_one(staff_client, make_provider):
    provider = make_provider("OpenAI", KEY)
    staff_client.post(_change_url(provider), _form(new_api_key="  sk-replacement-key-00001111  "))
    provider.refresh_from_db()
    assert provider.get_api_key() == "sk-replacement-key-00001111"
    assert provider.api_key_hint == "sk-…1111"


def test_deactivate_and_reactivate_record_who_and_when(staff_client, admin_user, make_provider):
    provider = make_provider("OpenAI", KEY)
    staff_client.post(LIST_URL, {"action": "deactivate", "_selected_action": [provider.pk]})
    provider.refresh_from_db()
    assert not provider.is_active
    assert provider.deactivated_by == admin_user
    assert provider.deactivated_at is not None
    staff_client.post(LIST_URL, {"action": "reactivate", "_selected_action": [provider.pk]})
    provider.refresh_from_db()
    assert provider.is_active
    assert provider.deactivated_at is None
    assert provider.deactivated_by is None


def test_unticking_active_in_the_form_records_the_deactivation(
    staff_client, admin_user, make_provider
):
    provider = make_provider("OpenAI", KEY)
    staff_client.post(_change_url(provider), _form(new_api_key="", is_active=None))
    provider.refresh_from_db()
    assert (provider.is_active, provider.deactivated_by) == (False, admin_user)


def test_non_staff_users_cannot_reach_the_admin(client, django_user_model, make_provider):
    provider = make_provider("OpenAI", KEY)
    user = django_user_model.objects.create_user("alice", password="pw-alice-123")
    for url in (LIST_URL, ADD_URL, _change_url(provider)):
        anonymous = client.get(url)
        assert anonymous.status_code == 302
        assert "/admin/login/" in anonymous["Location"]
    client.force_login(user)
    for url in (LIST_URL, ADD_URL, _change_url(provider)):
        response = client.get(url)
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]
    response = client.post(ADD_URL, _form(name="Sneaky"))
    assert response.status_code == 302
    assert not Provider.objects.filter(name="Sneaky").exists()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"name": ""}, "name", "This field is required"),
        ({"name": "   "}, "name", "This field is required"),
        ({"base_url": "ftp://example.com"}, "base_url", "Enter a valid URL"),
        ({"base_url": "not a url"}, "base_url", "Enter a valid URL"),
        ({"kind": "openai_compatible", "base_url": ""}, "base_url", "needs a base URL"),
        ({"new_api_key": ""}, "new_api_key", "OpenAI needs an API key"),
        ({"new_api_key": "    "}, "new_api_key", "cannot be empty"),
        ({"new_api_key": "sk-abc\x07def123"}, "new_api_key", "control characters"),
        ({"new_api_key": "sk-" + "a" * 510}, "new_api_key", "at most 512"),
    ],
)
def test_invalid_input_is_a_form_error_and_saves_nothing(staff_client, overrides, field, message):
    response = staff_client.post(ADD_URL, _form(**overrides))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert not Provider.objects.exists()


def test_duplicate_name_is_a_form_error(staff_client, make_provider):
    make_provider("OpenAI", KEY)
    response = staff_client.post(ADD_URL, _form())
    assert "already exists" in " ".join(response.context["adminform"].form.errors["name"])
    assert Provider.objects.count() == 1


def test_test_connection_action_reports_latency_or_the_error_in_words(staff_client, fake_upstream):
    from tests.providers.fake_helpers import fake_provider

    good = fake_provider(fake_upstream, "openai")
    bad = fake_provider(fake_upstream, "anthropic", key="sk-invalid-0000000000")
    response = staff_client.post(
        LIST_URL,
        {"action": "test_connection", "_selected_action": [good.pk, bad.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert f"“{good.name}”: connected in" in page
    assert f"“{bad.name}”: failed after" in page
    assert "auth: The provider rejected the API key" in page
    assert "sk-invalid-0000000000" not in page


def test_response_cache_is_set_in_the_form_and_models_show_after_a_test(
    staff_client, fake_upstream
):
    from tests.providers.fake_helpers import fake_provider

    provider = fake_provider(fake_upstream, "openai")
    form = staff_client.get(_change_url(provider)).content.decode()
    assert "Not fetched yet" in form
    staff_client.post(LIST_URL, {"action": "test_connection", "_selected_action": [provider.pk]})
    assert "fake-model-large" in staff_client.get(_change_url(provider)).content.decode()
    response = staff_client.post(
        _change_url(provider),
        _form(
            name=provider.name,
            base_url=provider.base_url,
            new_api_key="",
            cache_responses="on",
            cache_ttl_seconds="600",
        ),
    )
    assert response.status_code == 302, response.content
    provider.refresh_from_db()
    assert (provider.cache_responses, provider.cache_ttl_seconds) == (True, 600)


def test_a_referenced_provider_cannot_be_deleted_only_deactivated(
    staff_client, make_provider, admin_user
):
    from generation.models import Conversation

    unused = make_provider("Unused", KEY)
    used = make_provider("Used", "sk-another-key-0123456789")
    Conversation.objects.create(owner=admin_user, provider=used)
    delete = "admin:providers_provider_delete"
    assert staff_client.get(reverse(delete, args=[used.pk])).status_code == 403
    assert staff_client.post(reverse(delete, args=[used.pk]), {"post": "yes"}).status_code == 403
    assert Provider.objects.filter(pk=used.pk).exists()
    assert "delete_selected" not in staff_client.get(LIST_URL).content.decode()
    response = staff_client.post(reverse(delete, args=[unused.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Provider.objects.filter(pk=unused.pk).exists()
