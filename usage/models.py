"""Usage metering: one row per upstream attempt, the prices it was costed with, budgets.

Money is stored as integer nano-dollars (`*_nanos`, 1e-9 USD), not DecimalField: SQLite
gives a DecimalField NUMERIC affinity and stores it as a REAL, so SUM() over a million
costs would be float arithmetic. Integers sum exactly on every backend; Python-side the
values are exposed as Decimal through properties. Prices are per million tokens with at
most 3 decimal places, so tokens x price is always a whole number of nano-dollars.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal, overload

from django.conf import settings
from django.db import models
from django.db.models import Q

from providers.errors import ErrorKind
from providers.kinds import ProviderKind

NANOS_PER_USD = 1_000_000_000
CURRENCY = "USD"


@overload
def nanos_to_usd(nanos: int) -> Decimal: ...
@overload
def nanos_to_usd(nanos: None) -> None: ...
@overload
def nanos_to_usd(nanos: int | None) -> Decimal | None: ...
def nanos_to_usd(nanos: int | None) -> Decimal | None:
    if nanos is None:
        return None
    return Decimal(nanos) / NANOS_PER_USD


def usd_text(nanos: int) -> str:
    """Exact plain-notation USD text: 2_660_000 -> "0.00266", 0 -> "0" (never "0E-9")."""
    return format((Decimal(nanos) / NANOS_PER_USD).normalize(), "f")


class Source(models.TextChoices):
    CHAT = "chat", "Chat"
    API = "api", "API"
    ADMIN_TEST = "admin_test", "Admin test"


OUTCOME_OK = "ok"
# A call refused before it reached upstream because the user's budget could not cover it.
OUTCOME_OVER_BUDGET = "over_budget"
OUTCOME_CHOICES = [
    (OUTCOME_OK, "OK"),
    *ErrorKind.choices,
    (OUTCOME_OVER_BUDGET, "Refused: over budget"),
]


# A price is set as a Decimal (or a number, or its text) and read as a Decimal.
@overload
def price_field(
    label: str, *, null: Literal[False] = ...
) -> models.DecimalField[Decimal | float | str, Decimal]: ...
@overload
def price_field(
    label: str, *, null: Literal[True]
) -> models.DecimalField[Decimal | float | str | None, Decimal | None]: ...
def price_field(label: str, *, null: bool = False) -> models.DecimalField[Any, Any]:
    return models.DecimalField(
        label,
        max_digits=12,
        decimal_places=3,
        null=null,
        blank=null,
        help_text="USD per million tokens." + (" Blank = the input price." if null else ""),
    )


class ModelPrice(models.Model):
    class Match(models.TextChoices):
        EXACT = "exact", "Exact model name"
        PREFIX = "prefix", "Model name prefix"

    provider_kind = models.CharField(max_length=32, choices=ProviderKind.choices)
    model = models.CharField(max_length=200, help_text="A model name, or a prefix of names.")
    match = models.CharField(max_length=8, choices=Match.choices, default=Match.EXACT)
    input_per_mtok = price_field("input price")
    output_per_mtok = price_field("output price")
    cached_input_per_mtok = price_field("cached input price", null=True)
    cache_write_per_mtok = price_field("cache write price", null=True)
    currency = models.CharField(max_length=3, default=CURRENCY, editable=False)
    valid_from = models.DateTimeField(help_text="Applies to records made at or after this time.")
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["provider_kind", "model", "-valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider_kind", "model", "match", "valid_from"],
                name="usage_modelprice_unique_version",
            )
        ]

    def __str__(self) -> str:
        star = "*" if self.match == self.Match.PREFIX else ""
        return (
            f"{self.get_provider_kind_display()} {self.model}{star} from {self.valid_from:%Y-%m-%d}"
        )


class RoutingStep(models.TextChoices):
    """Where an attempt of a call routed through an alias stands in that call: read by the
    report's fallback counts without grouping the records by call."""

    NONE = "", "Not routed, or a retry before the last attempt"
    FELL_BACK = "fell_back", "Failed; the call fell back to the next target"
    LAST = "last", "The call's last attempt, at its first target"
    LAST_AFTER_FALLBACK = "last_after_fallback", "The call's last attempt, after a fallback"


class UsageRecord(models.Model):
    provider = models.ForeignKey("providers.Provider", on_delete=models.PROTECT)
    model = models.CharField(max_length=200)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    # The chat message or the API request served. request_id is also the idempotency key
    # ("message:<pk>" for a chat message), unique with the attempt number.
    message = models.ForeignKey(
        "generation.Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="usage_records",
    )
    request_id = models.CharField(max_length=64, blank=True, db_index=True)
    # The model alias the call named (routing), "" for a call naming a provider's model:
    # with it, a report tells which calls needed a fallback and which target answered.
    alias = models.CharField(max_length=100, blank=True, default="")
    routing_step = models.CharField(
        max_length=24, choices=RoutingStep.choices, blank=True, default=RoutingStep.NONE
    )
    attempt_number = models.PositiveSmallIntegerField(default=1)
    outcome = models.CharField(max_length=32, choices=OUTCOME_CHOICES)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    cache_hit = models.BooleanField(default=False)
    input_tokens = models.PositiveIntegerField(default=0)
    cached_input_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveIntegerField(default=0)
    tokens_estimated = models.BooleanField(default=False)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    # NULL = unknown (no price for the model); never 0 for an unpriced model.
    cost_nanos = models.BigIntegerField(null=True, blank=True)
    price_snapshot = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)
    # The teams the call counts toward (see UsageRecordTeam).
    teams = models.ManyToManyField(
        "auth.Group", through="UsageRecordTeam", blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        # One (dimension, created_at) index per report filter, so that the percentile
        # sample ("latest N in range matching the filter") reads matching rows in order
        # instead of walking the whole range.
        indexes = [
            models.Index(fields=["user", "created_at"], name="usage_rec_user_time"),
            models.Index(fields=["provider", "created_at"], name="usage_rec_provider_time"),
            models.Index(fields=["model", "created_at"], name="usage_rec_model_time"),
            models.Index(fields=["outcome", "created_at"], name="usage_rec_outcome_time"),
            models.Index(fields=["source", "created_at"], name="usage_rec_source_time"),
            # The report's fallback counts read routed calls only: a partial index, empty
            # (and free) for a deployment with no alias.
            models.Index(
                fields=["created_at"],
                condition=~Q(routing_step=""),
                name="usage_rec_routed_time",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["request_id", "attempt_number"],
                condition=~Q(request_id=""),
                name="usage_rec_unique_request_attempt",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} #{self.attempt_number} {self.outcome} {self.created_at:%Y-%m-%d}"

    @property
    def cost(self) -> Decimal | None:
        return nanos_to_usd(self.cost_nanos)


class UsageDaily(models.Model):
    """Sums of UsageRecord per (local day, provider, model, user, source, outcome).

    Rebuilt day by day from the raw rows (`usage.rollup`), so it is exact by
    construction; the report reads it for closed days and raw rows for the rest.
    """

    day = models.DateField()
    provider = models.ForeignKey("providers.Provider", on_delete=models.CASCADE)
    model = models.CharField(max_length=200)
    # SET_NULL like UsageRecord.user, so deleting a user keeps rollup == raw rows.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    outcome = models.CharField(max_length=32, choices=OUTCOME_CHOICES)
    requests = models.PositiveIntegerField()
    cache_hits = models.PositiveIntegerField()
    unpriced = models.PositiveIntegerField()
    input_tokens = models.BigIntegerField()
    cached_input_tokens = models.BigIntegerField()
    cache_write_tokens = models.BigIntegerField()
    reasoning_tokens = models.BigIntegerField()
    output_tokens = models.BigIntegerField()
    total_tokens = models.BigIntegerField()
    cost_nanos = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["day"], name="usage_daily_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.model} {self.outcome}: {self.requests}"


class RollupState(models.Model):
    """A single row: every record made before `rolled_until` is in UsageDaily (the day
    holding it in part); `complete_through` is the last whole day, for people to read."""

    rolled_until = models.DateTimeField(null=True)
    complete_through = models.DateField(null=True)
    # Days are local days: a rollup built under another TIME_ZONE is not used, and the
    # next refresh rebuilds it.
    time_zone = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Rollup complete through {self.complete_through}"


class BudgetDefault(models.Model):
    """A single row (pk=1): the monthly budget of every user without their own."""

    monthly_limit = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="USD per calendar month. Blank = no limit.",
    )

    class Meta:
        verbose_name = "default budget"

    def __str__(self) -> str:
        return f"Default: {self.monthly_limit or 'no limit'}"


class UserBudget(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_budget"
    )
    monthly_limit = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="USD per calendar month. Blank = no limit (overrides the default).",
    )

    def __str__(self) -> str:
        return f"{self.user}: {self.monthly_limit or 'no limit'}"


class Reservation(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SETTLED = "settled", "Settled"
        RELEASED = "released", "Released"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    provider = models.ForeignKey("providers.Provider", on_delete=models.CASCADE)
    model = models.CharField(max_length=200)
    amount_nanos = models.BigIntegerField()
    actual_nanos = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField()
    # An active reservation stops counting after this (a worker died mid-call).
    expires_at = models.DateTimeField()
    # The user's teams when the call was made: the hold counts against each of them,
    # and its usage records are counted toward them when it settles.
    teams = models.ManyToManyField("auth.Group", blank=True, related_name="+")

    class Meta:
        indexes = [models.Index(fields=["user", "status"], name="usage_resv_user_status")]

    def __str__(self) -> str:
        return f"{self.user} {self.model} {self.status}"


# Teams and alerts live in their own module (kept small), imported here for Django and
# for callers (the "as" re-exports them). Below the models it refers to: no cycle.
from usage.team_models import BudgetAlert as BudgetAlert  # noqa: E402
from usage.team_models import TeamBudget as TeamBudget  # noqa: E402
from usage.team_models import UsageRecordTeam as UsageRecordTeam  # noqa: E402
