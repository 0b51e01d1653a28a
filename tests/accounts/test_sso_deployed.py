"""Single sign-on under the production settings: a uvicorn web process started as the
deployment starts it (DEBUG off, cached sessions, every middleware in async mode),
signing in through the real provider in headless Chromium."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.accounts.conftest import (
    CALLBACK_PATH,
    CLIENT_ID,
    CLIENT_SECRET,
    STAFF_GROUP,
    Sso,
    sign_in_with_sso,
)
from tests.deploy import harness
from tests.oidc_provider import GROUPS_CLAIM

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, oidc_provider) -> Iterator[Sso]:
    data_dir = tmp_path_factory.mktemp("sso-deployed")
    port = harness.free_port()
    base_url = f"http://127.0.0.1:{port}"
    oidc_provider.register_client(CLIENT_ID, CLIENT_SECRET, redirect_uri=base_url + CALLBACK_PATH)
    env = harness.app_env(
        data_dir,
        database_url=f"sqlite:///{data_dir / 'switchboard.sqlite3'}",
        embedded=False,
        OIDC_ISSUER=oidc_provider.issuer,
        OIDC_CLIENT_ID=CLIENT_ID,
        OIDC_CLIENT_SECRET=CLIENT_SECRET,
        OIDC_SCOPES="openid email profile groups",
        OIDC_GROUPS_CLAIM=GROUPS_CLAIM,
        OIDC_STAFF_GROUPS=STAFF_GROUP,
        PASSWORD_SIGN_IN="superusers",
        DJANGO_SETTINGS_MODULE="tests.accounts.deployed_settings",
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
        cwd=harness.ROOT,
        env=env,
        check=True,
        timeout=180,
    )
    processes = harness.Processes(data_dir)
    try:
        processes.web("web", port, env)
        processes.wait_for_port(port, timeout=60)
        yield Sso(provider=oidc_provider, base_url=base_url)
    finally:
        processes.stop_all()


def test_sso_sign_in_and_out_under_production_settings(deployed, open_page):
    grace = deployed.person("grace", ["research", STAFF_GROUP])
    page = open_page(deployed.base_url)
    sign_in_with_sso(page, deployed.base_url, grace)
    page.wait_for_selector(".chat__header")
    page.goto(deployed.base_url + "/admin/")  # staff through the groups claim
    assert page.locator("#site-name").is_visible()

    page.goto(deployed.base_url + "/")
    with page.expect_navigation():
        page.click("text=Sign out")
    page.goto(deployed.base_url + "/")
    assert page.url.startswith(deployed.base_url + "/accounts/login/")
    assert "Administrators only" in page.locator(".auth__or").inner_text()
