"""Teams and budget alerts (re-exported by usage.models, which Django loads first).

A team is a Django group with a TeamBudget row; UsageRecordTeam links a usage record to
the teams its call counted toward; BudgetAlert is one threshold crossed in one month.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from usage.models import UsageRecord, nanos_to_usd


class TeamBudget(models.Model):
    """A team (a Django group) whose members' spend is counted together, with an
    optional monthly limit on top of each member's own, and the managers its alerts go to.

    A group without a TeamBudget row is not a team for usage: its members' calls are
    neither limited nor counted for it."""

    group = models.OneToOneField(
        "auth.Group", on_delete=models.CASCADE, related_name="team_budget", verbose_name="team"
    )
    monthly_limit = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="USD per calendar month for all members together. Blank = no limit "
        "(spend is still counted and reported).",
    )
    managers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="managed_team_budgets",
        help_text="Receive the team's 80% and 100% alerts by email.",
    )

    class Meta:
        verbose_name = "team budget"
        ordering = ["group__name"]

    def __str__(self) -> str:
        return f"{self.group}: {self.monthly_limit or 'no limit'}"


class UsageRecordTeam(models.Model):
    """A usage record counted toward a team: the teams of the user when the call was
    made, so leaving (or joining) a team later does not rewrite history."""

    record = models.ForeignKey(UsageRecord, on_delete=models.CASCADE, related_name="team_links")
    team = models.ForeignKey("auth.Group", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["record", "team"], name="usage_rec_team_unique"),
        ]
        indexes = [models.Index(fields=["team", "record"], name="usage_rec_team_record")]

    def __str__(self) -> str:
        return f"record {self.record_id} -> team {self.team_id}"


class BudgetAlert(models.Model):
    """One threshold crossed in one period, by a user's or a team's spend: sent once.

    The unique constraints make the row the claim: of two processes crossing the same
    threshold, one inserts and sends, the other's insert fails and it sends nothing."""

    class Threshold(models.IntegerChoices):
        WARNING = 80, "80%"
        EXHAUSTED = 100, "100%"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="budget_alerts",
    )
    team = models.ForeignKey(
        "auth.Group", null=True, blank=True, on_delete=models.CASCADE, related_name="budget_alerts"
    )
    period_start = models.DateField(help_text="First day of the budget's month.")
    threshold = models.PositiveSmallIntegerField(choices=Threshold.choices)
    spent_nanos = models.BigIntegerField()
    limit = models.DecimalField(max_digits=12, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period_start", "-threshold"]
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, team__isnull=True)
                | Q(user__isnull=True, team__isnull=False),
                name="usage_alert_user_xor_team",
            ),
            models.UniqueConstraint(
                fields=["user", "period_start", "threshold"],
                condition=Q(user__isnull=False),
                name="usage_alert_once_per_user",
            ),
            models.UniqueConstraint(
                fields=["team", "period_start", "threshold"],
                condition=Q(team__isnull=False),
                name="usage_alert_once_per_team",
            ),
        ]

    def __str__(self) -> str:
        who = f"team {self.team}" if self.team_id else f"user {self.user}"
        return f"{who} {self.threshold}% {self.period_start:%Y-%m}"

    @property
    def spent(self) -> Decimal:
        return nanos_to_usd(self.spent_nanos)
