"""Non-streaming throughput: POST /api/generate against direct `AsyncOpenAI` calls.

Run: ``.venv/bin/python -m tests.bench.bench_api_throughput [--seconds S] [--clients N]``

N clients (default 50) each send one request after another for S seconds (after a short
warm-up), first straight to the fake upstream with the official SDK, non-streaming, then
to Switchboard's /api/generate with a personal API token (validation, budget reservation,
the upstream call through the engine, metering), on the embedded and the scale-out
deployment. Fake: ttft 50 ms, 20 tokens 10 ms apart (a call takes ~250 ms upstream).
Prints requests per second, the ratio to direct and latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx2
import openai

from tests.bench import common

FAKE = {"ttft_ms": 50, "delay_ms": 10, "tokens": 20}
PROMPT = "Say something about switchboards."
WARMUP_SECONDS = 2.0


async def closed_loop(
    call: Callable[[], Awaitable[None]], clients: int, seconds: float
) -> tuple[list[float], int, float]:
    """(latencies of calls that succeeded and ended in the window, failures, window s).

    Each client calls back to back until the deadline; a call still running then is
    not counted (its latency is cut short)."""
    latencies: list[float] = []
    failures = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal failures
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                await asyncio.wait_for(call(), timeout=30)
            except Exception as exc:
                failures += 1
                if failures <= 3:
                    print(f"  failure: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            if time.perf_counter() <= deadline:
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, failures, min(seconds, time.perf_counter() - started)


def row(name: str, latencies: list[float], failures: int, window: float) -> dict:
    return {
        "path": name,
        "requests": len(latencies),
        "rps": len(latencies) / window,
        "failures": failures,
        "latency": common.summary_ms(latencies),
    }


async def measure_direct(fake_url: str, clients: int, seconds: float) -> dict:
    limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)
    direct = openai.AsyncOpenAI(
        base_url=f"{fake_url}/v1",
        api_key="sk-bench",
        max_retries=0,
        http_client=openai.DefaultAsyncHttpxClient(limits=limits),
    )

    async def call() -> None:
        reply = await direct.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": PROMPT}]
        )
        assert reply.choices[0].message.content

    await closed_loop(call, clients, WARMUP_SECONDS)
    result = row("direct", *await closed_loop(call, clients, seconds))
    await direct.close()
    return result


async def measure_api(dep: common.Deployment, clients: int, seconds: float) -> dict:
    headers = {"Authorization": f"Bearer {dep.setup.api_token}"}
    body = {"provider_id": dep.setup.provider_id, "prompt": PROMPT}
    async with common.client_for(dep, clients) as client:

        async def call() -> None:
            response = await client.post("/api/generate", json=body, headers=headers)
            if response.status_code != 200 or not response.json()["success"]:
                raise RuntimeError(f"{response.status_code}: {response.text[:200]}")

        await closed_loop(call, clients, WARMUP_SECONDS)
        cpu = common.cpu_seconds(dep.web_pid)
        result = row(f"api/{dep.kind}", *await closed_loop(call, clients, seconds))
        used = common.cpu_seconds(dep.web_pid) - cpu
        result["web_cpu_ms_per_request"] = used * 1000 / max(1, result["requests"])
        result["web_cpu_share"] = used / seconds  # 1.0 = one core busy all the time
    return result


def run(deployments: list[str], clients: int, seconds: float, py_spy: bool) -> list[dict]:
    rows = []
    with common.fake_upstream(**FAKE) as fake_url:
        rows.append(asyncio.run(measure_direct(fake_url, clients, seconds)))
        for kind in deployments:
            with common.deployment(kind, fake_url) as dep:
                pids = {"web": dep.web_pid}
                with common.profiled(f"api_throughput-{kind}", pids, enabled=py_spy) as files:
                    rows.append(asyncio.run(measure_api(dep, clients, seconds)))
                for file in files:
                    print(f"profile: {file.relative_to(common.ROOT)}")
    direct_rps = rows[0]["rps"]
    for r in rows:
        r["ratio_to_direct"] = r["rps"] / direct_rps if direct_rps else float("nan")
    return rows


def report(rows: list[dict], clients: int) -> None:
    columns = ["path", "clients", "requests", "req/s", "x direct", "p50", "p95", "p99"]
    columns += ["web cpu/req", "web cores", "fail"]
    table = [
        [
            *(r["path"], clients, r["requests"], r["rps"], f"{r['ratio_to_direct']:.2f}"),
            *(r["latency"]["p50"], r["latency"]["p95"], r["latency"]["p99"]),
            *(r.get("web_cpu_ms_per_request", "-"), r.get("web_cpu_share", "-"), r["failures"]),
        ]
        for r in rows
    ]
    common.print_table(columns, table)
    print("latency in ms; web cpu/req = the web process's CPU ms per request; web cores = its")
    print("CPU time / wall time (1.0 = one core saturated: one process is bound by the GIL)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", nargs="+", default=list(common.DEPLOYMENTS))
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--py-spy", action="store_true", help="profile the web process")
    args = parser.parse_args()
    rows = run(args.deployments, args.clients, args.seconds, args.py_spy)
    report(rows, args.clients)
    meta = {**common.machine(), "fake": FAKE, "clients": args.clients, "seconds": args.seconds}
    path = common.write_json("api_throughput", {"meta": meta, "rows": rows})
    print(f"wrote {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
