"""Group membership and staff/superuser/active changes of users, whoever makes them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse

from audit.context import AuditContextMiddleware, acting_as
from audit.models import EventType
from tests.audit.conftest import OFFICE, events, only

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="pw-bob-45678")


@pytest.fixture
def teams():
    return [Group.objects.create(name=name) for name in ("Engineering", "Finance", "Support")]


def _user_form(user, **changes):
    data = {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_staff_changing_groups_and_flags_in_the_admin_is_recorded(
    staff_client, admin_user, bob, teams
):
    engineering, finance, _ = teams
    url = reverse("admin:auth_user_change", args=[bob.pk])
    form = _user_form(bob, groups=[engineering.pk, finance.pk], is_staff="on")
    response = staff_client.post(url, form, REMOTE_ADDR=OFFICE)
    assert response.status_code == 302, response.content

    groups = only(EventType.USER_GROUPS_CHANGED)
    assert groups.detail == {"added": ["Engineering", "Finance"]}
    assert (groups.actor, groups.user, groups.ip_address) == ("admin", admin_user, OFFICE)
    assert (groups.object_id, groups.object_repr) == (str(bob.pk), "bob")
    flags = only(EventType.USER_PRIVILEGES_CHANGED)
    assert flags.detail == {"action": "changed", "changes": {"is_staff": [False, True]}}
    assert flags.actor == "admin"

    staff_client.post(url, _user_form(bob, groups=[finance.pk], is_superuser="on"))
    removed = events(EventType.USER_GROUPS_CHANGED)[-1]
    assert removed.detail == {"removed": ["Engineering"]}
    changes = events(EventType.USER_PRIVILEGES_CHANGED)[-1].detail["changes"]
    assert changes == {"is_staff": [True, False], "is_superuser": [False, True]}


def test_a_sign_in_that_sets_groups_names_sso_and_the_user_as_the_actor(bob, teams):
    # What single sign-on does on its callback: a request with no one signed in yet,
    # whose authentication syncs the user's groups from the ID token's claim.
    def callback(request):
        bob.groups.set(teams[:2])
        bob.is_staff = True
        bob.save()
        bob.groups.set(teams[1:])  # a changed claim at the next sign-in
        return HttpResponse()

    request = RequestFactory().get("/oidc/callback/", REMOTE_ADDR=OFFICE)

    request.user = AnonymousUser()
    AuditContextMiddleware(callback)(request)

    added, removed, added_again = events(EventType.USER_GROUPS_CHANGED)
    assert added.detail == {"added": ["Engineering", "Finance"]}
    assert removed.detail == {"removed": ["Engineering"]}
    assert added_again.detail == {"added": ["Support"]}
    for record in (added, removed, added_again, only(EventType.USER_PRIVILEGES_CHANGED)):
        assert (record.actor, record.user, record.ip_address) == ("sso", bob, OFFICE)


def test_changes_from_the_group_side_and_by_clearing_are_recorded_per_user(
    django_user_model, bob, teams
):
    carol = django_user_model.objects.create_user("carol")
    support = teams[2]
    support.user_set.add(bob, carol)
    assert {(e.object_repr, str(e.detail)) for e in events(EventType.USER_GROUPS_CHANGED)} == {
        ("bob", "{'added': ['Support']}"),
        ("carol", "{'added': ['Support']}"),
    }
    bob.groups.add(teams[0])
    bob.groups.clear()
    assert events(EventType.USER_GROUPS_CHANGED)[-1].detail == {
        "removed": ["Engineering", "Support"]
    }
    # Removing a group the user is not in changes nothing and records nothing.
    count = len(events())
    carol.groups.remove(teams[0])
    assert len(events()) == count
    # Outside any request (a shell, a command) the actor is the system.
    assert {e.actor for e in events(EventType.USER_GROUPS_CHANGED)} == {"system"}


def test_a_named_actor_is_used_outside_requests(bob, teams):
    with acting_as("sync_groups command"):
        bob.groups.add(teams[0])
    assert only(EventType.USER_GROUPS_CHANGED).actor == "sync_groups command"


def test_a_new_user_is_recorded_and_a_sign_in_saves_nothing_audited(client, bob):
    created = only(EventType.USER_CREATED)
    assert created.object_repr == "bob"
    assert created.detail["changes"]["is_staff"] == [None, False]
    client.post(reverse("login"), {"username": "bob", "password": "pw-bob-45678"})
    # The sign-in saves last_login: not a privilege change.
    assert events(EventType.USER_PRIVILEGES_CHANGED) == []


def test_deleting_a_group_is_recorded_with_its_name(staff_client, teams, bob):
    # Its memberships go with it, and Django sends no m2m_changed for them.
    bob.groups.add(teams[0])
    url = reverse("admin:auth_group_delete", args=[teams[0].pk])
    assert staff_client.post(url, {"post": "yes"}, REMOTE_ADDR=OFFICE).status_code == 302
    record = events(EventType.GROUP_CHANGED)[-1]
    assert (record.actor, record.ip_address, record.object_repr) == ("admin", OFFICE, "Engineering")
    assert record.detail == {"action": "deleted", "changes": {"name": ["Engineering", None]}}
