"""Writing audit records: `record_event` is the one way rows are made."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.db import models

from audit.context import Actor, client_ip, current_actor, current_request
from audit.models import AuditEvent, EventType

if TYPE_CHECKING:
    from django.contrib.auth.models import User

MAX_TEXT = 200  # a detail value or a readable name longer than this is cut


def short(value: object) -> Any:
    """A JSON-safe, short form of a value for the detail."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Decimal):
        # "10" whether the database gave back 10.000 or 10.000000.
        return format(value.normalize(), "f")
    if isinstance(value, UUID | date | datetime):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): short(item) for key, item in list(value.items())[:30]}
    if isinstance(value, list | tuple):
        return [short(item) for item in value[:20]]
    return str(value)[:MAX_TEXT]


def record_event(
    event: EventType,
    *,
    obj: models.Model | None = None,
    detail: Mapping[str, object] | None = None,
    actor: Actor | None = None,
    ip_address: str | None = None,
) -> AuditEvent:
    """Append one record. The actor and address default to the current request's
    (`audit.context`); pass them when the event knows better (a sign-in's user, the
    address django-axes counted). Never pass a secret or prompt text in `detail`."""
    actor = actor or current_actor()
    request = current_request()
    return AuditEvent.objects.create(
        event=event,
        user=actor.user,
        actor=actor.name[:150],
        ip_address=ip_address or client_ip(request),
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None and obj.pk is not None else "",
        object_repr=str(obj)[:MAX_TEXT] if obj is not None else "",
        detail={key: short(value) for key, value in (detail or {}).items()},
    )


def user_actor(user: User) -> Actor:
    return Actor(user=user, name=user.get_username())
