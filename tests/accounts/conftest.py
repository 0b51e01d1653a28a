"""Single sign-on against a real OpenID Connect provider (tests/oidc_provider) on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from accounts import discovery
from tests.oidc_provider import GROUPS_CLAIM
from tests.oidc_provider.process import Person, ProviderProcess, TokenProxy

CLIENT_ID = "switchboard"
CLIENT_SECRET = "switchboard-client-secret-0123456789"
# Another application registered at the same provider (same redirect URI).
OTHER_CLIENT_ID = "other-app"
OTHER_CLIENT_SECRET = "other-app-client-secret-0123456789"
STAFF_GROUP = "switchboard-admins"
CALLBACK_PATH = "/accounts/sso/callback/"


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory) -> Iterator[ProviderProcess]:
    provider = ProviderProcess(tmp_path_factory.mktemp("oidc-provider"))
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
def expiring_provider(tmp_path_factory) -> Iterator[ProviderProcess]:
    """A second provider whose ID tokens expire ten minutes before they are issued."""
    provider = ProviderProcess(tmp_path_factory.mktemp("oidc-expiring"), id_token_seconds=-600)
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
def token_proxy_server(oidc_provider) -> Iterator[TokenProxy]:
    proxy = TokenProxy(oidc_provider.token_endpoint)
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def token_proxy(token_proxy_server) -> Iterator[TokenProxy]:
    token_proxy_server.reset()
    yield token_proxy_server
    token_proxy_server.reset()


@dataclass
class Sso:
    provider: ProviderProcess
    base_url: str

    def person(self, username: str, groups: list[str], **fields: str) -> Person:
        return self.provider.put_person(
            Person(
                username=username,
                password=f"pw-{username}-at-provider",
                email=fields.get("email", f"{username}@example.com"),
                groups=groups,
                given_name=fields.get("given_name", username.title()),
            )
        )


def configure_sso(settings, provider: ProviderProcess, base_url: str) -> Sso:
    """Register Switchboard at `provider` and point the settings at it (endpoints discovered)."""
    for client_id, secret in [(CLIENT_ID, CLIENT_SECRET), (OTHER_CLIENT_ID, OTHER_CLIENT_SECRET)]:
        provider.register_client(
            client_id,
            secret,
            redirect_uri=base_url + CALLBACK_PATH,
            post_logout_redirect_uri=base_url + "/accounts/login/",
        )
    settings.OIDC_ISSUER = provider.issuer
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_RP_SCOPES = "openid email profile groups"
    settings.OIDC_GROUPS_CLAIM = GROUPS_CLAIM
    settings.OIDC_STAFF_GROUPS = [STAFF_GROUP]
    discovery.forget()
    return Sso(provider=provider, base_url=base_url)


@pytest.fixture
def sso(settings, live_server, oidc_provider, token_proxy) -> Iterator[Sso]:
    """SSO on, against the provider, its token endpoint reached through the proxy (set
    explicitly: the other endpoints come from discovery)."""
    configured = configure_sso(settings, oidc_provider, live_server.url)
    settings.OIDC_OP_TOKEN_ENDPOINT = token_proxy.url
    yield configured
    discovery.forget()


def sign_in_with_sso(page, base_url: str, person: Person) -> None:
    """From our sign-in page, through the provider's, back to us (wherever that lands)."""
    page.goto(base_url + "/accounts/login/")
    page.click("text=Sign in with SSO")
    page.wait_for_selector("#provider-login")
    page.fill("#provider-login input[name=username]", person.username)
    page.fill("#provider-login input[name=password]", person.password)
    with page.expect_navigation(url=lambda url: url.startswith(base_url)):
        page.click("#provider-login button[type=submit]")
    page.wait_for_load_state()


@pytest.fixture
def signals_seen() -> Iterator[Callable[[str], list[dict]]]:
    """What the auth and group-membership signals reported during the test (the audit log
    listens to these)."""
    from django.contrib.auth.models import User
    from django.contrib.auth.signals import user_logged_in, user_login_failed
    from django.db.models.signals import m2m_changed

    seen: dict[str, list[dict]] = {"logged_in": [], "login_failed": [], "groups": []}

    def logged_in(sender, request, user, **kwargs):
        seen["logged_in"].append({"user": user.username})

    def login_failed(sender, credentials, request=None, **kwargs):
        seen["login_failed"].append({"credentials": dict(credentials)})

    def groups_changed(sender, instance, action, pk_set, **kwargs):
        if action in {"post_add", "post_remove"} and isinstance(instance, User):
            seen["groups"].append({"user": instance.username, "action": action, "pks": pk_set})

    user_logged_in.connect(logged_in, weak=False)
    user_login_failed.connect(login_failed, weak=False)
    m2m_changed.connect(groups_changed, sender=User.groups.through, weak=False)
    yield lambda kind: seen[kind]
    user_logged_in.disconnect(logged_in)
    user_login_failed.disconnect(login_failed)
    m2m_changed.disconnect(groups_changed, sender=User.groups.through)
