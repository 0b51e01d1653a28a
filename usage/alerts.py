"""Budget alerts: at 80% and 100% of a user's or a team's monthly budget, once per month.

After a call settles (usage.budgets.settle_reservation) a queue task checks the spend of
the user and of the teams the call counted toward. A threshold crossed is claimed by
inserting a BudgetAlert row; the unique constraints make that insert the lock, so of two
workers settling at once only one sends. The user is emailed about their own budget, a
team's managers about the team's; the chat shows a banner from the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from usage.budgets import month_bounds, month_spend_nanos, monthly_limit
from usage.models import NANOS_PER_USD, BudgetAlert, TeamBudget
from usage.teams import team_spend_nanos

THRESHOLDS = (BudgetAlert.Threshold.WARNING, BudgetAlert.Threshold.EXHAUSTED)


def crossed(*, spent_nanos: int, limit: Decimal) -> list[int]:
    """The thresholds (percent) `spent_nanos` has reached; none for a zero limit (that
    budget blocks every priced call: there is nothing to warn about)."""
    limit_nanos = int(limit * NANOS_PER_USD)
    if limit_nanos <= 0:
        return []
    return [int(t) for t in THRESHOLDS if spent_nanos * 100 >= int(t) * limit_nanos]


@dataclass(frozen=True)
class Scope:
    """Whose budget: a user's (user_id) or a team's (team)."""

    user_id: int | None = None
    team: Group | None = None


def _claim(
    *, scope: Scope, period: date, threshold: int, spent: int, limit: Decimal
) -> BudgetAlert | None:
    try:
        with transaction.atomic():
            return BudgetAlert.objects.create(
                user_id=scope.user_id,
                team=scope.team,
                period_start=period,
                threshold=threshold,
                spent_nanos=spent,
                limit=limit,
            )
    except IntegrityError:
        return None  # claimed before this month, by this process or another


def _claim_crossed(*, scope: Scope, period: date, spent: int, limit: Decimal) -> BudgetAlert | None:
    """Claim every threshold reached: the highest newly claimed one is the one to send
    (from 50% to 100% in one call the 80% one is passed over, and never sent later)."""
    newest = None
    for threshold in crossed(spent_nanos=spent, limit=limit):
        alert = _claim(scope=scope, period=period, threshold=threshold, spent=spent, limit=limit)
        newest = alert or newest
    return newest


def check_alerts(*, user_id: int, team_ids: list[int], at: datetime | None = None) -> int:
    """Claim and send the alerts the user's and these teams' spend has reached this
    month; how many were sent."""
    now = at or timezone.now()
    start, end = month_bounds(now)
    sent = 0
    user = get_user_model().objects.filter(pk=user_id).first()
    limit = monthly_limit(user=user) if user is not None else None
    if user is not None and limit is not None:
        spent = month_spend_nanos(user=user, at=now)
        alert = _claim_crossed(
            scope=Scope(user_id=user.pk), period=start.date(), spent=spent, limit=limit
        )
        if alert is not None:
            mail = _user_mail(user.get_username(), alert.threshold, spent, limit, now)
            _deliver(alert, mail, [user.email])
            sent += 1
    teams = TeamBudget.objects.filter(group_id__in=team_ids, monthly_limit__isnull=False)
    for team in teams.select_related("group"):
        team_limit = Decimal(team.monthly_limit or 0)
        spent = team_spend_nanos(group_id=team.group_id, start=start, end=end)
        alert = _claim_crossed(
            scope=Scope(team=team.group), period=start.date(), spent=spent, limit=team_limit
        )
        if alert is not None:
            mail = _team_mail(team.group.name, alert.threshold, spent, team_limit, now)
            _deliver(alert, mail, [m.email for m in team.managers.all()])
            sent += 1
    return sent


def _usd(nanos: int) -> str:
    return f"${Decimal(nanos) / NANOS_PER_USD:.2f}"


def _user_mail(name: str, threshold: int, spent: int, limit: Decimal, now: datetime) -> Mail:
    month = f"{timezone.localtime(now):%B %Y}"
    if threshold >= BudgetAlert.Threshold.EXHAUSTED:
        subject = "Switchboard: your monthly budget is used up"
        tail = "Calls are refused until the month ends or staff raise your budget."
    else:
        subject = f"Switchboard: {threshold}% of your monthly budget used"
        tail = "Calls that would go over it are refused."
    body = (
        f"Hello {name},\n\nYou have spent {_usd(spent)} of your ${limit} budget for "
        f"{month} ({threshold}%). {tail}\n"
    )
    return Mail(subject, body)


def _team_mail(team: str, threshold: int, spent: int, limit: Decimal, now: datetime) -> Mail:
    month = f"{timezone.localtime(now):%B %Y}"
    if threshold >= BudgetAlert.Threshold.EXHAUSTED:
        subject = f"Switchboard: team {team} has used up its monthly budget"
    else:
        subject = f"Switchboard: team {team} has used {threshold}% of its monthly budget"
    body = (
        f"The members of {team} have spent {_usd(spent)} of the team's ${limit} budget "
        f"for {month} ({threshold}%). Calls that would go over it are refused; you "
        "receive this as one of the team's managers.\n"
    )
    return Mail(subject, body)


@dataclass(frozen=True)
class Mail:
    subject: str
    body: str


def _deliver(alert: BudgetAlert, mail: Mail, recipients: list[str]) -> None:
    """Send the claimed alert's mail. A failed send drops the claim (the task's retry
    claims and sends again); nobody to write to keeps it (the chat's banner shows it)."""
    to = [address for address in recipients if address]
    try:
        if to:
            send_mail(mail.subject, mail.body, None, to)
    except Exception:
        alert.delete()
        raise
    alert.sent_at = timezone.now()
    alert.save(update_fields=["sent_at"])


def current_alerts(
    *, user_id: int, group_ids: list[int], at: datetime | None = None
) -> list[BudgetAlert]:
    """This month's highest alert for the user's own budget and for each of the teams:
    what the chat's banner shows."""
    start, _end = month_bounds(at)
    rows = BudgetAlert.objects.filter(
        Q(user_id=user_id) | Q(team_id__in=group_ids), period_start=start.date()
    ).select_related("team")
    highest: dict[tuple[int | None, int | None], BudgetAlert] = {}
    for alert in rows.order_by("threshold"):
        highest[(alert.user_id, alert.team_id)] = alert
    return sorted(highest.values(), key=lambda a: (a.team_id is not None, -a.threshold))
