"""Time to first token of a routed call whose first target fails fast, against a direct
call to the target that answers (issue 17).

Run: ``.venv/bin/python -m tests.bench.bench_routing_fallback [--rounds N]``

In one process: the fake upstream on loopback (ttft 50 ms, 20 tokens 10 ms apart), a
throwaway SQLite database, and the engine called as the paths call it. Each round streams
(a) straight from the answering provider (`engine.stream_generation`), (b) through
`routing.engine.stream_routed` with a first target on a closed port (connection refused),
(c) the same with a first target answering 429. TTFT is from the call to the first text
delta. Prints medians and p95, and the added time of (b) and (c) over (a). Every routed
round also records the failing target's health (routing.health) as the paths do; a
health threshold above the rounds keeps the order fixed. Last, the cost of planning a
call with its health lookup (`health.annotate` + `plan`, two targets) in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import tempfile
import time


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DATA_DIR"] = tempfile.mkdtemp(prefix="switchboard-bench-routing-")
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    import django
    from django.core.management import call_command

    from providers.crypto import generate_key_entry

    os.environ["ENCRYPTION_KEYS"] = generate_key_entry()
    django.setup()
    call_command("migrate", verbosity=0)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    _setup()

    from django.conf import settings

    from providers import engine
    from providers.adapters.base import ChatMessage, GenerationRequest, TextDelta
    from providers.adapters.clients import aclose_clients
    from providers.fake_upstream import FakeUpstream, Knobs
    from providers.models import Provider
    from routing import health
    from routing.engine import stream_routed
    from routing.plans import Target, plan

    # Count every failure (as in production) but never cool: the rounds compare one order.
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "HEALTH_FAILURES": 10**9}

    def provider(name: str, base_url: str) -> Provider:
        made = Provider(name=name, kind="openai", base_url=base_url, default_model="fake-model")
        made.set_api_key("sk-bench-0123456789abcdef")
        made.save()
        return made

    request = GenerationRequest(
        model="fake-model", messages=(ChatMessage.of_text("user", "Say something."),)
    )

    async def ttft(items: object) -> float:
        started = time.perf_counter()
        first = None
        async for item in items:  # type: ignore[attr-defined]
            if first is None and isinstance(item, TextDelta):
                first = time.perf_counter() - started
        assert first is not None, "no text"
        return first

    with FakeUpstream(Knobs(ttft_ms=50, delay_ms=10, tokens=20)) as fake:
        good = provider("answering", fake.openai_base_url(""))
        refused = provider("refused", f"http://127.0.0.1:{_closed_port()}/v1")
        limited = provider("limited", fake.openai_base_url("fault=429"))
        to_good = Target(good, "fake-model")

        async def run() -> dict[str, list[float]]:
            times: dict[str, list[float]] = {"direct": [], "refused first": [], "429 first": []}
            try:
                # Warm the models caches and the pooled clients first.
                await ttft(engine.stream_generation(good, request))
                for first in (refused, limited):
                    await ttft(stream_routed([Target(first, "fake-model"), to_good], request))
                for _ in range(args.rounds):
                    times["direct"].append(await ttft(engine.stream_generation(good, request)))
                    routed = stream_routed([Target(refused, "fake-model"), to_good], request)
                    times["refused first"].append(await ttft(routed))
                    routed = stream_routed([Target(limited, "fake-model"), to_good], request)
                    times["429 first"].append(await ttft(routed))
            finally:
                await aclose_clients()
            return times

        times = asyncio.run(run())
        two = [Target(refused, "fake-model"), to_good]
        plans = []
        for _ in range(2000):
            started = time.perf_counter()
            plan(health.annotate(two))
            plans.append(time.perf_counter() - started)
    direct = statistics.median(times["direct"])
    print(f"rounds: {args.rounds}; fake ttft 50 ms")
    print(f"{'call':<16}{'p50 ms':>10}{'p95 ms':>10}{'added p50 ms':>15}")
    for name, values in times.items():
        p50 = statistics.median(values)
        p95 = sorted(values)[int(len(values) * 0.95) - 1]
        print(f"{name:<16}{p50 * 1000:>10.1f}{p95 * 1000:>10.1f}{(p50 - direct) * 1000:>15.1f}")
    plan_p50 = statistics.median(plans) * 1e6
    print(f"plan + health lookup (locmem, 2 targets): p50 {plan_p50:.1f} us")


if __name__ == "__main__":
    main()
