"""Presets: a named set of chat settings (provider, model, system prompt, temperature,
max tokens, thinking) a new chat can start from.

A preset with an owner is personal (made from a chat, deleted by its owner); one without
an owner is shared, and only staff manage it, in the admin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q

if TYPE_CHECKING:
    from django.contrib.auth.models import User

NAME_MAX = 100


class PresetQuerySet(models.QuerySet["Preset"]):
    def visible_to(self, user: User) -> PresetQuerySet:
        """The user's own presets and the shared ones (by name: the model's ordering)."""
        return self.filter(Q(owner=user) | Q(owner__isnull=True))


class Preset(models.Model):
    name = models.CharField(max_length=NAME_MAX)
    # None: a shared preset, managed by staff in the admin.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="presets",
    )
    provider = models.ForeignKey(
        "providers.Provider", on_delete=models.CASCADE, related_name="presets"
    )
    model = models.CharField(max_length=200, blank=True)  # blank: the provider's default
    system_prompt = models.TextField(blank=True)
    # None means "the provider's default", as on Message.
    temperature = models.FloatField(null=True, blank=True)
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    # A chat started from the preset has extended thinking on (its default budget), for
    # a provider whose adapter takes a thinking budget.
    thinking = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PresetQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="preset_name_per_owner"),
            # NULLs are distinct in a unique index: shared names need their own.
            models.UniqueConstraint(
                fields=["name"], condition=Q(owner__isnull=True), name="preset_shared_name"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_shared(self) -> bool:
        return self.owner_id is None
