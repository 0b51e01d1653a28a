"""Sign-in throttling (django-axes): repeated failures lock one account from one address."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db

LOGIN_URL = reverse("login")
ADMIN_LOGIN_URL = reverse("admin:login")
PASSWORD = "pw-alice-123"
# Addresses from the documentation range: only REMOTE_ADDR values, nothing is sent to them.
OFFICE = "203.0.113.7"
HOME = "198.51.100.20"
LOCKED_TEXT = "Too many failed sign-in attempts"


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password=PASSWORD)


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="pw-bob-45678")


def _sign_in(
    client: Client, username: str, password: str, *, url: str = LOGIN_URL, ip: str = OFFICE
):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=ip)


def _fail(client: Client, username: str, times: int, **where: str) -> None:
    for _ in range(times):
        _sign_in(client, username, "not-the-password", **where)


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_repeated_failures_lock_the_account_with_a_message_on_the_sign_in_page(
    client, alice, settings
):
    limit = settings.AXES_FAILURE_LIMIT
    assert limit >= 3
    for _ in range(limit - 1):
        response = _sign_in(client, "alice", "not-the-password")
        assert response.status_code == 200
        assert "didn't match" in response.content.decode()
    response = _sign_in(client, "alice", "not-the-password")
    assert response.status_code == 429
    page = response.content.decode()
    assert LOCKED_TEXT in page
    assert "Try again in 15 minutes" in page
    assert "didn't match" not in page  # the lockout, not a wrong password, is the news
    assert 'name="password"' in page  # still the sign-in page, not a bare error text
    assert 'value="alice"' in page

    # While locked, even the right password is refused.
    response = _sign_in(client, "alice", PASSWORD)
    assert response.status_code == 429
    assert LOCKED_TEXT in response.content.decode()
    assert not _signed_in(client)


def test_the_lock_is_for_that_account_from_that_address_only(client, alice, bob, settings):
    # Policy: (username, address) pairs. A guesser cannot lock a colleague out from
    # everywhere, nor the whole office (one address behind NAT) out of every account.
    _fail(client, "alice", settings.AXES_FAILURE_LIMIT)
    assert _sign_in(client, "alice", PASSWORD).status_code == 429

    colleague = Client()
    assert _sign_in(colleague, "bob", "pw-bob-45678").status_code == 302
    assert _signed_in(colleague)

    elsewhere = Client()
    assert _sign_in(elsewhere, "alice", PASSWORD, ip=HOME).status_code == 302
    assert _signed_in(elsewhere)


def test_the_lock_ends_after_the_cool_off(client, alice, settings):
    _fail(client, "alice", settings.AXES_FAILURE_LIMIT)
    assert _sign_in(client, "alice", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert _sign_in(client, "alice", PASSWORD).status_code == 302
    assert _signed_in(client)


def test_a_successful_sign_in_starts_the_count_again(client, alice, settings):
    limit = settings.AXES_FAILURE_LIMIT
    _fail(client, "alice", limit - 1)
    assert _sign_in(client, "alice", PASSWORD).status_code == 302
    client.post(reverse("logout"))
    _fail(client, "alice", limit - 1)
    assert _sign_in(client, "alice", PASSWORD).status_code == 302


def test_staff_unlock_in_the_admin_restores_sign_in(client, alice, admin_user, settings):
    _fail(client, "alice", settings.AXES_FAILURE_LIMIT)
    assert _sign_in(client, "alice", PASSWORD).status_code == 429

    staff = Client()
    staff.force_login(admin_user)
    attempts_url = reverse("admin:axes_accessattempt_changelist")
    listing = staff.get(attempts_url)
    assert listing.status_code == 200
    assert "alice" in listing.content.decode()
    attempt = AccessAttempt.objects.get(username="alice")
    response = staff.post(
        attempts_url,
        {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()

    assert _sign_in(client, "alice", PASSWORD).status_code == 302
    assert _signed_in(client)


def test_the_admin_sign_in_is_throttled_too(client, admin_user, settings):
    _fail(client, admin_user.username, settings.AXES_FAILURE_LIMIT, url=ADMIN_LOGIN_URL)
    response = _sign_in(client, admin_user.username, "password", url=ADMIN_LOGIN_URL)
    assert response.status_code == 429
    assert LOCKED_TEXT in response.content.decode()
    assert not _signed_in(client)
    # One count for both pages: the same account and address stay locked on ours.
    assert _sign_in(client, admin_user.username, "password").status_code == 429


def test_the_lockout_page_comes_through_the_async_middleware_chain_too(
    async_client, alice, settings
):
    # Served by uvicorn, every middleware runs in async mode, axes' included: its async
    # path builds the lockout response differently (see config/lockout.py).
    async def sign_in_until_locked():
        for _ in range(settings.AXES_FAILURE_LIMIT):
            await async_client.post(LOGIN_URL, {"username": "alice", "password": "wrong"})
        return await async_client.post(LOGIN_URL, {"username": "alice", "password": PASSWORD})

    response = async_to_sync(sign_in_until_locked)()
    assert response.status_code == 429
    page = response.content.decode()
    assert LOCKED_TEXT in page
    assert 'value="alice"' in page
