"""The audited models whose changes mean more than a field diff: providers (key, active),
API tokens (created, revoked) and users (created, staff, superuser, active).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models

from audit.context import ANONYMOUS, SSO, Actor, current_actor
from audit.models import EventType
from audit.registry import Entry, ModelAudit, Values

PROVIDER_FIELDS = (
    "name",
    "kind",
    "base_url",
    "default_model",
    "is_active",
    "cache_responses",
    "prompt_caching",
    "cache_ttl_seconds",
)


class ProviderAudit(ModelAudit):
    """The key itself is never read: only whether a new one was typed (the model holds
    plaintext from `set_api_key` until the save encrypts it) or the stored one removed."""

    def __init__(self) -> None:
        super().__init__(
            EventType.PROVIDER_CHANGED,
            fields=PROVIDER_FIELDS,
            created=EventType.PROVIDER_CREATED,
            deleted=EventType.PROVIDER_DELETED,
        )

    @property
    def watched_fields(self) -> set[str]:
        return {*self.fields, "api_key"}

    def values_before(self, instance: models.Model) -> Values | None:
        before = super().values_before(instance)
        if before is not None:
            stored = type(instance)._base_manager.filter(pk=instance.pk, api_key__isnull=False)
            before["had_key"] = stored.exists()
            before["new_key_typed"] = isinstance(instance.api_key, str)  # type: ignore[attr-defined]
        return before

    def created(self, instance: models.Model) -> Iterable[Entry]:
        for event, detail in super().created(instance):
            yield event, {**detail, "has_key": instance.api_key is not None}  # type: ignore[attr-defined]

    def changed(self, instance: models.Model, before: Values) -> Iterable[Entry]:
        had_key, new_key_typed = before.pop("had_key"), before.pop("new_key_typed")
        changes = self.changes(instance, before)
        active = changes.pop("is_active", None)
        if active is not None:
            event = EventType.PROVIDER_ACTIVATED if active[1] else EventType.PROVIDER_DEACTIVATED
            yield event, {}
        if new_key_typed:
            yield EventType.PROVIDER_KEY_REPLACED, {"had_key": had_key}
        elif had_key and instance.api_key is None:  # type: ignore[attr-defined]
            yield EventType.PROVIDER_KEY_REMOVED, {}
        if changes:
            yield EventType.PROVIDER_CHANGED, {"action": "changed", "changes": changes}


class ApiTokenAudit(ModelAudit):
    def __init__(self) -> None:
        super().__init__(
            EventType.TOKEN_CREATED,
            fields=("user", "name", "requests_per_minute", "revoked_at"),
            deleted=EventType.TOKEN_REVOKED,
        )

    def created(self, instance: models.Model) -> Iterable[Entry]:
        yield EventType.TOKEN_CREATED, self.summary(instance)

    def changed(self, instance: models.Model, before: Values) -> Iterable[Entry]:
        changes = self.changes(instance, before)
        revoked = changes.pop("revoked_at", None)
        if revoked is not None and revoked[0] is None:
            yield EventType.TOKEN_REVOKED, self.summary(instance)
        if changes:
            yield EventType.TOKEN_CHANGED, {"action": "changed", "changes": changes}

    def deleted(self, instance: models.Model) -> Iterable[Entry]:
        yield EventType.TOKEN_REVOKED, {"action": "deleted", **self.summary(instance)}

    def summary(self, instance: models.Model) -> dict[str, object]:
        values = self.values_of(instance)
        return {"owner": values["user"], "rpm_limit": values["requests_per_minute"]}


class UserAudit(ModelAudit):
    def __init__(self) -> None:
        super().__init__(
            EventType.USER_PRIVILEGES_CHANGED,
            fields=("is_staff", "is_superuser", "is_active"),
            created=EventType.USER_CREATED,
            deleted=EventType.USER_DELETED,
        )

    def actor(self, instance: models.Model) -> Actor | None:
        return actor_for_user_change(instance)


def actor_for_user_change(user: Any) -> Actor:
    """Who changed a user: the signed-in user of the request, or, in a request with no
    one signed in, the user themselves through single sign-on (a sign-in is the only
    anonymous request that creates users or changes their groups and flags)."""
    actor = current_actor()
    if actor.name == ANONYMOUS:
        return Actor(user=user if user.pk is not None else None, name=SSO)
    return actor
