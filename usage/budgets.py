"""Monthly budgets per user and per team, enforced before a call with worst-case reservations.

A reservation holds the worst-case cost of a call (its prompt at the full input price,
plus max_tokens of output) until the call ends. The check "spent this month + held by
other calls + this call <= limit" is made for the user's budget and for the budget of
each team the user is in (usage.teams), in one transaction holding a lock on the user's
row and on each limited team's row, taken in primary-key order (SELECT ... FOR UPDATE on
PostgreSQL; on SQLite the settings open every transaction with BEGIN IMMEDIATE, which
takes the database write lock), so concurrent calls are checked one after another and
never overspend a user or a team together. A refusal is raised by `refuse` alone."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, NoReturn

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from providers.adapters.base import GenerationRequest, Usage
from providers.adapters.common import IMAGE_TOKENS_ESTIMATE, prompt_chars
from providers.adapters.embeddings import EmbeddingRequest
from usage.models import (
    NANOS_PER_USD,
    BudgetDefault,
    Reservation,
    UsageRecord,
    UserBudget,
    nanos_to_usd,
)
from usage.pricing import PriceSnapshot, cost_nanos, find_price
from usage.teams import link_records, lock_teams, team_held_nanos, team_spend_nanos, teams_of

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from django.contrib.auth.models import User

    from providers.models import Provider

# English text averages ~4 characters per token; 3 errs on the side of reserving more.
CHARS_PER_TOKEN_ESTIMATE = 3


def prompt_tokens_to_hold(request: GenerationRequest) -> int:
    """The prompt's tokens as a hold counts them: text at 3 characters a token, and each
    image at the adapters' (generous) estimate. Tool definitions and a response schema
    count too: providers bill them as input, and a client may send megabytes of them."""
    images = sum(len(message.images) for message in request.messages)
    chars = prompt_chars(request)  # tool definitions and response schema included
    return math.ceil(chars / CHARS_PER_TOKEN_ESTIMATE) + images * IMAGE_TOKENS_ESTIMATE


def embedding_tokens_to_hold(request: EmbeddingRequest) -> int:
    """An embeddings input's tokens as a hold counts them: token arrays exactly, text as
    a prompt's (each input on its own: a short one is still at least a token)."""
    if request.token_input:
        return request.input_size()
    return sum(
        math.ceil(len(text) / CHARS_PER_TOKEN_ESTIMATE)
        for text in request.inputs
        if isinstance(text, str)
    )


def output_tokens_to_hold(request: GenerationRequest) -> int | None:
    """The most output a request may produce (None: up to the cap). Thinking is output on
    top of the answer's room: the adapter asks for the sum; n answers, n times that."""
    if request.thinking_budget is None and not request.n:
        return request.max_tokens
    cap = int(settings.SWITCHBOARD["MAX_TOKENS_CAP"])
    one = (request.max_tokens or cap) + (request.thinking_budget or 0)
    return one * (request.n or 1)


# An active reservation older than this belongs to a call that died; it stops counting.
RESERVATION_TTL = timedelta(hours=1)


class BudgetExceeded(Exception):
    """The call would go over the user's or a team's monthly budget. `reason` is safe
    to show. Raised by `refuse` only."""

    def __init__(self, reason: str, *, limit: Decimal | None = None, scope: str = "user") -> None:
        super().__init__(reason)
        self.reason = reason
        self.limit = limit
        self.scope = scope  # the budget that refused: "user" or "team" (for the metrics)


def month_bounds(at: datetime | None = None) -> tuple[datetime, datetime]:
    """Start and end of the calendar month containing `at`, in settings.TIME_ZONE."""
    local = timezone.localtime(at or timezone.now())
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    nxt = (start + timedelta(days=32)).replace(day=1)
    tz = timezone.get_current_timezone()
    return start, datetime(nxt.year, nxt.month, 1, tzinfo=tz)


def monthly_limit(*, user: User) -> Decimal | None:
    """The user's own limit, else the default; None = unlimited."""
    # get(), not first(): every send runs these, and first() adds an ORDER BY to compile.
    try:
        return UserBudget.objects.values_list("monthly_limit", flat=True).get(user_id=user.pk)
    except UserBudget.DoesNotExist:
        pass
    try:
        return BudgetDefault.objects.values_list("monthly_limit", flat=True).get(pk=1)
    except BudgetDefault.DoesNotExist:
        return None


def month_spend_nanos(*, user: User, at: datetime | None = None) -> int:
    start, end = month_bounds(at)
    total = UsageRecord.objects.filter(
        user_id=user.pk, created_at__gte=start, created_at__lt=end
    ).aggregate(s=Sum("cost_nanos"))["s"]
    return int(total or 0)


def _held_nanos(*, user: User, now: datetime) -> int:
    total = Reservation.objects.filter(
        user_id=user.pk, status=Reservation.Status.ACTIVE, expires_at__gt=now
    ).aggregate(s=Sum("amount_nanos"))["s"]
    return int(total or 0)


def worst_case_nanos(
    *, provider: Provider, model: str, max_tokens: int | None, prompt_tokens: int, at: datetime
) -> int | None:
    price = find_price(provider_kind=provider.kind, model=model, at=at)
    if price is None:
        return None
    output = max_tokens if max_tokens is not None else settings.SWITCHBOARD["MAX_TOKENS_CAP"]
    usage = Usage(
        input_tokens=max(prompt_tokens, 0),
        output_tokens=max(output, 0),
    )
    return cost_nanos(usage, PriceSnapshot.from_price(price))


def hold_nanos(
    *, provider: Provider, request: GenerationRequest, at: datetime | None = None
) -> int | None:
    """What `reserve_budget` holds for `request` sent to `provider` (None: unpriced):
    the chat composer shows it before a send."""
    return worst_case_nanos(
        provider=provider,
        model=request.model,
        max_tokens=output_tokens_to_hold(request),
        prompt_tokens=prompt_tokens_to_hold(request),
        at=at or timezone.now(),
    )


def costliest(
    candidates: Sequence[tuple[Provider, str]], *, max_tokens: int | None, prompt_tokens: int
) -> tuple[Provider, str]:
    """The (provider, model) of `candidates` whose worst case costs most: what a hold for
    a routed call covers, as it may end at any of them. An unpriced one comes first: its
    cost cannot be bounded (under a limit, `reserve_budget` then refuses in words)."""
    now = timezone.now()

    def worst(candidate: tuple[Provider, str]) -> float:
        provider, model = candidate
        nanos = worst_case_nanos(
            provider=provider,
            model=model,
            max_tokens=max_tokens,
            prompt_tokens=prompt_tokens,
            at=now,
        )
        return math.inf if nanos is None else nanos

    return max(candidates, key=worst)


def _usd(nanos: int) -> str:
    return f"${Decimal(nanos) / NANOS_PER_USD:.4f}"


def refuse(reason: str, *, limit: Decimal, scope: str = "user") -> NoReturn:
    """The one place a call is refused for its budget (the user's or a team's)."""
    raise BudgetExceeded(reason, limit=limit, scope=scope)


def _check_fits(*, who: str, limit: Decimal, spent: int, held: int, amount: int) -> None:
    """Refuse unless spent + held + amount fits `limit`; `who` names the budget's owner
    in the reason ("you have ... your", or "your team Sales has ... its")."""
    if spent + held + amount > int(limit * NANOS_PER_USD):
        subject, possessive = ("you have", "your") if who == "you" else (f"{who} has", "its")
        refuse(
            f"This request could cost up to {_usd(amount)}; {subject} spent "
            f"{_usd(spent)} of {possessive} ${limit} monthly budget"
            + (f" and {_usd(held)} is held by calls in progress" if held else "")
            + ". Try a shorter request or a lower max_tokens, or ask staff for more.",
            limit=limit,
            scope="user" if who == "you" else "team",
        )


def reserve_budget(
    *,
    user: User,
    provider: Provider,
    model: str,
    max_tokens: int | None,
    prompt_tokens: int,
) -> Reservation:
    """Hold the worst-case cost of one call, or raise BudgetExceeded before any call.

    The call must fit the user's budget and the budget of every team the user is in
    (usage.teams); the hold counts against all of them until it settles. For a user
    without a limit and without a team nothing is stored: the reservation returned is
    unsaved (pk None), and settle_reservation / release_reservation accept it all the same.
    """
    now = timezone.now()
    limit = monthly_limit(user=user)
    teams = teams_of(user=user)
    limited = [team for team in teams if team.monthly_limit is not None]
    amount = worst_case_nanos(
        provider=provider, model=model, max_tokens=max_tokens, prompt_tokens=prompt_tokens, at=now
    )
    if amount is None and (limit is not None or limited):
        # Unknown cost cannot be checked against a limit; staff can price the model (even at 0).
        whose = f"your monthly budget of ${limit}" if limit is not None else "your team's budget"
        refuse(
            f"The model {model!r} has no price, so its cost cannot be checked against "
            f"{whose}. Ask staff to add a price for it.",
            limit=limit if limit is not None else Decimal(limited[0].monthly_limit or 0),
            scope="user" if limit is not None else "team",
        )
    reservation = Reservation(
        user_id=user.pk,
        provider=provider,
        model=model,
        amount_nanos=amount or 0,
        created_at=now,
        expires_at=now + RESERVATION_TTL,
    )
    if limit is None and not teams:
        # Nothing to enforce or count, so nothing to hold: an unsaved reservation (no
        # row, no transaction on the hot path) that settle and release accept. Its spend
        # still counts once recorded, should a limit be set later.
        return reservation
    with transaction.atomic():
        # Serialise this user's reservations, then each limited team's (module docstring).
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        lock_teams(limited)
        if limit is not None:
            _check_fits(
                who="you",
                limit=limit,
                spent=month_spend_nanos(user=user, at=now),
                held=_held_nanos(user=user, now=now),
                amount=amount or 0,
            )
        start, end = month_bounds(now)
        for team in limited:
            _check_fits(
                who=f"your team {team.group.name}",
                limit=Decimal(team.monthly_limit or 0),
                spent=team_spend_nanos(group_id=team.group_id, start=start, end=end),
                held=team_held_nanos(group_id=team.group_id, now=now),
                amount=amount or 0,
            )
        reservation.save(force_insert=True)
        if teams:
            reservation.teams.add(*[team.group_id for team in teams])
        return reservation


def settle_reservation(
    *, reservation: Reservation, records: Iterable[UsageRecord] = ()
) -> Reservation:
    """The call ended: stop holding the worst case. The records now count as spend, the
    user's and (linked first, so no moment counts neither) that of the reservation's
    teams; the alert check runs after, on the queue."""
    records = list(records)
    actual = sum(r.cost_nanos or 0 for r in records)
    if reservation._state.adding:  # never saved: no limit and no team, nothing was held
        reservation.status, reservation.actual_nanos = Reservation.Status.SETTLED, actual
        return reservation
    team_ids = list(reservation.teams.values_list("pk", flat=True))
    link_records(records=records, group_ids=team_ids)
    Reservation.objects.filter(pk=reservation.pk, status=Reservation.Status.ACTIVE).update(
        status=Reservation.Status.SETTLED, actual_nanos=actual
    )
    reservation.refresh_from_db()
    if records:
        schedule_alert_check(user_id=reservation.user_id, team_ids=team_ids)
    return reservation


def schedule_alert_check(*, user_id: int, team_ids: list[int]) -> None:
    """Enqueue the 80%/100% alert check (usage.alerts), ids only, once the settling
    transaction commits: it reads sums and may send mail, so never on the caller's path."""
    from usage.tasks import check_budget_alerts  # usage.tasks -> usage.alerts -> here

    transaction.on_commit(lambda: check_budget_alerts(user_id, team_ids))


def release_reservation(*, reservation: Reservation) -> Reservation:
    """The call never reached upstream (or was abandoned): drop the hold."""
    if reservation._state.adding:  # never saved: an unlimited user's, nothing was held
        reservation.status = Reservation.Status.RELEASED
        return reservation
    Reservation.objects.filter(pk=reservation.pk, status=Reservation.Status.ACTIVE).update(
        status=Reservation.Status.RELEASED
    )
    reservation.refresh_from_db()
    return reservation


def release_hold(*, reservation_id: int | None) -> None:
    """`release_reservation` by id, for a hold a message or a task refers to by its id
    (None: the user had no limit, nothing was held)."""
    if reservation_id is None:
        return
    for reservation in Reservation.objects.filter(pk=reservation_id):
        release_reservation(reservation=reservation)


def remaining_budget(*, user: User) -> Decimal | None:
    limit = monthly_limit(user=user)
    if limit is None:
        return None
    now = timezone.now()
    used = month_spend_nanos(user=user, at=now) + _held_nanos(user=user, now=now)
    return limit - (nanos_to_usd(used) or Decimal(0))
