"""PASSWORD_SIGN_IN: passwords for everyone (the default), or for superusers only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.forms import PASSWORD_SIGN_IN_OFF

pytestmark = pytest.mark.django_db

LOGIN_URL = reverse("login")
ADMIN_LOGIN_URL = reverse("admin:login")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="pw-bob-local-123", is_staff=True)


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_superuser("root", password="pw-root-local-123")


def _signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_by_default_everyone_signs_in_with_a_password(client, bob):
    response = client.post(LOGIN_URL, {"username": "bob", "password": "pw-bob-local-123"})
    assert response.status_code == 302
    assert _signed_in(client)


def test_a_non_superusers_correct_password_is_refused_with_the_reason(client, bob, settings):
    settings.PASSWORD_SIGN_IN = "superusers"
    response = client.post(LOGIN_URL, {"username": "bob", "password": "pw-bob-local-123"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Password sign-in is turned off for your account" in page
    assert "didn't match" not in page
    assert not _signed_in(client)


def test_a_wrong_password_says_only_that_it_did_not_match(client, bob, settings):
    # The reason is only given once the password is right: it tells a guesser nothing.
    settings.PASSWORD_SIGN_IN = "superusers"
    response = client.post(LOGIN_URL, {"username": "bob", "password": "not-it"})
    page = response.content.decode()
    assert "didn't match" in page
    assert "turned off" not in page


def test_superusers_keep_their_password(client, root, settings):
    settings.PASSWORD_SIGN_IN = "superusers"
    response = client.post(LOGIN_URL, {"username": "root", "password": "pw-root-local-123"})
    assert response.status_code == 302
    assert _signed_in(client)


def test_the_admin_sign_in_follows_the_same_rule(client, bob, root, settings):
    settings.PASSWORD_SIGN_IN = "superusers"
    response = client.post(ADMIN_LOGIN_URL, {"username": "bob", "password": "pw-bob-local-123"})
    assert response.status_code == 200
    assert "Password sign-in is turned off for your account" in response.content.decode()
    assert not _signed_in(client)
    response = client.post(ADMIN_LOGIN_URL, {"username": "root", "password": "pw-root-local-123"})
    assert response.status_code == 302
    assert _signed_in(client)


def test_the_message_names_the_way_in(settings):
    assert "Sign in with SSO" in PASSWORD_SIGN_IN_OFF


def test_without_sso_the_sign_in_page_is_unchanged(client):
    page = client.get(LOGIN_URL).content.decode()
    assert "Sign in with SSO" not in page
    assert client.get(reverse("oidc_authentication_init")).status_code == 404
    assert client.get(reverse("oidc_authentication_callback")).status_code == 404


def test_check_names_a_sign_in_setting_that_would_lock_people_out(settings):
    from django.core.checks import run_checks

    def ids() -> set[str]:
        return {str(m.id) for m in run_checks() if str(m.id).startswith("accounts.")}

    assert ids() == set()
    settings.PASSWORD_SIGN_IN = "superuser"  # a typo would silently mean "everyone"
    assert "accounts.E001" in ids()
    settings.PASSWORD_SIGN_IN = "superusers"  # and no SSO: nobody else could sign in
    assert "accounts.W001" in ids()
    settings.OIDC_ISSUER = "https://idp.example.com"
    assert "accounts.W002" in ids()
