"""Team budgets: a call must fit the user's budget and every team's; team spend is what
was recorded for the team at call time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection

from providers.adapters.base import Usage
from tests.usage.factories import ok_result
from usage.models import ModelPrice, Reservation, TeamBudget, UsageRecord, UserBudget
from usage.services import (
    BudgetExceeded,
    record_generation,
    record_refusal,
    release_reservation,
    reserve_budget,
    settle_reservation,
)
from usage.teams import team_spend_nanos

# gpt-4o worst case for 100 prompt tokens and max_tokens 1000: $0.01025.
CALL: dict[str, Any] = {"model": "gpt-4o", "max_tokens": 1000, "prompt_tokens": 100}
WORST = 10_250_000


def _team(name: str, limit: str | None, *members) -> TeamBudget:
    group = Group.objects.create(name=name)
    for member in members:
        member.groups.add(group)
    return TeamBudget.objects.create(
        group=group, monthly_limit=None if limit is None else Decimal(limit)
    )


def _call(user, provider, *, tokens_out: int = 500):
    """One whole call: hold, record, settle. Its cost: 100 in, `tokens_out` out."""
    held = reserve_budget(user=user, provider=provider, **CALL)
    usage = Usage(input_tokens=100, output_tokens=tokens_out)
    records = record_generation(
        provider=provider, user=user, source="api", result=ok_result("gpt-4o", usage)
    )
    return settle_reservation(reservation=held, records=records), records


@pytest.mark.django_db
def test_a_call_must_fit_the_team_budget_as_well(openai, user, django_user_model):
    bob = django_user_model.objects.create_user("bob", password="pw-bob-123")
    _team("Sales", "0.02", user, bob)  # room for one worst case, not two
    UserBudget.objects.create(user=user, monthly_limit=Decimal("100"))
    reserve_budget(user=bob, provider=openai, **CALL)  # bob has no budget of his own
    with pytest.raises(BudgetExceeded) as exc:
        reserve_budget(user=user, provider=openai, **CALL)
    assert "your team Sales has spent $0.0000 of its $0.02 monthly budget" in exc.value.reason
    assert "$0.0102 is held by calls in progress" in exc.value.reason


@pytest.mark.django_db
def test_every_team_of_the_user_must_have_room(openai, user):
    _team("Roomy", "100", user)
    _team("Tight", "0.01", user)
    with pytest.raises(BudgetExceeded, match="your team Tight"):
        reserve_budget(user=user, provider=openai, **CALL)
    assert not Reservation.objects.exists()


@pytest.mark.django_db
def test_the_user_budget_still_applies_inside_a_team(openai, user):
    _team("Sales", "100", user)
    UserBudget.objects.create(user=user, monthly_limit=Decimal("0.01"))
    with pytest.raises(BudgetExceeded, match="you have spent"):
        reserve_budget(user=user, provider=openai, **CALL)


@pytest.mark.django_db
def test_spend_counts_for_the_teams_of_the_call_not_of_today(openai, user):
    sales = _team("Sales", "1", user)
    _call(user, openai)  # 100 * 2.5 + 500 * 10 per million = $0.00525
    user.groups.remove(sales.group)
    support = _team("Support", "1", user)
    _call(user, openai, tokens_out=100)  # $0.00125
    start, end = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    # Leaving Sales took none of its history along; Support got none of it.
    assert team_spend_nanos(group_id=sales.group_id, start=start, end=end) == 5_250_000
    assert team_spend_nanos(group_id=support.group_id, start=start, end=end) == 1_250_000


@pytest.mark.django_db
def test_a_team_without_a_limit_counts_but_never_refuses(openai, user):
    team = _team("Research", None, user)
    held, records = _call(user, openai)
    assert held.pk is not None  # saved, so the records learn their team
    assert list(records[0].teams.all()) == [team.group]


@pytest.mark.django_db
def test_a_released_hold_frees_the_team_budget(openai, user, django_user_model):
    bob = django_user_model.objects.create_user("bob", password="pw-bob-123")
    _team("Sales", "0.02", user, bob)
    held = reserve_budget(user=bob, provider=openai, **CALL)
    release_reservation(reservation=held)
    reserve_budget(user=user, provider=openai, **CALL)
    assert Reservation.objects.filter(status="active").count() == 1


@pytest.mark.django_db
def test_a_refusal_is_counted_for_the_users_teams(openai, user):
    team = _team("Sales", "1", user)
    record = record_refusal(provider=openai, user=user, source="chat", model="gpt-4o")
    assert list(UsageRecord.objects.filter(teams=team.group)) == [record]


@pytest.mark.django_db
def test_an_unpriced_model_is_refused_under_a_team_budget(make_provider, user):
    local = make_provider("Local", "openai_compatible")
    _team("Sales", "5", user)
    with pytest.raises(BudgetExceeded, match="has no price"):
        reserve_budget(user=user, provider=local, model="llama3", max_tokens=10, prompt_tokens=1)


def _race(users, provider) -> tuple[int, list[str], list[BaseException]]:
    barrier = threading.Barrier(len(users))
    ok, refused, errors = [], [], []

    def worker(user) -> None:
        try:
            barrier.wait()
            reserve_budget(user=user, provider=provider, **CALL)
            ok.append(1)
        except BudgetExceeded as exc:
            refused.append(exc.reason)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(user,)) for user in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return len(ok), refused, errors


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_calls_at_the_edge_of_a_team_budget(make_provider, django_user_model):
    # Twenty members, each with room of their own, racing for a team budget that fits
    # seven worst cases (7 x 0.01025 = 0.07175), not eight (0.082). SQLite serialises with
    # BEGIN IMMEDIATE; PostgreSQL with the lock on the team's row (each member locks only
    # their own user row, so that one alone would let them all through).
    ModelPrice.objects.get_or_create(  # a transactional test before this one flushed them
        provider_kind="openai",
        model="gpt-4o",
        match="prefix",
        valid_from=datetime(2024, 1, 1, tzinfo=UTC),
        defaults={"input_per_mtok": Decimal("2.5"), "output_per_mtok": Decimal("10")},
    )
    provider = make_provider("OpenAI", "openai")
    members = [
        django_user_model.objects.create_user(f"member{i}", password="pw-member-123")
        for i in range(20)
    ]
    for member in members:
        UserBudget.objects.create(user=member, monthly_limit=Decimal("1"))
    team = _team("Edge", "0.08", *members)
    ok, refused, errors = _race(members, provider)
    assert errors == []
    assert (ok, len(refused)) == (7, 13), refused
    assert all("your team Edge" in reason for reason in refused)
    held = Reservation.objects.filter(teams=team.group, status="active")
    assert held.count() == 7


@pytest.mark.django_db
def test_staff_manage_team_budgets_in_the_admin(admin_client, user):
    group = Group.objects.create(name="Sales")
    page = admin_client.get("/admin/usage/teambudget/add/")
    assert page.status_code == 200
    response = admin_client.post(
        "/admin/usage/teambudget/add/",
        {"group": group.pk, "monthly_limit": "25.00", "managers": [user.pk]},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    team = TeamBudget.objects.get(group=group)
    assert (team.monthly_limit, list(team.managers.all())) == (Decimal("25.00"), [user])
    listing = admin_client.get("/admin/usage/teambudget/").content.decode()
    assert "Sales" in listing
    assert "alice" in listing
    assert admin_client.get("/admin/usage/budgetalert/").status_code == 200


@pytest.mark.django_db
def test_my_usage_shows_my_teams_spend(client, openai, user):
    _team("Sales", "1", user)
    _team("Research", None, user)
    _call(user, openai)  # $0.00525, counted for both
    client.force_login(user)
    page = " ".join(client.get("/usage/").content.decode().split())
    assert "Team Sales, this month</span><strong>$0.01 of $1.00</strong>" in page
    assert "$0.99 left for the team" in page
    assert "Team Research, this month</span><strong>$0.01</strong>" in page
    assert "no team limit" in page
