"""Personal API tokens: for scripts calling /api/generate and the /v1 gateway.

A token is shown once when created; only its SHA-256 is stored (tokens are 256 random
bits, so a fast hash is the right tool), with a short prefix to tell tokens apart.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils import timezone

from audit.models import EventType
from audit.services import record_event, user_actor

if TYPE_CHECKING:
    from django.contrib.auth.models import User

TOKEN_PREFIX = "sb_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_raw_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def usable(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True, user__is_active=True)


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'nightly job'.")
    prefix = models.CharField(max_length=16, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    requests_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Blank: no limit."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def set_raw_token(self, raw: str) -> None:
        self.prefix, self.token_hash = raw[:10], hash_token(raw)

    @classmethod
    def issue(cls, *, user: User, name: str, **fields: object) -> tuple[ApiToken, str]:
        """Create a token; returns it with the raw value, which is never stored."""
        raw = new_raw_token()
        token = cls.objects.create(
            user=user, name=name, prefix=raw[:10], token_hash=hash_token(raw), **fields
        )
        return token, raw

    @classmethod
    def authenticate(cls, raw: str) -> ApiToken | None:
        token = cls.objects.usable().select_related("user").filter(token_hash=hash_token(raw))
        try:
            found = token.get()  # get(), not first(): no ORDER BY (-created_at) to compile
        except cls.DoesNotExist:
            found = None
        now = timezone.now()
        # "Last used" to the minute is enough, and saves a write on most requests.
        if found is not None and (
            found.last_used_at is None or now - found.last_used_at > LAST_USED_RESOLUTION
        ):
            found.mark_used(now)
        return found

    def mark_used(self, now: datetime) -> None:
        """Set last_used_at; the first use of the day (TIME_ZONE) is also audited.

        That first use is a compare-and-set on last_used_at (it was before today), so of
        requests racing at midnight, in one process or several, exactly one writes the
        audit record; every other request costs what it did before the audit log.
        """
        day_start = timezone.make_aware(datetime.combine(timezone.localdate(now), time.min))
        unused_today = models.Q(last_used_at__isnull=True) | models.Q(last_used_at__lt=day_start)
        first_today = self.last_used_at is None or self.last_used_at < day_start
        rows = ApiToken.objects.filter(pk=self.pk)
        if first_today and rows.filter(unused_today).update(last_used_at=now):
            record_event(
                EventType.TOKEN_USED_TODAY,
                obj=self,
                actor=user_actor(self.user),
                detail={"owner": self.user.get_username()},
            )
        elif not first_today:
            rows.update(last_used_at=now)
        self.last_used_at = now

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])
