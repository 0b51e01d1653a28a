"""The audit log: one append-only row per security-relevant event.

Who (the acting user, or none, with a readable actor name kept as it was), when, from
where (the client address), what (an event type and a short JSON detail) and the object
concerned (its model label, id and readable name). Rows are only ever inserted: saving an
existing row, deleting one, and the queryset's bulk update and delete all raise. The
actor is a plain id, not a database foreign key that deleting a user would null or
cascade: the row stays as it was written, and `actor` keeps the name.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone


class AppendOnlyError(Exception):
    """Raised on any attempt to change or delete an audit row."""


class EventType(models.TextChoices):
    LOGIN_SUCCEEDED = "login_succeeded", "Sign-in"
    LOGIN_FAILED = "login_failed", "Sign-in failed"
    LOGIN_LOCKED_OUT = "login_locked_out", "Sign-in locked out"
    LOGOUT = "logout", "Sign-out"
    USER_CREATED = "user_created", "User created"
    USER_DELETED = "user_deleted", "User deleted"
    USER_PRIVILEGES_CHANGED = "user_privileges_changed", "User staff/superuser/active changed"
    USER_GROUPS_CHANGED = "user_groups_changed", "User groups changed"
    GROUP_CHANGED = "group_changed", "Group created, renamed or deleted"
    TOKEN_CREATED = "token_created", "API token created"
    TOKEN_REVOKED = "token_revoked", "API token revoked"
    TOKEN_CHANGED = "token_changed", "API token changed"
    TOKEN_USED_TODAY = "token_used_today", "API token first used today"
    PROVIDER_CREATED = "provider_created", "Provider created"
    PROVIDER_CHANGED = "provider_changed", "Provider settings changed"
    PROVIDER_KEY_REPLACED = "provider_key_replaced", "Provider key replaced"
    PROVIDER_KEY_REMOVED = "provider_key_removed", "Provider key removed"
    PROVIDER_ACTIVATED = "provider_activated", "Provider activated"
    PROVIDER_DEACTIVATED = "provider_deactivated", "Provider deactivated"
    PROVIDER_DELETED = "provider_deleted", "Provider deleted"
    BUDGET_CHANGED = "budget_changed", "Budget changed"
    PRICE_CHANGED = "price_changed", "Price changed"
    ALIAS_CHANGED = "alias_changed", "Alias changed"


def _refuse(*args: Any, **kwargs: Any) -> NoReturn:
    raise AppendOnlyError("The audit log is append-only: rows cannot be changed or deleted.")


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        _refuse()

    def delete(self) -> tuple[int, dict[str, int]]:
        _refuse()

    def bulk_update(self, *args: Any, **kwargs: Any) -> int:
        _refuse()

    def update_or_create(self, *args: Any, **kwargs: Any) -> tuple[AuditEvent, bool]:
        _refuse()


class AuditEvent(models.Model):
    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    event = models.CharField(max_length=32, choices=EventType.choices, db_index=True)
    # The acting user's id. No database constraint and no on-delete action: deleting the
    # user must not rewrite (null) or delete their audit trail.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    # Who acted, in words, as it was at the time: a username, "sso" (a sign-in changed
    # the user), "anonymous" (a request with no one signed in) or "system" (no request:
    # a command, a task, a shell).
    actor = models.CharField(max_length=150, db_index=True)
    ip_address = models.GenericIPAddressField("IP address", null=True, blank=True)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField("object", max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        # View only: nobody can be given add, change or delete, superusers included.
        default_permissions = ("view",)
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.get_event_display()} by {self.actor}"

    def save(self, **kwargs: Any) -> None:
        if not self._state.adding:
            _refuse()
        super().save(**{**kwargs, "force_insert": True})

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        _refuse()
