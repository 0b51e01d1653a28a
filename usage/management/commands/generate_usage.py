"""Fill the database with realistic synthetic usage (demos, the report benchmark)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection

from usage import rollup
from usage.synthetic import generate


class Command(BaseCommand):
    help = "Insert N synthetic usage records over the last D days, then rebuild the rollup."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--records", type=int, required=True)
        parser.add_argument("--days", type=int, default=90)
        parser.add_argument("--users", type=int, default=25)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--no-rollup", action="store_true")

    def handle(self, *args: object, **opts: Any) -> None:
        started = time.monotonic()

        def progress(done: int) -> None:
            if done % 100_000 == 0 or done == opts["records"]:
                self.stdout.write(f"  {done:,} records ({time.monotonic() - started:.0f} s)")

        made = generate(
            records=opts["records"],
            days=opts["days"],
            users=opts["users"],
            seed=opts["seed"],
            progress=progress,
        )
        if connection.vendor == "postgresql":
            # Fresh statistics for the planner, as autovacuum would gather a bit later.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE usage_usagerecord")
        if not opts["no_rollup"]:
            rollup.rebuild_all()
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("ANALYZE usage_usagedaily")
        self.stdout.write(
            self.style.SUCCESS(
                f"Generated {made:,} usage records in {time.monotonic() - started:.1f} s."
            )
        )
