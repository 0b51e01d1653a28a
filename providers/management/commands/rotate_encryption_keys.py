from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from providers.crypto import get_keyring
from providers.rotation import rotate_all


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret under the first key of ENCRYPTION_KEYS. Put the new "
        "key first and keep the old ones after it until this has run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, batch_size: int, **options: Any) -> None:
        primary = get_keyring().primary_key_id
        report = rotate_all(batch_size=batch_size)
        failed = 0
        for name, counts in report.items():
            self.stdout.write(
                f"{name}: {counts.rotated} re-encrypted, {counts.current} already under "
                f"{primary}, {counts.failed} could not be decrypted"
            )
            failed += counts.failed
        if failed:
            raise CommandError(
                f"{failed} value(s) could not be decrypted with any configured key; "
                "they were left unchanged."
            )
        self.stdout.write(self.style.SUCCESS(f"Every stored secret is under key {primary}."))
