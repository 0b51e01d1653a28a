"""Realistic synthetic usage for demos and the million-row report benchmark.

Costs use integer arithmetic: a price per million tokens with 3 decimals is a whole
number of nano-dollars per token (price x 1000), so tokens x that is exact and far
faster than Decimal for a million rows (the test suite checks it equals `pricing`).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Field
from django.utils import timezone

from providers.kinds import ProviderKind
from providers.models import Provider
from usage.models import OUTCOME_OK, OUTCOME_OVER_BUDGET, Source, UsageRecord
from usage.pricing import PriceSnapshot, find_price

if TYPE_CHECKING:
    from django.contrib.auth.models import User

T = TypeVar("T")

# kind -> [(model, weight)]
MODELS = {
    ProviderKind.OPENAI: [
        ("gpt-4o-mini", 40),
        ("gpt-4o", 12),
        ("gpt-4.1", 6),
        ("gpt-4.1-mini", 10),
    ],
    ProviderKind.ANTHROPIC: [
        ("claude-3-5-haiku-latest", 14),
        ("claude-sonnet-4-20250514", 10),
        ("claude-opus-4-1", 2),
    ],
    ProviderKind.DEEPSEEK: [("deepseek-chat", 10), ("deepseek-reasoner", 4)],
}
OUTCOMES = [
    (OUTCOME_OK, 9300),
    ("rate_limit", 250),
    ("overloaded", 90),
    ("provider_error", 60),
    ("network", 60),
    ("timeout", 40),
    ("cancelled", 150),
    ("auth", 10),
    (OUTCOME_OVER_BUDGET, 40),
]
SOURCES = [(Source.CHAT, 70), (Source.API, 26), (Source.ADMIN_TEST, 4)]


@dataclass(frozen=True)
class Choice:
    provider: Provider
    model: str
    nanos_per_token: tuple[int, int, int] | None  # input, cached input, output
    snapshot: dict[str, object] | None


def _ensure_providers() -> list[Provider]:
    providers = []
    for kind in MODELS:
        found = Provider.objects.filter(kind=kind).order_by("created_at").first()
        if found is None:
            # Inactive, so the chat never offers it; the key is a placeholder.
            found = Provider(name=f"Synthetic {kind.label}", kind=kind, is_active=False)
            found.set_api_key(f"sk-synthetic-{uuid.uuid4().hex}")
            found.save()
        providers.append(found)
    return providers


def _ensure_users(count: int) -> list[User]:
    user_model = get_user_model()
    users = list(user_model.objects.order_by("pk")[:count])
    for i in range(len(users), count):
        user = user_model(username=f"demo-user-{i + 1:03d}")
        user.set_unusable_password()
        user.save()
        users.append(user)
    return users


def _nanos(snapshot: PriceSnapshot) -> tuple[int, int, int]:
    return (
        int(snapshot.input * 1000),
        int(snapshot.cached_input * 1000),
        int(snapshot.output * 1000),
    )


def _choices(now: datetime) -> list[tuple[Choice, int]]:
    out = []
    for provider in _ensure_providers():
        for model, weight in MODELS[ProviderKind(provider.kind)]:
            price = find_price(provider_kind=provider.kind, model=model, at=now)
            snap = PriceSnapshot.from_price(price) if price else None
            nanos = _nanos(snap) if snap else None
            out.append((Choice(provider, model, nanos, snap.as_json() if snap else None), weight))
    return out


def insert_rows(rows: list[dict[str, object]]) -> None:
    """A batched INSERT of ready rows: `bulk_create` without building model instances.

    Profiling bulk_create for a million rows showed ~90% of the time in per-value
    preparation; here only the values that need it (UUID, datetime, JSON) are adapted,
    through the fields' own `get_db_prep_save`, so the stored form is the ORM's.
    """
    if not rows:
        return
    prepared = {"provider_id", "created_at", "price_snapshot"}
    qn = connection.ops.quote_name
    fields: list[Field[Any, Any]] = []
    columns: list[str] = []
    for name in rows[0]:
        field = UsageRecord._meta.get_field(name)
        # The rows name columns only (never a reverse relation).
        assert isinstance(field, Field)
        assert field.column is not None
        fields.append(field)
        columns.append(qn(field.column))
    # Identifiers are the model's own, quoted by the backend; values go as parameters.
    sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608
        qn(UsageRecord._meta.db_table),
        ", ".join(columns),
        ", ".join(["%s"] * len(fields)),
    )
    cache: dict[tuple[str, int], Any] = {}

    def prep(field: Field[Any, Any], value: object) -> Any:
        if field.attname not in prepared or value is None:
            return value
        if field.attname == "created_at":
            return field.get_db_prep_save(value, connection)
        key = (field.attname, id(value))  # few distinct providers and price snapshots
        if key not in cache:
            cache[key] = field.get_db_prep_save(value, connection)
        return cache[key]

    params = [tuple(prep(f, row[f.attname]) for f in fields) for row in rows]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _timestamps(rng: random.Random, records: int, days: int, now: datetime) -> Iterator[datetime]:
    """`records` times over the last `days` local days, in order, as a live system writes
    them (row order on disk matters to range scans). Weekends are quieter; afternoons
    busier; today only runs up to `now`."""
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    first = midnight - timedelta(days=days - 1)
    weights = [0.4 if (first + timedelta(days=d)).weekday() >= 5 else 1.0 for d in range(days)]
    counts = [int(records * w / sum(weights)) for w in weights]
    counts[-1] += records - sum(counts)
    for d, n in enumerate(counts):
        start = first + timedelta(days=d)
        span = min(86400.0, (now - start).total_seconds())
        for sec in sorted(rng.triangular(0, 86400, 54000) for _ in range(n)):
            yield start + timedelta(seconds=sec * span / 86400)


def _picker(rng: random.Random, items: Sequence[tuple[T, int]]) -> Callable[[], T]:
    values, weights = zip(*items, strict=True)
    return lambda: rng.choices(values, weights)[0]


def generate(
    *,
    records: int,
    days: int = 90,
    users: int = 25,
    seed: int = 1,
    batch: int = 5000,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Insert `records` UsageRecords spread over the last `days` days; returns the count."""
    rng = random.Random(seed)
    now = now or timezone.now()
    models = _choices(now)
    people = _ensure_users(users)
    # A few heavy users and a long tail, as real teams look.
    pick_user = _picker(rng, [(u, max(1, int(100 / (i + 1)))) for i, u in enumerate(people)])
    # People settle on a few models each rather than spreading over all of them.
    pick_model_of = {u.pk: _picker(rng, rng.sample(models, k=min(3, len(models)))) for u in people}
    pick_outcome = _picker(rng, OUTCOMES)
    pick_source = _picker(rng, SOURCES)
    run = uuid.uuid4().hex[:8]
    times = _timestamps(rng, records, days, now)
    made = 0
    while made < records:
        rows = []
        for i in range(made, min(made + batch, records)):
            user = pick_user()
            choice: Choice = pick_model_of[user.pk]()
            outcome = pick_outcome()
            cache_hit = outcome == OUTCOME_OK and rng.random() < 0.06
            refused = outcome == OUTCOME_OVER_BUDGET
            inp = 0 if refused else int(rng.lognormvariate(6.6, 0.9))
            cached = int(inp * rng.choice((0, 0, 0, 0.5, 0.8))) if inp else 0
            out = (
                0
                if refused or outcome in ("rate_limit", "auth")
                else int(rng.lognormvariate(5.6, 0.8))
            )
            if outcome == "rate_limit":
                inp = cached = 0
            ttft = (
                None
                if refused or outcome in ("rate_limit", "auth")
                else int(rng.lognormvariate(6.0, 0.5))
            )
            latency = 0 if refused else (ttft or 40) + out * rng.randint(8, 25)
            if cache_hit or refused:
                cost = 0
            elif choice.nanos_per_token is None:
                cost = None
            else:
                pin, pcached, pout = choice.nanos_per_token
                cost = (inp - cached) * pin + cached * pcached + out * pout
            at = next(times)
            rows.append(
                {
                    "provider_id": choice.provider.pk,
                    "model": choice.model,
                    "user_id": user.pk,
                    "source": pick_source(),
                    "message_id": None,
                    "request_id": f"syn-{run}-{i}",
                    "alias": "",
                    "routing_step": "",
                    "attempt_number": 0 if refused else 1,
                    "outcome": outcome,
                    "status_code": None if refused else (200 if outcome == OUTCOME_OK else 500),
                    "cache_hit": cache_hit,
                    "input_tokens": inp,
                    "cached_input_tokens": cached,
                    "cache_write_tokens": 0,
                    "reasoning_tokens": out // 2 if choice.model == "deepseek-reasoner" else 0,
                    "output_tokens": out,
                    "total_tokens": inp + out,
                    "tokens_estimated": outcome == "cancelled",
                    "ttft_ms": ttft,
                    "latency_ms": latency,
                    "cost_nanos": cost,
                    "price_snapshot": None
                    if cost is None or cache_hit or refused
                    else choice.snapshot,
                    "created_at": at,
                }
            )
        insert_rows(rows)
        made += len(rows)
        if progress:
            progress(made)
    return made
