"""Shared pieces of the benchmarks: the fake upstream and the two deployments as real
processes (see tests/deploy/harness.py), percentiles, /proc readings, table and JSON.

Everything runs on loopback. The scale-out deployment needs PostgreSQL (BENCH_DATABASE_URL,
default postgres://postgres@127.0.0.1:5432/postgres: a throwaway database is created on
that server and dropped) and Redis (BENCH_REDIS_URL, default database 13, flushed: never
the test suite's 15 nor the deployment test's 14).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2

from tests.deploy import harness

ROOT = harness.ROOT
RESULTS = ROOT / "bench-results"
PG_SERVER_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
DEPLOYMENTS = ("embedded", "scaleout")
HUEY_WORKERS = 64  # the settings' default (HUEY_WORKERS)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "p99": percentile(ms, 99),
    }


def _status(pid: int, key: str) -> int | None:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return None


def rss_mib(pid: int) -> float:
    kib = _status(pid, "VmRSS")
    return float("nan") if kib is None else kib / 1024


def threads(pid: int) -> int:
    return _status(pid, "Threads") or 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_ns(pid: int) -> int:
    """CPU time of all of a process's threads, in ns: the scheduler's own count
    (schedstat), precise enough for one request, where /proc/PID/stat has 10 ms ticks."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        with contextlib.suppress(OSError):  # a thread that has just ended
            total += int(stat.read_text().split()[0])
    return total


def _git(*args: str) -> str:
    import subprocess

    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def machine() -> dict[str, Any]:
    # The commit measured: the tree moves while others work in it.
    return {
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty_files": len(_git("status", "--porcelain", "--untracked-files=no").splitlines()),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_at_start": os.getloadavg(),
    }


@contextlib.contextmanager
def fake_upstream(*, ttft_ms: int, delay_ms: int, tokens: int) -> Iterator[str]:
    """The project's fake upstream in a process of its own; yields its URL."""
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-fake-") as tmp:
        procs = harness.Processes(Path(tmp))
        env = harness.app_env(
            Path(tmp), database_url=f"sqlite:///{tmp}/unused.sqlite3", embedded=False
        )
        port = harness.free_port()
        try:
            procs.fake_upstream(port, env, ttft_ms=ttft_ms, delay_ms=delay_ms, tokens=tokens)
            procs.wait_for_port(port)
            yield f"http://127.0.0.1:{port}"
        finally:
            procs.stop_all()


@dataclass
class Deployment:
    kind: str
    base_url: str
    setup: harness.Setup
    cookies: httpx2.Cookies
    web_pid: int
    procs: harness.Processes
    env: dict[str, str]

    @property
    def worker_pid(self) -> int | None:
        worker = self.procs.running.get("worker")
        return worker.pid if worker else None


@contextlib.contextmanager
def deployment(
    kind: str, fake_url: str, *, huey_workers: int = HUEY_WORKERS, web_argv: tuple[str, ...] = ()
) -> Iterator[Deployment]:
    """One web process; embedded (SQLite, the worker inside it) or scale-out (PostgreSQL,
    Redis, one `run_huey` process). Yields once it answers and a user is logged in."""
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="switchboard-bench-")))
        if kind == "embedded":
            env = harness.app_env(
                tmp,
                database_url=f"sqlite:///{tmp}/switchboard.sqlite3",
                embedded=True,
                HUEY_WORKERS=str(huey_workers),
            )
        else:
            database_url = stack.enter_context(
                harness.throwaway_postgres(PG_SERVER_URL, "switchboard_bench")
            )
            harness.flush_redis(REDIS_URL)
            stack.callback(harness.flush_redis, REDIS_URL)
            env = harness.app_env(
                tmp, database_url=database_url, redis_url=REDIS_URL, embedded=False
            )
        procs = harness.Processes(tmp)
        stack.callback(procs.stop_all)
        setup = harness.prepare_database(env, f"{fake_url}/v1")
        port = harness.free_port()
        procs.web("web", port, env, *web_argv)
        if kind == "scaleout":
            procs.worker("worker", env, workers=huey_workers)
        procs.wait_for_port(port)
        base_url = f"http://127.0.0.1:{port}"
        cookies = harness.login(base_url, setup.username, setup.password)
        web_pid = procs.running["web"].pid
        yield Deployment(kind, base_url, setup, cookies, web_pid, procs, env)
        procs.check_alive()


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


def print_table(columns: list[str], rows: list[list[Any]]) -> None:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:.1f}"
    return str(value)


@dataclass
class StreamRead:
    first_delta: float | None = None  # perf_counter() of the first text byte
    arrivals: list[float] = field(default_factory=list)  # perf_counter() of every delta
    text: str = ""
    done: bool = False


async def read_stream(
    client: httpx2.AsyncClient,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    on_first_delta: Callable[[], object] | None = None,
) -> StreamRead:
    """Read one SSE stream to its `done` event, timing each delta's arrival;
    `on_first_delta` is called once the first text has been timed."""
    result = StreamRead(arrivals=[])
    buffer = ""
    async with client.stream("GET", path, headers=headers or {}) as response:
        response.raise_for_status()
        async for chunk in response.aiter_text():
            buffer += chunk
            while "\n\n" in buffer:
                block, buffer = buffer.split("\n\n", 1)
                event = harness.parse_block(block)
                if event is None:
                    continue
                if event.event == "done":
                    result.done = True
                    return result
                if event.event == "delta" and event.data:
                    now = time.perf_counter()
                    if result.first_delta is None:
                        result.first_delta = now
                        if on_first_delta is not None:
                            on_first_delta()
                    result.arrivals.append(now)
                    result.text += event.data
    return result


def client_for(dep: Deployment, connections: int) -> httpx2.AsyncClient:
    limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx2.AsyncClient(
        base_url=dep.base_url, cookies=dep.cookies, limits=limits, timeout=httpx2.Timeout(60)
    )


@contextlib.contextmanager
def profiled(name: str, pids: dict[str, int], *, enabled: bool) -> Iterator[list[Path]]:
    """py-spy (if installed in the venv) sampling the given processes, on-CPU only
    (--gil: samples holding the GIL, i.e. where the CPU goes); raw stacks written to
    bench-results/. Summarise them with ``python -m tests.bench.profile_summary``."""
    import signal
    import subprocess
    import sys

    spy = Path(sys.executable).parent / "py-spy"
    if not enabled:
        yield []
        return
    if not spy.exists():
        raise SystemExit("--py-spy needs py-spy: .venv/bin/pip install py-spy (not a dependency)")
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    outputs, spies = [], []
    for label, pid in pids.items():
        out = RESULTS / f"{name}-{label}-{stamp}.pyspy.txt"
        argv = [str(spy), "record", "--pid", str(pid), "--gil", "--nonblocking"]
        argv += ["--rate", "200", "--format", "raw", "--output", str(out)]
        spies.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        outputs.append(out)
    time.sleep(1.0)  # py-spy attaches
    try:
        yield outputs
    finally:
        for proc in spies:
            proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        for proc in spies:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


_QUEUE_WAITS = """
import json, sys, django
django.setup()
from generation.models import Message
ids = json.loads(sys.stdin.read())
rows = Message.objects.filter(pk__in=ids).values_list("pk", "created_at", "started_at")
print(json.dumps({pk: (s - c).total_seconds() for pk, c, s in rows if s}))
"""


def queue_waits(dep: Deployment, message_ids: list[int]) -> dict[int, float]:
    """Seconds from each message's insert to its claim by a worker (started_at -
    created_at): the commit, the queue and the worker's pickup, read from the database."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _QUEUE_WAITS],
        input=json.dumps(message_ids),
        env=dep.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return {int(k): v for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}


class DatabaseProbe:
    """Counts open connections to the deployment's PostgreSQL database. Connects once, up
    front: under load the server may have no connection slot left for a newcomer."""

    def __init__(self, dep: Deployment) -> None:
        url = dep.env["DATABASE_URL"]
        self.name = urlsplit(url).path.lstrip("/")
        self.conn = None
        if url.startswith("postgres"):
            import psycopg

            self.conn = psycopg.connect(
                harness.with_database(url, "postgres"), connect_timeout=5, autocommit=True
            )

    def count(self) -> int | None:
        if self.conn is None:
            return None
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
        return int(self.conn.execute(query, (self.name,)).fetchone()[0])  # type: ignore[index]

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
