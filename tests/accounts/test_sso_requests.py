"""Single sign-on through Django's test client against the real provider: what the browser
tests do not show (lockouts, a provider that is down)."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.urls import reverse

from accounts import discovery
from providers.crypto import generate_key_entry
from tests.accounts.conftest import configure_sso
from tests.deploy.harness import ROOT, free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def sso(settings, oidc_provider):
    configured = configure_sso(settings, oidc_provider, "http://testserver")
    yield configured
    discovery.forget()


def _start(client) -> str:
    """Begin a sign-in; the state our redirect to the provider carries."""
    response = client.get(reverse("oidc_authentication_init"))
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.geturl().startswith(discovery.endpoint("OIDC_OP_AUTHORIZATION_ENDPOINT"))
    return parse_qs(location.query)["state"][0]


def test_the_sign_in_page_offers_sso_when_configured(client, sso):
    page = client.get(reverse("login") + "?next=/usage/").content.decode()
    assert "Sign in with SSO" in page
    assert f'href="{reverse("oidc_authentication_init")}?next=/usage/"' in page


def test_failed_sso_callbacks_lock_nobody_out(client, sso, settings, django_user_model):
    # Callbacks with a code the provider refuses, more than the lockout limit: axes has
    # no username to count them by and must not lock the address (the whole office).
    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        state = _start(client)
        response = client.get(
            reverse("oidc_authentication_callback"), {"code": "forged", "state": state}
        )
        assert response.status_code == 302
        assert response["Location"] == reverse("login")
    page = client.get(reverse("login")).content.decode()
    assert "Single sign-on failed: the identity provider did not accept the sign-in." in page
    assert not AccessAttempt.objects.exists()
    assert not User.objects.exists()

    # Password sign-in from the same address is unaffected, and still throttled.
    django_user_model.objects.create_user("alice", password="pw-alice-123")
    assert (
        client.post(reverse("login"), {"username": "alice", "password": "pw-alice-123"}).status_code
        == 302
    )
    client.post(reverse("logout"))
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    locked = client.post(reverse("login"), {"username": "alice", "password": "pw-alice-123"})
    assert locked.status_code == 429


def test_a_callback_without_our_state_signs_nobody_in(client, sso):
    _start(client)
    response = client.get(
        reverse("oidc_authentication_callback"), {"code": "forged", "state": "not-ours"}
    )
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session


def test_a_provider_that_is_down_fails_the_sign_in_with_a_message(client, settings):
    settings.OIDC_ISSUER = f"http://127.0.0.1:{free_port()}/o"  # nothing listens there
    settings.OIDC_RP_CLIENT_ID = "switchboard"
    discovery.forget()
    response = client.get(reverse("oidc_authentication_init"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("login")
    assert "the identity provider could not be reached" in response.content.decode()
    # Nothing else depends on it: password sign-in and the rest of the site work.
    assert client.get(reverse("healthz")).status_code == 200


def test_discovery_must_name_the_configured_issuer(client, settings, oidc_provider):
    # A document for another issuer (here the same provider under another name) would let
    # its tokens be checked against the wrong issuer.
    settings.OIDC_ISSUER = oidc_provider.issuer.replace("127.0.0.1", "localhost")
    settings.OIDC_RP_CLIENT_ID = "switchboard"
    discovery.forget()
    with pytest.raises(discovery.DiscoveryError, match="is not"):
        discovery.endpoint("OIDC_OP_TOKEN_ENDPOINT")
    discovery.forget()


def test_production_settings_with_sso_pass_check_deploy(tmp_path):
    unset = {"DEBUG", "HTTPS", "DJANGO_ALLOW_ASYNC_UNSAFE", "DATABASE_URL", "REDIS_URL"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATA_DIR=str(tmp_path),
        SECRET_KEY="prod-" + "x7Qz9!kL2#mN4$pR6^tV8&wY0*aB3(cD5)eF" * 2,
        ALLOWED_HOSTS="switchboard.example.com",
        ENCRYPTION_KEYS=generate_key_entry(),
        OIDC_ISSUER="https://idp.example.com/realms/team",
        OIDC_CLIENT_ID="switchboard",
        OIDC_CLIENT_SECRET="client-secret-0123456789",
        OIDC_STAFF_GROUPS="switchboard-admins",
        PASSWORD_SIGN_IN="superusers",
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # No network either: discovery waits for the first SSO sign-in.
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout
