from __future__ import annotations

from typing import Any

import uvicorn
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run the system checks, then serve the app with uvicorn (and, embedded, its worker)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        # Fails fast on, e.g., an API key the configured keyring cannot decrypt.
        call_command("check")
        self.stdout.write(f"Switchboard is running on http://{host}:{port}/ (Ctrl-C stops it).")
        uvicorn.run(
            "config.asgi:application",
            host=host,
            port=port,
            lifespan="on",
            log_level="info",
            timeout_graceful_shutdown=10,
        )
