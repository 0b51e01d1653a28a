"""Budget alerts at 80% and 100%: mail to the user or the team's managers, once a month."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.db import connection
from huey.contrib.djhuey import HUEY

from providers.adapters.base import Usage
from tests.usage.factories import make_record, ok_result
from usage.alerts import check_alerts
from usage.models import BudgetAlert, TeamBudget, UsageRecordTeam, UserBudget
from usage.services import record_generation, reserve_budget, settle_reservation

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def immediate_huey():
    """Tasks run where they are enqueued (huey's immediate mode, its public switch)."""
    HUEY.immediate = True
    yield
    HUEY.immediate = False


def _spend(user, provider, nanos: int, at: datetime = NOW, team: Group | None = None):
    record = make_record(provider, "gpt-4o", at, user=user, cost_nanos=nanos)
    if team is not None:
        UsageRecordTeam.objects.create(record=record, team=team)
    return record


@pytest.fixture
def sales(user, django_user_model):
    """Team Sales ($10) with alice as a member and two managers (one without an email)."""
    group = Group.objects.create(name="Sales")
    user.groups.add(group)
    team = TeamBudget.objects.create(group=group, monthly_limit=Decimal("10"))
    boss = django_user_model.objects.create_user("boss", "boss@example.com", "pw-boss-123")
    quiet = django_user_model.objects.create_user("quiet", "", "pw-quiet-123")
    team.managers.add(boss, quiet)
    return group


@pytest.mark.django_db
def test_the_user_is_mailed_at_80_percent_once(openai, user):
    user.email = "alice@example.com"
    user.save()
    UserBudget.objects.create(user=user, monthly_limit=Decimal("10"))
    _spend(user, openai, 7_999_999_999)
    assert check_alerts(user_id=user.pk, team_ids=[], at=NOW) == 0
    assert mail.outbox == []
    _spend(user, openai, 1)  # exactly $8.00 of $10
    assert check_alerts(user_id=user.pk, team_ids=[], at=NOW) == 1
    assert check_alerts(user_id=user.pk, team_ids=[], at=NOW) == 0  # once a month
    [sent] = mail.outbox
    assert sent.to == ["alice@example.com"]
    assert sent.subject == "Switchboard: 80% of your monthly budget used"
    assert "You have spent $8.00 of your $10.00 budget for March 2026 (80%)" in sent.body


@pytest.mark.django_db
def test_100_percent_is_mailed_too_and_a_jump_past_both_sends_one(openai, user):
    user.email = "alice@example.com"
    user.save()
    UserBudget.objects.create(user=user, monthly_limit=Decimal("10"))
    _spend(user, openai, 10_000_000_000)
    assert check_alerts(user_id=user.pk, team_ids=[], at=NOW) == 1
    [sent] = mail.outbox
    assert sent.subject == "Switchboard: your monthly budget is used up"
    # The 80% one is claimed with it, so it never arrives after the 100% one.
    assert sorted(BudgetAlert.objects.values_list("threshold", flat=True)) == [80, 100]


@pytest.mark.django_db
def test_each_month_alerts_afresh(openai, user):
    user.email = "alice@example.com"
    user.save()
    UserBudget.objects.create(user=user, monthly_limit=Decimal("10"))
    _spend(user, openai, 8_000_000_000)
    check_alerts(user_id=user.pk, team_ids=[], at=NOW)
    april = datetime(2026, 4, 20, 12, 0, tzinfo=UTC)
    assert check_alerts(user_id=user.pk, team_ids=[], at=april) == 0  # April spent nothing
    _spend(user, openai, 8_000_000_000, at=april)
    assert check_alerts(user_id=user.pk, team_ids=[], at=april) == 1
    assert len(mail.outbox) == 2


@pytest.mark.django_db
def test_a_team_alert_goes_to_its_managers_only(openai, user, sales):
    user.email = "alice@example.com"
    user.save()
    _spend(user, openai, 9_000_000_000, team=sales)
    _spend(user, openai, 5_000_000_000)  # not counted for the team: made outside it
    assert check_alerts(user_id=user.pk, team_ids=[sales.pk], at=NOW) == 1
    [sent] = mail.outbox
    assert sent.to == ["boss@example.com"]
    assert sent.subject == "Switchboard: team Sales has used 80% of its monthly budget"
    assert "spent $9.00 of the team's $10.00 budget for March 2026 (80%)" in sent.body
    alert = BudgetAlert.objects.get()
    assert (alert.team, alert.user, alert.spent_nanos) == (sales, None, 9_000_000_000)


@pytest.mark.django_db
def test_a_user_without_an_address_still_gets_the_alert_recorded(openai, user):
    UserBudget.objects.create(user=user, monthly_limit=Decimal("1"))
    _spend(user, openai, 1_000_000_000)
    check_alerts(user_id=user.pk, team_ids=[], at=NOW)
    assert mail.outbox == []
    assert BudgetAlert.objects.filter(user=user, threshold=100).exists()  # the banner's


@pytest.mark.django_db
def test_a_failed_send_is_tried_again(openai, user, settings):
    user.email = "alice@example.com"
    user.save()
    UserBudget.objects.create(user=user, monthly_limit=Decimal("10"))
    _spend(user, openai, 8_000_000_000)
    # A real SMTP connection to a port nobody listens on.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    with pytest.raises(OSError):
        check_alerts(user_id=user.pk, team_ids=[], at=NOW)
    assert not BudgetAlert.objects.exists()  # no claim left: the retry sends it
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert check_alerts(user_id=user.pk, team_ids=[], at=NOW) == 1


@pytest.mark.django_db
def test_settling_a_call_checks_the_alerts_on_the_queue(
    openai, user, sales, immediate_huey, django_capture_on_commit_callbacks
):
    TeamBudget.objects.filter(group=sales).update(monthly_limit=Decimal("0.01"))
    call = {"model": "gpt-4o", "max_tokens": 500, "prompt_tokens": 100}
    held = reserve_budget(user=user, provider=openai, **call)
    usage = Usage(input_tokens=100, output_tokens=800)  # $0.00825: 82.5% of $0.01
    records = record_generation(
        provider=openai, user=user, source="api", result=ok_result("gpt-4o", usage)
    )
    with django_capture_on_commit_callbacks(execute=True):
        settle_reservation(reservation=held, records=records)
    [sent] = mail.outbox
    assert sent.to == ["boss@example.com"]
    assert "Sales has used 80%" in sent.subject


@pytest.mark.django_db(transaction=True)
def test_two_workers_crossing_together_send_one_mail(make_provider, django_user_model):
    provider = make_provider("OpenAI", "openai")
    user = django_user_model.objects.create_user("racer", "racer@example.com", "pw-racer-1")
    UserBudget.objects.create(user=user, monthly_limit=Decimal("10"))
    _spend(user, provider, 9_000_000_000)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            check_alerts(user_id=user.pk, team_ids=[], at=NOW)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(mail.outbox) == 1
