from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand

from providers import first_run


class Command(BaseCommand):
    help = (
        "Prepare a fresh installation: create the secret and encryption key files if none "
        "are configured, apply migrations and create the first admin. Safe to run again."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if path := first_run.ensure_secret_key():
            self.stdout.write(f"Using the Django secret key in {path}.")
        if path := first_run.ensure_encryption_key_file():
            self.stdout.write(
                self.style.WARNING(
                    f"Created the encryption key file {path} (mode 0600). Back it up: "
                    "without it, stored API keys cannot be read."
                )
            )
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database is up to date.")
        for name in first_run.import_env_providers():
            self.stdout.write(f"Imported the {name} API key from the environment (encrypted).")
        if first_run.ensure_demo_provider():
            self.stdout.write(
                f"Added the provider '{first_run.DEMO_PROVIDER_NAME}': a local stand-in that "
                "answers with placeholder text, so you can try the chat before adding a real key."
            )
        admin = first_run.ensure_admin()
        if admin is not None:
            username, password = admin
            if password:
                self.stdout.write(
                    self.style.WARNING(
                        f"Created the admin account '{username}' with password: {password}\n"
                        "It is shown only this once; change it in the admin."
                    )
                )
            else:
                self.stdout.write(f"Created the admin account '{username}' from ADMIN_PASSWORD.")
