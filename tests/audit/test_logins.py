"""Sign-ins, failures, lockouts (django-axes) and sign-outs, with who and from where."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import EventType
from tests.audit.conftest import ELSEWHERE, OFFICE, events, every_record_as_text, only

pytestmark = pytest.mark.django_db

PASSWORD = "pw-alice-123"


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password=PASSWORD)


def _sign_in(client, username, password, *, url=None, **extra):
    data = {"username": username, "password": password}
    return client.post(url or reverse("login"), data, **extra)


def test_a_sign_in_is_recorded_with_the_user_and_the_client_address(client, alice):
    _sign_in(client, "alice", PASSWORD, REMOTE_ADDR=OFFICE)
    record = only(EventType.LOGIN_SUCCEEDED)
    assert (record.user, record.actor, record.ip_address) == (alice, "alice", OFFICE)
    assert (record.object_type, record.object_id) == ("auth.user", str(alice.pk))
    assert record.detail["backend"].endswith("ModelBackend")


def test_a_client_sent_forwarded_for_header_is_not_taken_as_its_address(client, alice):
    # Without a proxy in front, X-Forwarded-For is whatever the client wrote. The address
    # is REMOTE_ADDR, which uvicorn sets from the header only for a trusted proxy
    # (tests/audit/test_tokens.py runs that path under uvicorn).
    _sign_in(client, "alice", PASSWORD, REMOTE_ADDR=OFFICE, HTTP_X_FORWARDED_FOR="192.0.2.66")
    assert only(EventType.LOGIN_SUCCEEDED).ip_address == OFFICE


def test_a_failed_sign_in_names_the_attempted_username_never_the_password(client, alice):
    _sign_in(client, "alice", "wrong-secret-pw", REMOTE_ADDR=OFFICE)
    _sign_in(client, "nobody-here", "another-wrong-pw", REMOTE_ADDR=ELSEWHERE)
    first, second = events(EventType.LOGIN_FAILED)
    assert (first.detail, first.user, first.actor, first.ip_address) == (
        {"username": "alice"},
        None,
        "anonymous",
        OFFICE,
    )
    assert first.object_id == str(alice.pk)  # the account concerned
    assert (second.detail, second.object_id, second.ip_address) == (
        {"username": "nobody-here"},
        "",
        ELSEWHERE,
    )
    text = every_record_as_text()
    assert "wrong-secret-pw" not in text
    assert "another-wrong-pw" not in text
    assert events(EventType.LOGIN_SUCCEEDED) == []


def test_the_lockout_is_recorded_once_the_limit_is_reached(client, alice, settings):
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        _sign_in(client, "alice", "not-the-password", REMOTE_ADDR=OFFICE)
    assert events(EventType.LOGIN_LOCKED_OUT) == []
    response = _sign_in(client, "alice", "not-the-password", REMOTE_ADDR=OFFICE)
    assert response.status_code == 429
    lockout = only(EventType.LOGIN_LOCKED_OUT)
    assert (lockout.detail, lockout.ip_address, lockout.object_id) == (
        {"username": "alice"},
        OFFICE,
        str(alice.pk),
    )
    assert len(events(EventType.LOGIN_FAILED)) == limit

    # A further try while locked, even with the right password, is refused and recorded.
    assert _sign_in(client, "alice", PASSWORD, REMOTE_ADDR=OFFICE).status_code == 429
    assert len(events(EventType.LOGIN_LOCKED_OUT)) == 2
    assert events(EventType.LOGIN_SUCCEEDED) == []


def test_the_admin_sign_in_page_is_audited_too(client, admin_user):
    _sign_in(client, "admin", "wrong", url=reverse("admin:login"), REMOTE_ADDR=ELSEWHERE)
    assert only(EventType.LOGIN_FAILED).detail == {"username": "admin"}


def test_a_sign_out_is_recorded(client, alice):
    _sign_in(client, "alice", PASSWORD, REMOTE_ADDR=OFFICE)
    client.post(reverse("logout"), REMOTE_ADDR=ELSEWHERE)
    record = only(EventType.LOGOUT)
    assert (record.actor, record.ip_address) == ("alice", ELSEWHERE)


@pytest.mark.parametrize(
    ("remote_addr", "recorded"),
    # No address at all: uvicorn on a unix socket gives Django none.
    [("2001:db8::7", "2001:db8::7"), ("fe80::1%eth0", "fe80::1"), ("", None)],
)
def test_the_address_is_stored_as_an_address_or_not_at_all(client, alice, remote_addr, recorded):
    _sign_in(client, "alice", PASSWORD, REMOTE_ADDR=remote_addr)
    assert only(EventType.LOGIN_SUCCEEDED).ip_address == recorded
