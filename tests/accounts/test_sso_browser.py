"""Single sign-on in headless Chromium against a real OpenID Connect provider.

The provider (django-oauth-toolkit, tests/oidc_provider) runs in a process of its own
on loopback; Switchboard finds its endpoints through discovery and reaches its token
endpoint through a loopback proxy that the refusal tests use to alter the answer.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from django.contrib.auth.models import Group, User

from accounts.models import ManagedGroup, SsoIdentity
from tests.accounts.conftest import (
    CLIENT_SECRET,
    OTHER_CLIENT_ID,
    OTHER_CLIENT_SECRET,
    STAFF_GROUP,
    configure_sso,
    sign_in_with_sso,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REFUSED = "Single sign-on failed: the identity provider's answer could not be verified."


def _group_names(user: User) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def _sign_out(page) -> None:
    with page.expect_navigation():
        page.click("text=Sign out")


def test_first_sign_in_creates_the_user_with_their_groups_and_staff_status(
    sso, open_page, signals_seen
):
    alice = sso.person("alice", ["engineering", STAFF_GROUP], given_name="Alice")
    page = open_page(sso.base_url)
    sign_in_with_sso(page, sso.base_url, alice)

    page.wait_for_selector(".chat__header")  # signed in: the chat, not the sign-in page
    user = User.objects.get(username="alice")
    assert _group_names(user) == {"engineering", STAFF_GROUP}
    assert user.is_staff
    assert not user.is_superuser
    assert user.email == "alice@example.com"
    assert user.first_name == "Alice"
    assert not user.has_usable_password()  # SSO only: no password to guess
    identity = SsoIdentity.objects.get(user=user)
    assert (identity.issuer, identity.subject) == (sso.provider.issuer, alice.sub)
    assert signals_seen("logged_in") == [{"user": "alice"}]
    assert [(s["action"], len(s["pks"])) for s in signals_seen("groups")] == [("post_add", 2)]

    # Staff status is real: the admin opens.
    page.goto(sso.base_url + "/admin/")
    assert page.locator("#site-name").is_visible()


def test_a_changed_groups_claim_updates_groups_and_staff_at_the_next_sign_in(
    sso, open_page, signals_seen
):
    alice = sso.person("alice", ["engineering", STAFF_GROUP])
    page = open_page(sso.base_url)
    sign_in_with_sso(page, sso.base_url, alice)
    page.wait_for_selector(".chat__header")
    user = User.objects.get(username="alice")
    assert user.is_staff
    # A group given by hand, which no claim names: single sign-on leaves it alone.
    budget = Group.objects.create(name="budget-managers")
    user.groups.add(budget)
    _sign_out(page)

    sso.person("alice", ["research"])  # moved team at the provider, admin rights gone
    sign_in_with_sso(page, sso.base_url, alice)
    page.wait_for_selector(".chat__header")

    user.refresh_from_db()
    assert _group_names(user) == {"research", "budget-managers"}
    assert not user.is_staff
    assert User.objects.filter(username__startswith="alice").count() == 1  # the same account
    assert not ManagedGroup.objects.filter(group=budget).exists()
    engineering = Group.objects.get(name="engineering")
    changes = [(s["action"], s["pks"]) for s in signals_seen("groups")]
    assert ("post_remove", {engineering.pk, Group.objects.get(name=STAFF_GROUP).pk}) in changes
    assert ("post_add", {Group.objects.get(name="research").pk}) in changes

    page.goto(sso.base_url + "/admin/")
    assert urlsplit(page.url).path == "/admin/login/"  # no longer staff: the admin refuses


def _assert_refused(page, base_url: str) -> None:
    assert urlsplit(page.url).path == "/accounts/login/"
    assert REFUSED in page.locator("[role=alert]").inner_text()
    page.goto(base_url + "/")
    assert urlsplit(page.url).path == "/accounts/login/"  # not signed in


def test_a_tampered_id_token_is_refused(sso, token_proxy, open_page, signals_seen, caplog):
    mallory = sso.person("mallory", ["engineering"])
    # The proxy grants admin rights in the genuine token's claims, keeping its signature.
    token_proxy.mode = "tamper"
    token_proxy.claims = {"teams": ["engineering", STAFF_GROUP]}
    page = open_page(sso.base_url)
    sign_in_with_sso(page, sso.base_url, mallory)

    _assert_refused(page, sso.base_url)
    assert "JWS token verification failed" in caplog.text  # refused for its signature
    # What was logged names the fault, never a token or our client secret.
    for token in token_proxy.id_tokens:
        assert token.split(".")[2] not in caplog.text
    assert CLIENT_SECRET not in caplog.text
    assert token_proxy.forwarded >= 1  # the provider answered; we refused its altered answer
    assert not User.objects.filter(username="mallory").exists()
    assert len(signals_seen("login_failed")) == 1
    assert signals_seen("logged_in") == []


def test_an_id_token_for_another_audience_is_refused(sso, token_proxy, open_page, caplog):
    """A genuine, correctly signed token of the same provider, issued to another client."""
    mallory = sso.person("mallory", ["engineering"])
    page = open_page(sso.base_url)

    def as_other_client(route):
        # Our redirect to the provider, with the other client's id in place of ours.
        answer = route.fetch(max_redirects=0)
        location = urlsplit(answer.headers["location"])
        query = {**dict(parse_qsl(location.query)), "client_id": OTHER_CLIENT_ID}
        headers = {**answer.headers, "location": location._replace(query=urlencode(query)).geturl()}
        route.fulfill(status=answer.status, headers=headers, body=b"")

    # The browser asks the provider for a code for the other client, and the proxy redeems
    # it with that client's credentials: the provider's answer is valid in every respect
    # but its audience.
    page.context.route(f"{sso.base_url}/accounts/sso/start/**", as_other_client)
    token_proxy.mode = "client"
    token_proxy.client_id, token_proxy.client_secret = OTHER_CLIENT_ID, OTHER_CLIENT_SECRET
    sign_in_with_sso(page, sso.base_url, mallory)

    _assert_refused(page, sso.base_url)
    assert "ID token for another audience" in caplog.text
    assert token_proxy.forwarded >= 1
    assert not User.objects.filter(username="mallory").exists()


def test_an_expired_id_token_is_refused(
    settings, live_server, expiring_provider, open_page, caplog
):
    sso = configure_sso(settings, expiring_provider, live_server.url)
    mallory = sso.person("mallory", ["engineering"])
    page = open_page(sso.base_url)
    sign_in_with_sso(page, sso.base_url, mallory)

    _assert_refused(page, sso.base_url)
    assert "Signature has expired" in caplog.text
    assert not User.objects.filter(username="mallory").exists()


def test_sign_out_ends_the_session(sso, open_page):
    alice = sso.person("alice", ["engineering"])
    page = open_page(sso.base_url)
    sign_in_with_sso(page, sso.base_url, alice)
    page.wait_for_selector(".chat__header")

    _sign_out(page)
    assert urlsplit(page.url).path == "/accounts/login/"
    page.goto(sso.base_url + "/")
    assert urlsplit(page.url).path == "/accounts/login/"
    # The provider still knows the person (single sign-on): the next SSO sign-in goes
    # straight through without its password form.
    page.click("text=Sign in with SSO")
    page.wait_for_selector(".chat__header")


def test_sign_out_can_end_the_provider_session_too(sso, settings, open_page):
    settings.OIDC_LOGOUT_AT_PROVIDER = True
    alice = sso.person("alice", ["engineering"])
    page = open_page(sso.base_url)
    sign_in_with_sso(page, sso.base_url, alice)
    page.wait_for_selector(".chat__header")

    _sign_out(page)
    page.wait_for_url(sso.base_url + "/accounts/login/")  # back from the provider
    page.click("text=Sign in with SSO")
    # Signed out there too: the provider asks for the password again.
    page.wait_for_selector("#provider-login")


def test_password_sign_in_can_be_kept_for_superusers_only(
    sso, settings, open_page, django_user_model
):
    settings.PASSWORD_SIGN_IN = "superusers"
    django_user_model.objects.create_user("bob", password="pw-bob-local-123")
    django_user_model.objects.create_superuser("root", password="pw-root-local-123")
    page = open_page(sso.base_url)
    page.goto(sso.base_url + "/accounts/login/")
    assert "Administrators only" in page.locator(".auth__or").inner_text()

    page.fill("input[name=username]", "bob")
    page.fill("input[name=password]", "pw-bob-local-123")
    with page.expect_navigation():
        page.click("button[type=submit]:text('Sign in')")
    alert = page.locator("[role=alert]").inner_text()
    assert "Password sign-in is turned off for your account" in alert
    assert "Sign in with SSO" in alert
    page.goto(sso.base_url + "/")
    assert urlsplit(page.url).path == "/accounts/login/"

    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", "pw-root-local-123")
    with page.expect_navigation():
        page.click("button[type=submit]:text('Sign in')")
    page.wait_for_selector(".chat__header")
