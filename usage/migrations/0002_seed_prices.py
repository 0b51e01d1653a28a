"""Seed ModelPrice with the published list prices of each kind's default models.

Prices are USD per million tokens, the providers' list prices as published on their
pricing pages as of 2025-11 (standard tier, prompts under any long-context surcharge).
`valid_from` is set to 2024-01-01 as a floor so that demo and historical records are
priced; it is not each provider's effective date. Staff edit or add versions in the
admin; a newer `valid_from` row supersedes these without rewriting old records.
Entries are prefixes so dated snapshots (gpt-4o-2024-08-06, claude-3-5-haiku-latest)
match; the longest prefix wins, so gpt-4o-mini never takes gpt-4o's price.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from django.db import migrations

SEEDED_AT = datetime(2024, 1, 1, tzinfo=UTC)
NOTE = "List price as of 2025-11 (seed)"

# kind, model, match, input, output, cached input (read), cache write
PRICES = [
    ("openai", "gpt-4o-mini", "prefix", "0.150", "0.600", "0.075", None),
    ("openai", "gpt-4o", "prefix", "2.500", "10.000", "1.250", None),
    ("openai", "gpt-4o-2024-05-13", "exact", "5.000", "15.000", None, None),
    ("openai", "gpt-4.1", "prefix", "2.000", "8.000", "0.500", None),
    ("openai", "gpt-4.1-mini", "prefix", "0.400", "1.600", "0.100", None),
    ("openai", "gpt-4.1-nano", "prefix", "0.100", "0.400", "0.025", None),
    ("anthropic", "claude-3-5-haiku", "prefix", "0.800", "4.000", "0.080", "1.000"),
    ("anthropic", "claude-haiku-4-5", "prefix", "1.000", "5.000", "0.100", "1.250"),
    ("anthropic", "claude-3-5-sonnet", "prefix", "3.000", "15.000", "0.300", "3.750"),
    ("anthropic", "claude-3-7-sonnet", "prefix", "3.000", "15.000", "0.300", "3.750"),
    ("anthropic", "claude-sonnet-4", "prefix", "3.000", "15.000", "0.300", "3.750"),
    ("anthropic", "claude-3-opus", "prefix", "15.000", "75.000", "1.500", "18.750"),
    ("anthropic", "claude-opus-4", "prefix", "15.000", "75.000", "1.500", "18.750"),
    ("anthropic", "claude-opus-4-5", "prefix", "5.000", "25.000", "0.500", "6.250"),
    ("deepseek", "deepseek-chat", "exact", "0.280", "0.420", "0.028", None),
    ("deepseek", "deepseek-reasoner", "exact", "0.280", "0.420", "0.028", None),
]


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def seed(apps, schema_editor):
    ModelPrice = apps.get_model("usage", "ModelPrice")
    for kind, model, match, inp, out, cached, write in PRICES:
        ModelPrice.objects.get_or_create(
            provider_kind=kind,
            model=model,
            match=match,
            valid_from=SEEDED_AT,
            defaults={
                "input_per_mtok": Decimal(inp),
                "output_per_mtok": Decimal(out),
                "cached_input_per_mtok": _dec(cached),
                "cache_write_per_mtok": _dec(write),
                "note": NOTE,
            },
        )


def unseed(apps, schema_editor):
    ModelPrice = apps.get_model("usage", "ModelPrice")
    ModelPrice.objects.filter(valid_from=SEEDED_AT, note=NOTE).delete()


class Migration(migrations.Migration):
    dependencies = [("usage", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
