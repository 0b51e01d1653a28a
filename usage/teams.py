"""Teams for usage: a Django group with a TeamBudget row. Who is in which team, and what
a team has spent and holds this month.

A call counts toward every team its user belongs to when the call is made: the
reservation lists them (Reservation.teams), and when it settles its usage records are
linked to the same teams (UsageRecordTeam). Team spend is summed over those links, so a
member who leaves a team takes none of its history along, and a new member brings none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db.models import Sum

from usage.models import NANOS_PER_USD, Reservation, TeamBudget, UsageRecord, UsageRecordTeam

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def teams_of(*, user: User) -> list[TeamBudget]:
    """The user's teams now, in primary-key order (the order their rows are locked in)."""
    return list(
        TeamBudget.objects.filter(group__user=user.pk).select_related("group").order_by("pk")
    )


def lock_teams(teams: Iterable[TeamBudget]) -> None:
    """Serialise reservations against these teams (SELECT ... FOR UPDATE, in pk order so
    two calls locking overlapping teams never wait on each other in a cycle)."""
    ids = sorted(team.pk for team in teams)
    if ids:
        list(TeamBudget.objects.select_for_update().filter(pk__in=ids).order_by("pk"))


def team_spend_nanos(*, group_id: int, start: datetime, end: datetime) -> int:
    total = UsageRecord.objects.filter(
        team_links__team_id=group_id, created_at__gte=start, created_at__lt=end
    ).aggregate(s=Sum("cost_nanos"))["s"]
    return int(total or 0)


def team_held_nanos(*, group_id: int, now: datetime) -> int:
    total = Reservation.objects.filter(
        teams=group_id, status=Reservation.Status.ACTIVE, expires_at__gt=now
    ).aggregate(s=Sum("amount_nanos"))["s"]
    return int(total or 0)


def link_records(*, records: Iterable[UsageRecord], group_ids: Iterable[int]) -> None:
    """Count `records` toward the teams (idempotent: a link made before is kept)."""
    links = [
        UsageRecordTeam(record_id=record.pk, team_id=group_id)
        for record in records
        if record.pk is not None
        for group_id in group_ids
    ]
    if links:
        UsageRecordTeam.objects.bulk_create(links, ignore_conflicts=True)


@dataclass(frozen=True)
class TeamStanding:
    name: str
    limit: Decimal | None
    spent_nanos: int
    held_nanos: int

    @property
    def spent(self) -> Decimal:
        return Decimal(self.spent_nanos) / NANOS_PER_USD

    @property
    def remaining(self) -> Decimal | None:
        if self.limit is None:
            return None
        return self.limit - Decimal(self.spent_nanos + self.held_nanos) / NANOS_PER_USD


def standings(*, user: User, now: datetime, start: datetime, end: datetime) -> list[TeamStanding]:
    """This month's spend of each of the user's teams (the user's own page shows them)."""
    return [
        TeamStanding(
            name=team.group.name,
            limit=team.monthly_limit,
            spent_nanos=team_spend_nanos(group_id=team.group_id, start=start, end=end),
            held_nanos=team_held_nanos(group_id=team.group_id, now=now),
        )
        for team in teams_of(user=user)
    ]
