"""Model aliases: a name that routes to ordered groups of provider/model targets.

A call to an alias tries its lowest priority group first; within a group one target is
chosen by weight and the others of the group follow as fallbacks (`routing.plans`).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models


class Alias(models.Model):
    name = models.CharField(
        max_length=100,
        unique=True,
        help_text="What users pick or send as `model`, e.g. smart, fast. No slash: "
        "`provider/model` names a provider.",
    )
    is_default_for_chats = models.BooleanField(
        "default for new chats", default=False, help_text="At most one alias is."
    )
    is_active = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "aliases"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default_for_chats"],
                condition=models.Q(is_default_for_chats=True),
                name="routing_alias_one_default",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if "/" in self.name:
            raise ValidationError(
                {"name": "An alias name cannot contain '/': 'provider/model' names a provider."}
            )


class AliasTarget(models.Model):
    alias = models.ForeignKey(Alias, on_delete=models.CASCADE, related_name="targets")
    priority = models.PositiveSmallIntegerField(
        "priority group",
        default=1,
        help_text="Lower groups are tried first; the next group only when all of one failed.",
    )
    # PROTECT: a usage record names the target's provider; deactivate a provider instead.
    provider = models.ForeignKey("providers.Provider", on_delete=models.PROTECT)
    model = models.CharField(max_length=200, help_text="The provider's own name for the model.")
    weight = models.PositiveIntegerField(
        default=1,
        validators=[MinValueValidator(1)],
        help_text="Share of the group's calls this target answers first (relative).",
    )

    class Meta:
        ordering = ["priority", "-weight", "pk"]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"
