"""Time to first token added by /v1/chat/completions, against a direct SDK stream.

Run: ``.venv/bin/python -m tests.bench.bench_gateway_ttft [--rounds N]``

Three processes on loopback: the fake upstream (ttft 50 ms, 20 tokens 10 ms apart),
Switchboard under uvicorn (its own database, SQLite or ``--database-url`` PostgreSQL, one
OpenAI-kind provider on the fake), and this script, the client: the official
`AsyncOpenAI` streaming either straight from the fake or through the gateway, at 1,
10 and 50 concurrent streams, side by side in one run. TTFT is measured from the call
to the first content chunk. Prints medians and p95/p99 and writes JSON to
bench-results/.

``--compare-metrics`` starts a second gateway, on the same database, with Prometheus
metrics on (METRICS_TOKEN set: the request middleware, the metering's counters), and
measures it as a third path in the same run: the cost of the metrics, side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
from openai.types.chat import ChatCompletionMessageParam

ROOT = Path(__file__).resolve().parents[2]
FAKE_KNOBS = {"ttft_ms": 50, "delay_ms": 10, "tokens": 20}
CONCURRENCY = (1, 10, 50)
FAKE_COMMAND = [
    sys.executable, "manage.py", "fake_upstream", "--ttft-ms", "50", "--delay-ms", "10",
    "--tokens", "20",
]  # fmt: skip
GATEWAY_COMMAND = [
    sys.executable, "-m", "uvicorn", "config.asgi:application", "--lifespan", "off",
    "--no-access-log", "--log-level", "warning",
]  # fmt: skip
PROMPT: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Say something about switchboards."}
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60.0) -> None:  # a busy machine starts slowly
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


@contextlib.contextmanager
def database(data_dir: str, server_url: str | None) -> Iterator[str]:
    """A throwaway database: SQLite in `data_dir`, or one on the PostgreSQL server given."""
    if not server_url:
        yield f"sqlite:///{data_dir}/bench.sqlite3"
        return
    import psycopg

    name = f"bench_gateway_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_environment(data_dir: str, database_url: str, settings: str) -> dict[str, str]:
    from providers.crypto import generate_key_entry

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings,
        "DATA_DIR": data_dir,
        "SECRET_KEY": "bench-only-secret-key-0123456789abcdef0123456789",
        "ENCRYPTION_KEYS": generate_key_entry(),
        "HTTPS": "false",
        "DEMO_PROVIDER": "false",
        "EMBEDDED_WORKER": "false",
        "LOG_LEVEL": "WARNING",
        "REDIS_URL": "",
        "DATABASE_URL": database_url,
    }


def prepare_database(env: dict[str, str], fake_base_url: str) -> str:
    """Migrate, add the provider and a token; returns the raw token."""
    script = f"""
import django
django.setup()
from django.contrib.auth import get_user_model
from django.core.management import call_command
from generation.api_tokens import ApiToken
from providers.models import Provider
call_command("migrate", verbosity=0)
user = get_user_model().objects.create_user("bench")
provider = Provider(name="fake", kind="openai", base_url={fake_base_url!r})
provider.set_api_key("sk-bench-0123456789")
provider.save()
print(ApiToken.issue(user=user, name="bench")[1])
"""
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, check=True, capture_output=True
    )
    return out.stdout.decode().strip().splitlines()[-1]


async def one_stream(client: openai.AsyncOpenAI, model: str) -> tuple[float, float, int]:
    """(ttft, total seconds, content chunks) of one streamed answer."""
    started = time.perf_counter()
    ttft, chunks = None, 0
    stream = await client.chat.completions.create(model=model, messages=PROMPT, stream=True)
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            chunks += 1
            if ttft is None:
                ttft = time.perf_counter() - started
    return ttft or float("nan"), time.perf_counter() - started, chunks


async def run_level(
    client: openai.AsyncOpenAI, model: str, concurrency: int, rounds: int
) -> list[tuple[float, float, int]]:
    samples = []
    for _ in range(rounds):
        samples += await asyncio.gather(*(one_stream(client, model) for _ in range(concurrency)))
    return samples


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(samples: list[tuple[float, float, int]]) -> dict[str, float]:
    ttfts = [s[0] * 1000 for s in samples]
    totals = [s[1] * 1000 for s in samples]
    return {
        "n": len(samples),
        "ttft_p50_ms": statistics.median(ttfts),
        "ttft_p95_ms": percentile(ttfts, 95),
        "ttft_p99_ms": percentile(ttfts, 99),
        "total_p50_ms": statistics.median(totals),
        "chunks_min": min(s[2] for s in samples),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    gateway_url: str,
    fake_url: str,
    token: str,
    *,
    rounds: int,
    levels: list[int],
    gateway_pid: int | None,
    metrics_gateway: tuple[str, int | None] | None = None,
) -> list[dict]:
    direct = openai.AsyncOpenAI(base_url=f"{fake_url}/v1", api_key="sk-bench", max_retries=0)
    gateway = openai.AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key=token, max_retries=0)
    paths = {"direct": (direct, "fake-model"), "gateway": (gateway, "fake/fake-model")}
    pids = {"gateway": gateway_pid}
    if metrics_gateway is not None:
        url, pids["metrics"] = metrics_gateway
        client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0)
        paths["metrics"] = (client, "fake/fake-model")
    for client, model in paths.values():  # warm up connections, caches, imports
        await run_level(client, model, 5, 2)
    rows = []
    for concurrency in levels:
        level_rounds = max(2, rounds * 10 // concurrency) if concurrency > 1 else rounds * 3
        results: dict[str, dict[str, Any]] = {}  # summary() plus the gateway CPU or None
        samples: dict[str, list[tuple[float, float, int]]] = {name: [] for name in paths}
        cpu_used = dict.fromkeys(paths, 0.0)
        # Round by round, the paths in turn: a machine whose load drifts during the level
        # weighs on every path alike.
        for _ in range(level_rounds):
            for name, (client, model) in paths.items():
                pid = pids.get(name)
                cpu_before = cpu_seconds(pid) if pid else 0.0
                samples[name] += await run_level(client, model, concurrency, 1)
                if pid:
                    cpu_used[name] += cpu_seconds(pid) - cpu_before
        for name in paths:
            results[name] = summary(samples[name])
            results[name]["gateway_cpu_ms_per_stream"] = None
            if pids.get(name):
                # The gateway's own CPU per stream: on a small machine, what limits it.
                used_ms = cpu_used[name] * 1000
                results[name]["gateway_cpu_ms_per_stream"] = used_ms / results[name]["n"]
        added = {
            f"added_{key}": results["gateway"][key] - results["direct"][key]
            for key in ("ttft_p50_ms", "ttft_p95_ms", "ttft_p99_ms")
        }
        if "metrics" in results:
            added |= {
                f"metrics_added_{key}": results["metrics"][key] - results["direct"][key]
                for key in ("ttft_p50_ms", "ttft_p95_ms", "ttft_p99_ms")
            }
        rows.append({"concurrency": concurrency, **results, **added})
    for client, _model in paths.values():
        await client.close()
    return rows


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def print_table(rows: list[dict]) -> None:
    head = (
        f"{'streams':>7} {'path':>8} {'n':>4} {'ttft p50':>9} {'p95':>8} {'p99':>8} "
        f"{'total p50':>10} {'added p50':>10} {'added p95':>10} {'gw cpu/stream':>14}"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        for name in ("direct", "gateway", "metrics"):
            if name not in row:
                continue
            r = row[name]
            prefix = "metrics_added" if name == "metrics" else "added"
            added = (
                f"{row[f'{prefix}_ttft_p50_ms']:>9.1f}  {row[f'{prefix}_ttft_p95_ms']:>9.1f}  "
                f"{_ms(r['gateway_cpu_ms_per_stream']):>13}"
                if name != "direct"
                else ""
            )
            print(
                f"{row['concurrency']:>7} {name:>8} {r['n']:>4} {r['ttft_p50_ms']:>8.1f}  "
                f"{r['ttft_p95_ms']:>7.1f}  {r['ttft_p99_ms']:>7.1f}  {r['total_p50_ms']:>9.1f}  "
                f"{added}"
            )
    print(
        "times in ms; ttft = call to first content chunk; added = gateway - direct; "
        "gw cpu/stream = the gateway process's CPU time per stream; metrics = the gateway "
        "with Prometheus metrics on"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="scales the samples per level")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=list(CONCURRENCY), help="stream counts"
    )
    parser.add_argument(
        "--settings",
        default="config.settings",
        help="the Django settings module the gateway runs with (for experiments)",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="a PostgreSQL server (postgres://.../postgres) to use instead of SQLite",
    )
    parser.add_argument(
        "--py-spy", metavar="PATH", help="profile the gateway with this py-spy (raw stacks)"
    )
    parser.add_argument(
        "--compare-metrics",
        action="store_true",
        help="also measure a second gateway with Prometheus metrics on, in the same run",
    )
    args = parser.parse_args()
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out_dir = ROOT / "bench-results"
    out_dir.mkdir(exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="switchboard-bench-") as data_dir,
        database(data_dir, args.database_url) as database_url,
    ):
        env = bench_environment(data_dir, database_url, args.settings)
        # The plain gateway runs with metrics off whatever this shell has set.
        env = {k: v for k, v in env.items() if not k.startswith(("METRICS_", "PROMETHEUS_"))}
        fake_port, gateway_port, metrics_port = free_port(), free_port(), free_port()
        fake = subprocess.Popen(
            [*FAKE_COMMAND, "--port", str(fake_port)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        gateway = metered = None
        try:
            wait_for_port(fake_port)
            fake_url = f"http://127.0.0.1:{fake_port}"
            token = prepare_database(env, f"{fake_url}/v1")
            command = [*GATEWAY_COMMAND, "--port", str(gateway_port)]
            if args.py_spy:
                profile = out_dir / f"gateway_ttft-{stamp}.pyspy.txt"
                # --gil: only samples holding the GIL, i.e. where the CPU goes.
                spy = [args.py_spy, "record", "--gil", "--nonblocking", "--rate", "1000"]
                spy += ["--format", "raw"]
                spy += ["--output", str(profile)]
                command = [*spy, "--", *command]
            gateway = subprocess.Popen(
                command,
                env=env,
                cwd=ROOT,
            )
            wait_for_port(gateway_port)
            if args.compare_metrics:
                metrics_env = {**env, "METRICS_TOKEN": "bench-metrics-token-0123456789"}
                metrics_env["PROMETHEUS_MULTIPROC_DIR"] = f"{data_dir}/metrics"
                metered = subprocess.Popen(
                    [*GATEWAY_COMMAND, "--port", str(metrics_port)], env=metrics_env, cwd=ROOT
                )
                wait_for_port(metrics_port)
            rows = asyncio.run(
                measure(
                    f"http://127.0.0.1:{gateway_port}",
                    fake_url,
                    token,
                    rounds=args.rounds,
                    levels=args.concurrency,
                    # Under py-spy, gateway.pid is py-spy's: no CPU figure then.
                    gateway_pid=None if args.py_spy else gateway.pid,
                    metrics_gateway=(
                        (f"http://127.0.0.1:{metrics_port}", metered.pid) if metered else None
                    ),
                )
            )
        finally:
            for process in (gateway, metered, fake):
                if process is not None:
                    # SIGINT makes py-spy write its profile.
                    process.send_signal(signal.SIGINT if args.py_spy else signal.SIGTERM)
                    process.wait(timeout=30)
    print_table(rows)
    out = out_dir / f"gateway_ttft-{stamp}.json"
    engine = "postgresql" if args.database_url else "sqlite"
    meta = {"database": engine, "settings": args.settings, "fake": FAKE_KNOBS}
    meta |= {"compare_metrics": args.compare_metrics}
    meta |= {"python": platform.python_version(), "cpus": os.cpu_count()}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
