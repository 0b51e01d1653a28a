"""``python manage.py fake_upstream --port 8765``: serve the fake LLM provider for demos.

Per-request knobs go in the model name or the base URL path; see
`providers.fake_upstream.knobs`. The options below set the defaults.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from providers.fake_upstream import FakeUpstream, Knobs


class Command(BaseCommand):
    help = "Serve a fake OpenAI/Anthropic-compatible upstream on a loopback port."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--ttft-ms", type=int, default=300, help="time to first token")
        parser.add_argument("--delay-ms", type=int, default=40, help="delay between tokens")
        parser.add_argument("--tokens", type=int, default=60, help="tokens per answer")
        parser.add_argument("--seed", type=int, default=0, help="picks the deterministic text")

    def handle(self, *args: Any, **options: Any) -> None:
        defaults = Knobs(
            ttft_ms=options["ttft_ms"],
            delay_ms=options["delay_ms"],
            tokens=options["tokens"],
            seed=options["seed"],
        )
        fake = FakeUpstream(defaults, host=options["host"], port=options["port"], log_level="info")
        self.stdout.write(
            f"Fake upstream on {fake.url}: OpenAI base URL {fake.openai_base_url()}, "
            f"Anthropic base URL {fake.anthropic_base_url()}. Any key works except one "
            "containing 'invalid'. Ctrl-C stops it."
        )
        fake.serve_forever()
