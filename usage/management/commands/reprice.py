"""Re-cost usage records in a date range with the prices now in the table."""

from __future__ import annotations

from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandParser

from usage.models import usd_text
from usage.repricing import reprice
from usage.rollup import day_start


class Command(BaseCommand):
    help = (
        "Re-cost usage records made on --from..--to (local days, inclusive) with the "
        "current price table. Use --dry-run first: it shows old and new totals only."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="first", type=date.fromisoformat, required=True)
        parser.add_argument("--to", dest="last", type=date.fromisoformat, required=True)
        parser.add_argument("--dry-run", action="store_true")

    def handle(
        self, *args: object, first: date, last: date, dry_run: bool, **options: object
    ) -> None:
        if first > last:
            self.stderr.write("--from is after --to; nothing to do.")
            return
        lines = reprice(
            start=day_start(first), end=day_start(last + timedelta(days=1)), dry_run=dry_run
        )
        self.stdout.write(
            f"{'kind':<12} {'model':<32} {'records':>9} {'old USD':>16} {'new USD':>16}"
        )
        old = new = 0
        for ln in lines:
            old, new = old + ln.old_nanos, new + ln.new_nanos
            note = f"  ({ln.new_unpriced} unpriced)" if ln.new_unpriced else ""
            self.stdout.write(
                f"{ln.provider_kind:<12} {ln.model:<32} {ln.records:>9} "
                f"{usd_text(ln.old_nanos):>16} {usd_text(ln.new_nanos):>16}{note}"
            )
        self.stdout.write(f"{'total':<45} {'':>9}{usd_text(old):>16} {usd_text(new):>16}")
        verb = (
            "Dry run: nothing changed." if dry_run else "Repriced; rollup rebuilt for those days."
        )
        self.stdout.write(self.style.SUCCESS(f"{verb} Difference: {usd_text(new - old)} USD"))
