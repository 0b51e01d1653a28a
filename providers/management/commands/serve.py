from __future__ import annotations

from typing import Any

import uvicorn
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from metrics import multiproc
from providers import first_run


def uvicorn_options() -> dict[str, Any]:
    """How `serve` runs uvicorn. X-Forwarded-For is read only from the proxies named in
    FORWARDED_ALLOW_IPS: uvicorn's own default trusts 127.0.0.1, so with no proxy in
    front any local client could choose the address that sign-in throttling and the
    audit log record."""
    return {
        "lifespan": "on",
        "log_level": "info",
        "log_config": None,  # the settings' LOGGING, whose handler redacts secrets
        "timeout_graceful_shutdown": 10,
        "proxy_headers": bool(settings.FORWARDED_ALLOW_IPS),
        "forwarded_allow_ips": settings.FORWARDED_ALLOW_IPS or None,
    }


class Command(BaseCommand):
    help = "Run the system checks, then serve the app with uvicorn (and, embedded, its worker)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        # Fails fast on, e.g., an API key the configured keyring cannot decrypt.
        call_command("check")
        # The pages name their static files through the collected manifest: without it
        # every page is a 500 (`make run` collected them too; a bare `serve` had not).
        call_command("collectstatic", interactive=False, verbosity=0)
        # The embedded deployment's one process: an earlier run's metrics files go.
        multiproc.start_process(only_writer=True)
        if first_run.demo_provider_in_use():
            self._start_demo_upstream()
        self.stdout.write(f"Switchboard is running on http://{host}:{port}/ (Ctrl-C stops it).")
        uvicorn.run("config.asgi:application", host=host, port=port, **uvicorn_options())

    def _start_demo_upstream(self) -> None:
        from providers.fake_upstream import FakeUpstream, Knobs

        # Human-paced tokens so the demo looks like a real model answering.
        demo = FakeUpstream(
            Knobs(ttft_ms=250, delay_ms=35, tokens=80), port=settings.DEMO_UPSTREAM_PORT
        )
        demo.start()
        self.stdout.write(f"The demo provider's local upstream answers on {demo.url}.")
