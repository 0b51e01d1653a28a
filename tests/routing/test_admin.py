"""Staff define aliases in the admin, targets inline."""

from __future__ import annotations

import pytest
from django.urls import reverse

from routing.models import Alias
from tests.providers.fake_helpers import fake_provider

ADD_URL = reverse("admin:routing_alias_add")
PREFIX = "targets"


def _form(name: str, *targets: tuple[str, str, str, str], **fields: str) -> dict[str, str]:
    data = {
        "name": name,
        "description": "",
        "is_active": "on",
        f"{PREFIX}-TOTAL_FORMS": str(len(targets)),
        f"{PREFIX}-INITIAL_FORMS": "0",
        f"{PREFIX}-MIN_NUM_FORMS": "0",
        f"{PREFIX}-MAX_NUM_FORMS": "1000",
        **fields,
    }
    for index, (priority, provider, model, weight) in enumerate(targets):
        data.update(
            {
                f"{PREFIX}-{index}-priority": priority,
                f"{PREFIX}-{index}-provider": provider,
                f"{PREFIX}-{index}-model": model,
                f"{PREFIX}-{index}-weight": weight,
            }
        )
    return data


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_staff_create_an_alias_with_groups_of_targets(staff_client, fake_upstream):
    a, b = fake_provider(fake_upstream), fake_provider(fake_upstream, is_active=False)
    response = staff_client.post(
        ADD_URL,
        _form("smart", ("1", str(a.pk), "m1", "3"), ("2", str(b.pk), "m2", "1")),
    )
    assert response.status_code == 302, response.content
    alias = Alias.objects.get(name="smart")
    assert [(t.priority, t.model, t.weight) for t in alias.targets.all()] == [
        (1, "m1", 3),
        (2, "m2", 1),
    ]
    page = staff_client.get(reverse("admin:routing_alias_change", args=[alias.pk]))
    assert "Inactive provider: skipped until it is reactivated" in page.text
    listing = staff_client.get(reverse("admin:routing_alias_changelist"))
    assert f"2: {b.name}/m2 (inactive) x1" in listing.text


def test_an_alias_needs_a_target_a_plain_name_and_a_positive_weight(staff_client, fake_upstream):
    a = fake_provider(fake_upstream)
    response = staff_client.post(ADD_URL, _form("smart"))
    assert "Add at least one target" in response.text
    response = staff_client.post(ADD_URL, _form("a/b", ("1", str(a.pk), "m", "1")))
    assert "cannot contain" in response.text
    response = staff_client.post(ADD_URL, _form("smart", ("1", str(a.pk), "m", "0")))
    assert "greater than or equal to 1" in response.text
    assert not Alias.objects.exists()


def test_only_one_alias_is_the_default_for_chats(staff_client, fake_upstream):
    a = fake_provider(fake_upstream)
    Alias.objects.create(name="fast", is_default_for_chats=True)
    response = staff_client.post(
        ADD_URL, _form("smart", ("1", str(a.pk), "m", "1"), is_default_for_chats="on")
    )
    assert "&#x27;fast&#x27; is the default for new chats" in response.text
    assert not Alias.objects.filter(name="smart").exists()


def test_the_alias_admin_is_for_staff_only(client, django_user_model):
    user = django_user_model.objects.create_user("pat", password="pw-1234-long")
    client.force_login(user)
    response = client.get(ADD_URL)
    assert response.status_code == 302
    assert "/login/" in response["Location"]
