"""Rebuild the daily usage rollup from the raw records (after imports or repairs)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from usage import rollup


class Command(BaseCommand):
    help = "Drop and rebuild the daily usage rollup from raw usage records (closed days)."

    def handle(self, *args: object, **options: object) -> None:
        done = rollup.rebuild_all()
        self.stdout.write(self.style.SUCCESS(f"Rollup complete through {done or '(no records)'}."))
