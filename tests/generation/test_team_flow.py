"""A chat answer by a team member, through a real huey consumer: its usage counts for
the team, and the team's managers are mailed when it crosses 80%."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.utils import timezone

from generation.models import Message
from tests.generation.conftest import send_hello, wait_for
from usage.models import BudgetAlert, Reservation, TeamBudget, UsageRecord, UsageRecordTeam

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_answer_counts_for_the_team_and_alerts_its_managers(
    user, django_user_model, make_chat_provider, price_fake_model, huey_consumer
):
    provider = make_chat_provider("tokens=12")
    price_fake_model(provider)
    sales = Group.objects.create(name="Sales")
    user.groups.add(sales)
    team = TeamBudget.objects.create(group=sales, monthly_limit=Decimal("1.00"))
    boss = django_user_model.objects.create_user("boss", "boss@example.com", "pw-boss-123")
    team.managers.add(boss)
    # Earlier this month the team spent $0.80 minus a little: the answer tips it over.
    earlier = UsageRecord.objects.create(
        provider=provider,
        model="fake-model",
        user=user,
        source="chat",
        outcome="ok",
        cost_nanos=799_999_999,
        created_at=timezone.now() - timedelta(seconds=5),
    )
    UsageRecordTeam.objects.create(record=earlier, team=sales)

    answer = send_hello(user, provider, "Hello there", max_tokens=50)
    assert Reservation.objects.get(pk=answer.reservation_id).teams.get() == sales
    wait_for(lambda: Message.objects.get(pk=answer.pk).status == Message.Status.COMPLETE)
    # The answer is stored first, then metered and its hold settled.
    wait_for(lambda: Reservation.objects.get(pk=answer.reservation_id).status == "settled")

    record = UsageRecord.objects.get(message=answer)
    assert record.cost_nanos
    assert list(record.teams.all()) == [sales]
    wait_for(lambda: mail.outbox)
    [sent] = mail.outbox
    assert sent.to == ["boss@example.com"]
    assert sent.subject == "Switchboard: team Sales has used 80% of its monthly budget"
    alert = BudgetAlert.objects.get()
    assert (alert.team, alert.threshold) == (sales, 80)
    assert alert.spent_nanos == 799_999_999 + record.cost_nanos
