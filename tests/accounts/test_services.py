"""Accounts made and kept in line from claims (accounts/services.py)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from accounts import services
from accounts.models import ManagedGroup

pytestmark = pytest.mark.django_db

ISSUER = "https://idp.example.com"


@pytest.fixture(autouse=True)
def _claims_settings(settings):
    settings.OIDC_GROUPS_CLAIM = "groups"
    settings.OIDC_USERNAME_CLAIM = "preferred_username"
    settings.OIDC_STAFF_GROUPS = ["admins"]
    settings.OIDC_SUPERUSER_GROUPS = []


def _claims(sub: str, username: str, groups: tuple[str, ...] | list[str] = ()) -> dict:
    return {"sub": sub, "preferred_username": username, "groups": list(groups)}


def test_a_provider_account_named_like_a_local_one_gets_an_account_of_its_own(admin_user):
    # An account "admin" at the provider is not our bootstrap admin.
    user = services.create_user(issuer=ISSUER, claims=_claims("42", "admin"))
    assert user.pk != admin_user.pk
    assert user.username == "admin-2"
    assert not user.is_superuser
    assert services.find_user(issuer=ISSUER, claims={"sub": "42"}) == user
    assert services.find_user(issuer="https://other.example.com", claims={"sub": "42"}) is None


def test_groups_named_by_no_claim_are_left_alone():
    hand_made = Group.objects.create(name="budget-managers")
    user = services.create_user(issuer=ISSUER, claims=_claims("1", "carol", ["eng"]))
    user.groups.add(hand_made)
    services.update_user(user=user, claims=_claims("1", "carol", []))
    assert set(user.groups.values_list("name", flat=True)) == {"budget-managers"}
    assert set(ManagedGroup.objects.values_list("group__name", flat=True)) == {"eng"}


def test_a_hand_made_group_that_a_claim_names_follows_the_claim_from_then_on():
    eng = Group.objects.create(name="eng")
    dave = User.objects.create_user("dave")
    dave.groups.add(eng)  # given by hand
    carol = services.create_user(issuer=ISSUER, claims=_claims("1", "carol", ["eng"]))
    assert ManagedGroup.objects.filter(group=eng).exists()
    # dave's account, linked to the provider by staff, signs in without "eng" in his claim.
    services.update_user(user=dave, claims=_claims("2", "dave", []))
    assert not dave.groups.filter(name="eng").exists()
    assert carol.groups.filter(name="eng").exists()


def test_staff_status_is_left_to_the_admin_when_no_staff_groups_are_configured(settings):
    settings.OIDC_STAFF_GROUPS = []
    user = services.create_user(issuer=ISSUER, claims=_claims("1", "erin", ["admins"]))
    assert not user.is_staff
    user.is_staff = True  # made staff by hand
    user.save()
    services.update_user(user=user, claims=_claims("1", "erin", []))
    user.refresh_from_db()
    assert user.is_staff


def test_superuser_groups_grant_superuser_and_staff(settings):
    settings.OIDC_SUPERUSER_GROUPS = ["root"]
    user = services.create_user(issuer=ISSUER, claims=_claims("1", "frank", ["root"]))
    assert user.is_superuser
    assert user.is_staff
    services.update_user(user=user, claims=_claims("1", "frank", ["eng"]))
    user.refresh_from_db()
    assert not user.is_superuser
    assert not user.is_staff


@pytest.mark.parametrize(
    ("value", "valid", "names"),
    [
        (["b", "a", "a", " "], True, ["a", "b"]),
        ("solo", True, ["solo"]),
        (None, True, []),
        ([1, 2], False, None),
        ({"a": 1}, False, None),
    ],
)
def test_the_groups_claim_takes_a_list_of_names_or_one_name(value, valid, names):
    claims = {"sub": "1", "groups": value}
    assert services.groups_claim_is_valid(claims) is valid
    if valid:
        assert services.claimed_groups(claims) == names


def test_deactivating_an_sso_account_signs_it_out(client, settings):
    settings.OIDC_ISSUER, settings.OIDC_RP_CLIENT_ID = ISSUER, "switchboard"
    user = services.create_user(issuer=ISSUER, claims=_claims("1", "gina"))
    client.force_login(user, backend="accounts.backends.SsoBackend")
    assert client.get("/").status_code == 200
    user.is_active = False
    user.save()
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
