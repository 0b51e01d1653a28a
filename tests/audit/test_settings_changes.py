"""Budgets, prices and aliases changed in the admin: who, from where, before and after."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import EventType
from routing.models import Alias
from tests.audit.conftest import OFFICE, events, only
from tests.providers.fake_helpers import fake_provider
from usage.models import BudgetDefault, ModelPrice, TeamBudget, UserBudget

pytestmark = pytest.mark.django_db


def test_a_user_budget_set_changed_and_removed(staff_client, admin_user, django_user_model):
    bob = django_user_model.objects.create_user("bob")
    add = reverse("admin:usage_userbudget_add")
    staff_client.post(add, {"user": bob.pk, "monthly_limit": "50.00"}, REMOTE_ADDR=OFFICE)
    budget = UserBudget.objects.get()
    change = reverse("admin:usage_userbudget_change", args=[budget.pk])
    staff_client.post(change, {"user": bob.pk, "monthly_limit": "75.00"})
    staff_client.post(reverse("admin:usage_userbudget_delete", args=[budget.pk]), {"post": "yes"})

    created, changed, deleted = events(EventType.BUDGET_CHANGED)
    assert (created.actor, created.user, created.ip_address) == ("admin", admin_user, OFFICE)
    assert created.detail == {
        "action": "created",
        "changes": {"user": [None, "bob"], "monthly_limit": [None, "50"]},
    }
    assert changed.detail == {"action": "changed", "changes": {"monthly_limit": ["50", "75"]}}
    assert deleted.detail["action"] == "deleted"
    assert {created.object_id, changed.object_id, deleted.object_id} == {str(budget.pk)}


def test_a_team_budget_set_and_changed(staff_client, admin_user):
    from django.contrib.auth.models import Group

    team = Group.objects.create(name="Research")
    add = reverse("admin:usage_teambudget_add")
    staff_client.post(add, {"group": team.pk, "monthly_limit": "500.00"}, REMOTE_ADDR=OFFICE)
    budget = TeamBudget.objects.get()
    change = reverse("admin:usage_teambudget_change", args=[budget.pk])
    staff_client.post(change, {"group": team.pk, "monthly_limit": "350.00"})

    created, changed = events(EventType.BUDGET_CHANGED)
    assert (created.actor, created.ip_address, created.object_type) == (
        "admin",
        OFFICE,
        "usage.teambudget",
    )
    assert created.detail["changes"] == {
        "group": [None, "Research"],
        "monthly_limit": [None, "500"],
    }
    assert changed.detail == {"action": "changed", "changes": {"monthly_limit": ["500", "350"]}}


def test_the_default_budget_changed(staff_client):
    staff_client.post(reverse("admin:usage_budgetdefault_add"), {"monthly_limit": "20.00"})
    default = BudgetDefault.objects.get()
    url = reverse("admin:usage_budgetdefault_change", args=[default.pk])
    staff_client.post(url, {"monthly_limit": ""})  # blank: no limit
    record = events(EventType.BUDGET_CHANGED)[-1]
    assert record.object_type == "usage.budgetdefault"
    assert record.detail["changes"] == {"monthly_limit": ["20", None]}


def test_a_price_added_and_changed(staff_client):
    form = {
        "provider_kind": "openai",
        "model": "gpt-audit",
        "match": "exact",
        "input_per_mtok": "2.50",
        "output_per_mtok": "10.00",
        "cached_input_per_mtok": "",
        "cache_write_per_mtok": "",
        "valid_from_0": "2026-01-01",
        "valid_from_1": "00:00:00",
        "note": "",
    }
    response = staff_client.post(reverse("admin:usage_modelprice_add"), form, REMOTE_ADDR=OFFICE)
    assert response.status_code == 302, response.content
    price = ModelPrice.objects.get(model="gpt-audit")
    url = reverse("admin:usage_modelprice_change", args=[price.pk])
    staff_client.post(url, {**form, "output_per_mtok": "12.00"})
    created, changed = events(EventType.PRICE_CHANGED)
    assert created.detail["changes"]["input_per_mtok"] == [None, "2.5"]
    assert created.ip_address == OFFICE
    assert changed.detail == {
        "action": "changed",
        "changes": {"output_per_mtok": ["10", "12"]},
    }
    assert changed.object_repr == str(price)


def test_an_alias_and_its_targets_changed(staff_client, fake_upstream):
    provider = fake_provider(fake_upstream)
    prefix = "targets"
    management = {
        f"{prefix}-TOTAL_FORMS": "1",
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    target = {
        f"{prefix}-0-priority": "1",
        f"{prefix}-0-provider": str(provider.pk),
        f"{prefix}-0-model": "m1",
        f"{prefix}-0-weight": "1",
    }
    form = {"name": "smart", "description": "", "is_active": "on", **management, **target}
    response = staff_client.post(reverse("admin:routing_alias_add"), form, REMOTE_ADDR=OFFICE)
    assert response.status_code == 302, response.content
    alias = Alias.objects.get()
    made_alias, made_target = events(EventType.ALIAS_CHANGED)
    assert (made_alias.object_repr, made_alias.actor) == ("smart", "admin")
    assert made_target.object_repr == f"{provider.name}/m1"
    assert made_target.detail["changes"]["alias"] == [None, "smart"]

    existing = alias.targets.get()
    url = reverse("admin:routing_alias_change", args=[alias.pk])
    staff_client.post(
        url,
        {
            **form,
            f"{prefix}-INITIAL_FORMS": "1",
            f"{prefix}-0-id": str(existing.pk),
            f"{prefix}-0-alias": str(alias.pk),
            f"{prefix}-0-weight": "5",
            "is_active": "",
        },
    )
    deactivated, reweighted = events(EventType.ALIAS_CHANGED)[2:]
    assert deactivated.detail["changes"] == {"is_active": [True, False]}
    assert reweighted.detail["changes"] == {"weight": [1, 5]}

    staff_client.post(reverse("admin:routing_alias_delete", args=[alias.pk]), {"post": "yes"})
    deletions = [e.detail["action"] for e in events(EventType.ALIAS_CHANGED)[4:]]
    assert sorted(deletions) == ["deleted", "deleted"]  # the target and the alias


def test_a_save_that_changes_nothing_records_nothing(staff_client, django_user_model):
    bob = django_user_model.objects.create_user("bob")
    budget = UserBudget.objects.create(user=bob, monthly_limit="10.00")
    count = len(events())
    url = reverse("admin:usage_userbudget_change", args=[budget.pk])
    staff_client.post(url, {"user": bob.pk, "monthly_limit": "10.00"})
    assert len(events()) == count
    assert only(EventType.BUDGET_CHANGED).detail["action"] == "created"
