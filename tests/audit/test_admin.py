"""Staff read and filter the audit log in the admin; nobody adds, changes or deletes."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from audit.context import acting_as
from audit.models import AuditEvent, EventType
from audit.services import record_event
from tests.audit.conftest import ELSEWHERE, OFFICE

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:audit_auditevent_changelist")


@pytest.fixture
def log(client, django_user_model):
    """Three sign-ins (two from the office), a failure and a price change."""
    django_user_model.objects.create_user("alice", password="pw-alice-123")
    django_user_model.objects.create_user("bob", password="pw-bob-45678")
    for username, password, ip in (
        ("alice", "pw-alice-123", OFFICE),
        ("bob", "pw-bob-45678", OFFICE),
        ("alice", "pw-alice-123", ELSEWHERE),
        ("mallory", "guess", ELSEWHERE),
    ):
        client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip)
    with acting_as("seed_prices"):
        record_event(EventType.PRICE_CHANGED, detail={"action": "created"})


def _rows(client, **query) -> list[str]:
    response = client.get(LIST_URL, query)
    assert response.status_code == 200
    if 'id="result_list"' not in response.text:
        return []  # "0 audit events"
    table = response.text.split('id="result_list"')[1].split("</table>")[0]
    return [row.split("</tr>")[0] for row in table.split("<tr")[2:]]


def test_staff_filter_by_event_actor_address_and_date_and_search(admin_client, log):
    # admin_client's own sign-in is the fourth.
    assert len(_rows(admin_client, event="login_succeeded")) == 4
    assert len(_rows(admin_client, event="login_succeeded", actor="alice")) == 2
    by_address = _rows(admin_client, ip_address=ELSEWHERE)
    assert len(by_address) == 2
    assert all(ELSEWHERE in row for row in by_address)
    assert len(_rows(admin_client, q="mallory")) == 1  # the attempted username, in the detail
    assert len(_rows(admin_client, q=OFFICE)) == 2
    now = timezone.localtime()
    today = {
        "created_at__year": now.year,
        "created_at__month": now.month,
        "created_at__day": now.day,
    }
    assert len(_rows(admin_client, **today)) == AuditEvent.objects.count()
    assert _rows(admin_client, created_at__year=now.year - 1) == []
    page = admin_client.get(LIST_URL).text
    for choice in ("Sign-in failed", "Price changed", "IP address", "seed_prices"):
        assert choice in page


def test_no_one_adds_changes_or_deletes_superusers_included(admin_client, log):
    record = AuditEvent.objects.filter(event="login_failed").get()
    written = (record.actor, record.event, record.detail)
    assert admin_client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    change_url = reverse("admin:audit_auditevent_change", args=[record.pk])
    page = admin_client.get(change_url)
    assert page.status_code == 200  # shown read-only
    assert 'name="_save"' not in page.text
    admin_client.post(change_url, {"actor": "someone else", "event": "logout"})
    delete_url = reverse("admin:audit_auditevent_delete", args=[record.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    bulk = {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"}
    admin_client.post(LIST_URL, bulk)
    record = AuditEvent.objects.get(pk=record.pk)
    assert (record.actor, record.event, record.detail) == written
    assert not Permission.objects.filter(
        content_type__app_label="audit", codename__regex=r"^(add|change|delete)_"
    ).exists()


def test_staff_need_the_view_permission_and_others_cannot_reach_it(client, django_user_model, log):
    staff = django_user_model.objects.create_user(
        "reviewer", password="pw-rev-98765", is_staff=True
    )
    client.force_login(staff)
    assert client.get(LIST_URL).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    assert client.get(LIST_URL).status_code == 200

    member = django_user_model.objects.create_user("member", password="pw-mem-98765")
    client.force_login(member)
    assert client.get(LIST_URL).status_code == 302  # to the admin's sign-in page
