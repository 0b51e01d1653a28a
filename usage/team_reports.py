"""The report's by-team table: usage per team, as counted when the calls were made.

A record counts toward every team its user was in at call time (usage.teams), so a user
in two teams appears in both rows and the rows may add up to more than the total; the
"(no team)" row holds the records of users in no team. The rollup has no teams: this
table reads the range's raw rows (one grouped query), and only once a team exists.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group

from usage.models import TeamBudget
from usage.reports import DEFAULT_SORT, ReportQuery, Row, Totals, sorted_rows
from usage.rollup import raw_metrics, unprefixed

NO_TEAM = "(no team)"
TEAM_KEY = "team_links__team_id"


def teams_exist() -> bool:
    return TeamBudget.objects.exists()


def by_team(q: ReportQuery, sort: str = DEFAULT_SORT) -> list[Row]:
    per_team: dict[Any, Totals] = {}
    grouped = q.raw_records().values(TEAM_KEY).annotate(**raw_metrics()).order_by()
    for row in map(unprefixed, grouped):
        per_team.setdefault(row[TEAM_KEY], Totals()).add(row)
    teams = Group.objects.filter(pk__in=[k for k in per_team if k])
    names: dict[int | None, str] = {None: NO_TEAM, **dict(teams.values_list("pk", "name"))}
    return sorted_rows([Row(k, names.get(k, str(k)), t) for k, t in per_team.items()], sort)
