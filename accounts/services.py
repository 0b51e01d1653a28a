"""Creating and updating users from their identity provider's claims."""

from __future__ import annotations

import logging
import re
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.db import transaction

from accounts.models import ManagedGroup, SsoIdentity

logger = logging.getLogger(__name__)

GROUP_NAME_MAX = 150
USERNAME_MAX = 150
# What Django's username validator accepts; anything else in a claim becomes "-".
NOT_USERNAME = re.compile(r"[^\w.@+-]+")


def claimed_groups(claims: dict[str, Any]) -> list[str]:
    """The group names the configured claim carries: a list of names, or one name."""
    value = claims.get(settings.OIDC_GROUPS_CLAIM)
    if value is None:
        return []
    names = [value] if isinstance(value, str) else value
    kept = sorted({name.strip() for name in names if name.strip()})
    too_long = [name for name in kept if len(name) > GROUP_NAME_MAX]
    if too_long:
        logger.warning("SSO: ignoring %d group names longer than %d", len(too_long), GROUP_NAME_MAX)
    return [name for name in kept if len(name) <= GROUP_NAME_MAX]


def groups_claim_is_valid(claims: dict[str, Any]) -> bool:
    value = claims.get(settings.OIDC_GROUPS_CLAIM)
    if value is None or isinstance(value, str):
        return True
    return isinstance(value, list) and all(isinstance(name, str) for name in value)


def _free_username(claims: dict[str, Any]) -> str:
    wanted = (
        claims.get(settings.OIDC_USERNAME_CLAIM) or claims.get("email") or claims.get("sub") or ""
    )
    base = NOT_USERNAME.sub("-", str(wanted)).strip("-")[: USERNAME_MAX - 4] or "sso-user"
    users = get_user_model().objects
    candidate, number = base, 1
    # Never an existing account: a provider account called "admin" is not the admin.
    while users.filter(username__iexact=candidate).exists():
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def find_user(*, issuer: str, claims: dict[str, Any]) -> User | None:
    identity = (
        SsoIdentity.objects.select_related("user")
        .filter(issuer=issuer, subject=str(claims["sub"]))
        .first()
    )
    return identity.user if identity else None


@transaction.atomic
def create_user(*, issuer: str, claims: dict[str, Any]) -> User:
    """A new account for a first sign-in: no usable password, linked to (issuer, sub)."""
    user: User = get_user_model().objects.create_user(_free_username(claims))
    SsoIdentity.objects.create(user=user, issuer=issuer, subject=str(claims["sub"]))
    logger.info("SSO: created user %s", user.username)
    return update_user(user=user, claims=claims)


@transaction.atomic
def update_user(*, user: User, claims: dict[str, Any]) -> User:
    """Bring profile, groups and staff status in line with the claims of this sign-in."""
    sync_groups(user=user, names=claimed_groups(claims))
    names = set(claimed_groups(claims))
    fields: dict[str, str | bool] = {
        "email": str(claims.get("email") or user.email)[:254],
        "first_name": str(claims.get("given_name") or user.first_name)[:150],
        "last_name": str(claims.get("family_name") or user.last_name)[:150],
    }
    # Staff and superuser status follow the claim only where groups are configured for
    # them; otherwise they stay as set by hand.
    if settings.OIDC_STAFF_GROUPS or settings.OIDC_SUPERUSER_GROUPS:
        superuser = bool(names & set(settings.OIDC_SUPERUSER_GROUPS))
        fields["is_staff"] = superuser or bool(names & set(settings.OIDC_STAFF_GROUPS))
    if settings.OIDC_SUPERUSER_GROUPS:
        fields["is_superuser"] = bool(names & set(settings.OIDC_SUPERUSER_GROUPS))
    changed = [name for name, value in fields.items() if getattr(user, name) != value]
    for name in changed:
        setattr(user, name, fields[name])
    if changed:
        user.save(update_fields=changed)
    return user


def sync_groups(*, user: User, names: list[str]) -> None:
    """Membership of SSO-managed groups becomes exactly `names`; other groups are kept.

    Through `groups.add` / `groups.remove`, so `m2m_changed` reports each change.
    """
    wanted = {Group.objects.get_or_create(name=name)[0] for name in names}
    ManagedGroup.objects.bulk_create(
        [ManagedGroup(group=group) for group in wanted], ignore_conflicts=True
    )
    current = set(user.groups.all())
    to_remove = set(user.groups.filter(sso_managed__isnull=False)) - wanted
    to_add = wanted - current
    if to_remove:
        user.groups.remove(*to_remove)
    if to_add:
        user.groups.add(*to_add)
