"""API tokens: created, revoked, and used for the first time each day, at no cost to the
other /v1 requests of the day."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from datetime import timedelta
from typing import Any

import pytest
import uvicorn
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent, EventType
from generation.api_tokens import ApiToken
from tests.audit.conftest import OFFICE, events, every_record_as_text, only
from tests.generation.gateway_helpers import *  # noqa: F403 (the fixtures)
from tests.generation.gateway_helpers import model_of, user_says


def _get(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def _as_yesterday(token: ApiToken) -> None:
    # The token's last use moved to yesterday: the next request is the day's first.
    yesterday = timezone.now() - timedelta(days=1)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=yesterday)


@pytest.mark.django_db
def test_staff_creating_and_revoking_a_token_is_recorded(
    staff_client, admin_user, django_user_model
):
    carol = django_user_model.objects.create_user("carol")
    response = staff_client.post(
        reverse("admin:generation_apitoken_add"),
        {"user": carol.pk, "name": "notebook", "requests_per_minute": "60"},
        follow=True,
        REMOTE_ADDR=OFFICE,
    )
    raw = response.content.decode().split("The new token is ")[1].split(" ")[0]
    token = ApiToken.objects.get()
    created = only(EventType.TOKEN_CREATED)
    assert (created.actor, created.user, created.ip_address) == ("admin", admin_user, OFFICE)
    assert (created.object_id, created.object_repr) == (str(token.pk), str(token))
    assert created.detail == {"owner": "carol", "rpm_limit": 60}

    staff_client.post(
        reverse("admin:generation_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    revoked = only(EventType.TOKEN_REVOKED)
    assert (revoked.actor, revoked.object_id) == ("admin", str(token.pk))
    assert raw not in every_record_as_text()
    assert token.token_hash not in every_record_as_text()


@pytest.mark.django_db
def test_a_token_issued_outside_a_request_is_recorded_as_by_the_system(django_user_model):
    ApiToken.issue(user=django_user_model.objects.create_user("dave"), name="cron")
    assert only(EventType.TOKEN_CREATED).actor == "system"


@pytest.mark.django_db
def test_authenticating_costs_no_extra_query_except_on_the_first_use_of_the_day(
    django_user_model,
):
    token, raw = ApiToken.issue(user=django_user_model.objects.create_user("erin"), name="job")
    with CaptureQueriesContext(connection) as first:
        ApiToken.authenticate(raw)
    # The token lookup, the conditional update of last_used_at, the audit insert.
    assert len(first) == 3
    with CaptureQueriesContext(connection) as again:
        ApiToken.authenticate(raw)
    assert len(again) == 1  # the lookup only, as before the audit log
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now() - timedelta(minutes=5))
    with CaptureQueriesContext(connection) as later:
        ApiToken.authenticate(raw)
    assert len(later) == 2  # the lookup and last_used_at, once a minute, as before
    assert not any("audit" in query["sql"] for query in [*again, *later])
    assert len(events(EventType.TOKEN_USED_TODAY)) == 1


@pytest.mark.django_db(transaction=True)
def test_v1_requests_record_only_the_first_use_of_each_day_per_token(
    sdk, api_token, api_user, make_provider, django_user_model
):
    provider = make_provider("openai", knobs="tokens=3")
    start = AuditEvent.objects.count()
    for _ in range(3):
        sdk.chat.completions.create(model=model_of(provider), messages=user_says())
    sdk.models.list()
    token, _ = api_token
    used = only(EventType.TOKEN_USED_TODAY)
    assert (used.user, used.actor, used.object_id) == (api_user, "gateway-user", str(token.pk))
    assert used.ip_address == "127.0.0.1"
    assert AuditEvent.objects.count() == start + 1  # nothing else for four requests

    _as_yesterday(token)
    sdk.models.list()
    sdk.models.list()
    assert len(events(EventType.TOKEN_USED_TODAY)) == 2

    # Another token of the same user has a first use of its own.
    other, raw = ApiToken.issue(user=api_user, name="second")
    sdk.with_options(api_key=raw).models.list()
    assert events(EventType.TOKEN_USED_TODAY)[-1].object_id == str(other.pk)


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_requests_of_the_day_record_one_use(gateway_url, api_token):
    headers = {"Authorization": f"Bearer {api_token[1]}"}

    def call() -> None:
        _get(f"{gateway_url}/v1/models", headers)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(events(EventType.TOKEN_USED_TODAY)) == 1


def _serve(**options: Any):
    """The ASGI app under uvicorn run with `options` (proxy headers as configured)."""
    from config.asgi import application

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(application, **{**options, "lifespan": "off", "log_level": "warning"})
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    return server, thread, f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("trusted", "recorded"),
    [
        ("127.0.0.1", "203.0.113.7"),  # nginx on the same host: its header is the client
        ("192.0.2.1", "127.0.0.1"),  # the header comes from an untrusted peer: ignored
    ],
)
def test_the_address_is_the_forwarded_one_only_from_a_trusted_proxy(
    api_token, trusted, recorded, settings
):
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "RETRY_MAX_ATTEMPTS": 1}
    # As the shipped units run it: proxy headers on.
    server, thread, url = _serve(proxy_headers=True, forwarded_allow_ips=trusted)
    try:
        headers = {"Authorization": f"Bearer {api_token[1]}", "X-Forwarded-For": OFFICE}
        assert _get(f"{url}/v1/models", headers) == 200
    finally:
        server.should_exit = True
        thread.join(timeout=5)
    assert only(EventType.TOKEN_USED_TODAY).ip_address == recorded


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("configured", "recorded"),
    [
        ("", "127.0.0.1"),  # no proxy in front: a local client's header is not believed
        ("127.0.0.1", "203.0.113.7"),  # nginx on the same host, named as the proxy
    ],
)
def test_manage_py_serve_believes_a_forwarded_address_only_from_a_configured_proxy(
    api_token, configured, recorded, settings
):
    from providers.management.commands.serve import uvicorn_options

    settings.FORWARDED_ALLOW_IPS = configured
    server, thread, url = _serve(**uvicorn_options())
    try:
        headers = {"Authorization": f"Bearer {api_token[1]}", "X-Forwarded-For": OFFICE}
        assert _get(f"{url}/v1/models", headers) == 200
    finally:
        server.should_exit = True
        thread.join(timeout=5)
    assert only(EventType.TOKEN_USED_TODAY).ip_address == recorded
