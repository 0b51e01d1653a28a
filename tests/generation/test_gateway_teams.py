"""Team budgets on /v1: a member's call is refused when the team has no room, and a
call that goes through counts for the team, streamed or not."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest
from django.contrib.auth.models import Group

from tests.generation.conftest import wait_for
from tests.generation.gateway_helpers import *  # noqa: F403 (the fixtures)
from tests.generation.gateway_helpers import model_of, user_says
from tests.providers.fake_helpers import generation_calls
from usage.models import Reservation, TeamBudget, UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)


def _join(user, name: str, limit: str) -> Group:
    group = Group.objects.create(name=name)
    user.groups.add(group)
    TeamBudget.objects.create(group=group, monthly_limit=Decimal(limit))
    return group


def test_a_team_without_room_refuses_the_call(
    sdk, api_user, give_budget, make_provider, fake_upstream
):
    give_budget(api_user)  # the user's own budget has room (and the model a price)
    _join(api_user, "Sales", "0.00")
    provider = make_provider("openai")
    with pytest.raises(openai.APIStatusError) as caught:
        sdk.chat.completions.create(model=model_of(provider), messages=user_says())
    assert caught.value.status_code == 402
    assert "your team Sales has spent" in caught.value.message
    assert generation_calls(fake_upstream) == 0


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_a_members_call_counts_for_the_team(sdk, api_user, give_budget, make_provider, stream):
    give_budget(api_user)
    sales = _join(api_user, "Sales", "50.00")
    provider = make_provider("openai", knobs="tokens=3")
    response = sdk.chat.completions.create(
        model=model_of(provider), messages=user_says(), stream=stream
    )
    if stream:
        list(response)
    wait_for(lambda: Reservation.objects.filter(status="settled").exists())
    record = UsageRecord.objects.get()
    assert record.cost_nanos
    assert list(record.teams.all()) == [sales]
