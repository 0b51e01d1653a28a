from __future__ import annotations

import pytest
from django.urls import reverse

from generation.api_tokens import ApiToken, hash_token

pytestmark = pytest.mark.django_db


def test_a_token_is_stored_hashed_and_authenticates(django_user_model):
    user = django_user_model.objects.create_user("bob")
    token, raw = ApiToken.issue(user=user, name="nightly job")
    assert raw.startswith("sb_")
    assert len(raw) > 40
    stored = ApiToken.objects.get(pk=token.pk)
    assert stored.token_hash == hash_token(raw)
    assert raw not in (stored.token_hash, stored.prefix)
    assert ApiToken.authenticate(raw).user == user
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None
    assert ApiToken.authenticate(raw + "x") is None


def test_revoked_tokens_and_inactive_users_do_not_authenticate(django_user_model):
    user = django_user_model.objects.create_user("bob")
    token, raw = ApiToken.issue(user=user, name="a")
    token.revoke()
    assert ApiToken.authenticate(raw) is None
    _, raw2 = ApiToken.issue(user=user, name="b")
    user.is_active = False
    user.save()
    assert ApiToken.authenticate(raw2) is None


def test_admin_shows_a_new_token_once_and_revokes(admin_client, django_user_model):
    user = django_user_model.objects.create_user("carol")
    response = admin_client.post(
        reverse("admin:generation_apitoken_add"),
        {"user": user.pk, "name": "notebook", "requests_per_minute": "60"},
        follow=True,
    )
    token = ApiToken.objects.get()
    page = response.content.decode()
    assert "will not be shown again" in page
    raw = page.split("The new token is ")[1].split(" ")[0]
    assert ApiToken.authenticate(raw) == token
    listing = admin_client.get(reverse("admin:generation_apitoken_changelist")).content.decode()
    assert raw not in listing
    assert token.prefix in listing
    admin_client.post(
        reverse("admin:generation_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    assert ApiToken.authenticate(raw) is None
