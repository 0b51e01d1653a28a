"""Concurrent SSE streams one web process holds with its inter-token delays intact.

Run: ``.venv/bin/python -m tests.bench.bench_streams_held [--levels 100 250 500 1000]``

The fake upstream answers slowly (400 tokens, 100 ms apart). At each level a few
conversations are generating (the workers' capacity, not the web's, bounds how many
answers run at once) and the level's number of SSE readers is spread over them: every
reader is a stream of its own for the web process (its own connection, relay follower
and, on Redis, XREAD connection), as several browser tabs on one message are. After all
are open, the gaps between delta events are timed for a window; a level holds when the
median and p95 gap stay within 20% of upstream's, timed at the same moment on a few
direct SDK streams (on a shared 2-core machine the fake itself slows down under load).
The ramp stops at the first level that does not hold. RSS of the web process is read
before and during each level.

The readers are plain asyncio sockets (not an HTTP library) so that the client, on the
same machine, costs as little CPU as possible; its CPU use is reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import openai

from tests.bench import common
from tests.deploy import harness

DELAY_MS = 100
FAKE = {"ttft_ms": 50, "delay_ms": DELAY_MS, "tokens": 400}  # 40 s answers
LEVELS = (100, 250, 500, 1000)
TOLERANCE = 1.2  # "within 20% of upstream's inter-token delay"
CONTROLS = 5  # direct SDK streams timed alongside: upstream's delay under the same load
WINDOW = 8.0  # seconds of timing once a level's streams are all open
OPEN_TIMEOUT = 60.0
STREAM_URL = re.compile(r'data-stream-url="([^"]+)"')
DELTA = b"event: delta"


@dataclass
class Reader:
    gaps: list[float] = field(default_factory=list)
    last: float | None = None
    opened: bool = False
    failed: str = ""
    measuring: bool = False

    def on_delta(self, now: float) -> None:
        if self.measuring and self.last is not None:
            self.gaps.append(now - self.last)
        self.last = now


async def read_stream(host: str, port: int, path: str, cookie: str, reader: Reader) -> None:
    """A minimal HTTP/1.1 SSE reader: counts delta events as they arrive."""
    stream, writer = await asyncio.open_connection(host, port)
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: {cookie}\r\n"
        writer.write(f"{request}Accept: text/event-stream\r\n\r\n".encode())
        await writer.drain()
        status = await stream.readline()
        if b" 200 " not in status:
            reader.failed = status.decode(errors="replace").strip()
            return
        while (await stream.readline()) not in (b"\r\n", b""):
            pass
        reader.opened = True
        tail = b""
        while chunk := await stream.read(65536):
            now = time.perf_counter()
            data = tail + chunk
            # An event split across reads is counted once: by the read that ends it.
            for _ in range(data.count(DELTA)):
                reader.on_delta(now)
            tail = data[-len(DELTA) + 1 :] if not data.endswith(DELTA) else b""
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def direct_stream(client: openai.AsyncOpenAI, reader: Reader) -> None:
    """The control: the same fake upstream read straight with the SDK, at the same time."""
    stream = await client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "A long story"}], stream=True
    )
    reader.opened = True
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            reader.on_delta(time.perf_counter())


async def start_conversations(dep: common.Deployment, count: int) -> list[str]:
    async with common.client_for(dep, 10) as client:
        paths = []
        for i in range(count):
            sent = await client.post(
                "/send/",
                data=harness.send_form(dep.setup.provider_id, f"Tell a long story {i}"),
                headers=harness.htmx_headers(dep.cookies),
            )
            sent.raise_for_status()
            paths.append(STREAM_URL.search(sent.text).group(1))  # type: ignore[union-attr]
        return paths


async def cancel_conversations(dep: common.Deployment, paths: list[str]) -> None:
    async with common.client_for(dep, 10) as client:
        for path in paths:
            await client.post(
                path.replace("/stream/", "/cancel/"), headers=harness.htmx_headers(dep.cookies)
            )


async def level(
    dep: common.Deployment,
    fake_url: str,
    streams: int,
    conversations: int,
    rss_baseline: float,
    probe: common.DatabaseProbe,
) -> dict:
    url = urlsplit(dep.base_url)
    direct = openai.AsyncOpenAI(base_url=f"{fake_url}/v1", api_key="sk-bench", max_retries=0)
    controls = [Reader() for _ in range(CONTROLS)]
    control_tasks = [asyncio.create_task(direct_stream(direct, r)) for r in controls]
    cookie = f"sessionid={dep.cookies['sessionid']}"
    rss_before = common.rss_mib(dep.web_pid)
    paths = await start_conversations(dep, conversations)
    readers = [Reader() for _ in range(streams)]
    tasks = []
    opening_started = time.perf_counter()
    for i, reader in enumerate(readers):
        path = paths[i % len(paths)]
        coro = read_stream(url.hostname or "127.0.0.1", url.port or 80, path, cookie, reader)
        tasks.append(asyncio.create_task(coro))
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # a ramp, not a connect storm
    deadline = time.perf_counter() + OPEN_TIMEOUT
    while time.perf_counter() < deadline:
        if all(r.opened or r.failed or t.done() for r, t in zip(readers, tasks, strict=True)):
            break
        await asyncio.sleep(0.1)
    open_seconds = time.perf_counter() - opening_started
    await asyncio.sleep(1.0)  # past each reader's catch-up burst
    cpu_web, cpu_me = common.cpu_seconds(dep.web_pid), common.cpu_seconds(os.getpid())
    for reader in readers + controls:
        reader.measuring = True
    await asyncio.sleep(WINDOW)
    for reader in readers + controls:
        reader.measuring = False
    rss_during = common.rss_mib(dep.web_pid)
    web_threads = common.threads(dep.web_pid)
    # Scale-out: does each open stream hold a database connection?
    db_connections = probe.count()
    web_cores = (common.cpu_seconds(dep.web_pid) - cpu_web) / WINDOW
    client_cores = (common.cpu_seconds(os.getpid()) - cpu_me) / WINDOW
    opened = sum(r.opened for r in readers)
    alive = sum(r.opened and not t.done() for r, t in zip(readers, tasks, strict=True))
    for task in tasks + control_tasks:
        task.cancel()
    await asyncio.gather(*tasks, *control_tasks, return_exceptions=True)
    await direct.close()
    await cancel_conversations(dep, paths)
    gaps = [g for r in readers for g in r.gaps]
    gap = common.summary_ms(gaps)
    upstream = common.summary_ms([g for r in controls for g in r.gaps])
    silent = sum(1 for r in readers if r.opened and not r.gaps)
    holds = (
        opened == streams
        and alive == streams
        and silent == 0
        and gap["p50"] <= upstream["p50"] * TOLERANCE
        and gap["p95"] <= upstream["p95"] * TOLERANCE
    )
    return {
        "deployment": dep.kind,
        "streams": streams,
        "conversations": conversations,
        "opened": opened,
        "alive_at_end": alive,
        "silent_streams": silent,
        "failures": sorted({r.failed for r in readers if r.failed})[:3],
        "open_seconds": open_seconds,
        "gap": gap,
        "upstream_gap": upstream,
        "holds": holds,
        "rss_before_mib": rss_before,
        "rss_during_mib": rss_during,
        # Against the RSS before the first level: memory freed by a level's streams is
        # rarely returned to the system, so "before this level" would understate it.
        "rss_per_stream_kib": (rss_during - rss_baseline) * 1024 / max(1, streams),
        "db_connections": db_connections,
        "web_threads": web_threads,
        "web_cores": web_cores,
        "client_cores": client_cores,
    }


async def measure(
    dep: common.Deployment, fake_url: str, levels: list[int], conversations: int
) -> list[dict]:
    rows = []
    rss_baseline = common.rss_mib(dep.web_pid)
    probe = common.DatabaseProbe(dep)
    for streams in levels:
        row = await level(dep, fake_url, streams, conversations, rss_baseline, probe)
        rows.append(row)
        print(
            f"  {dep.kind} {streams} streams: gap p50 {row['gap']['p50']:.0f} ms, "
            f"p95 {row['gap']['p95']:.0f} ms, {'holds' if row['holds'] else 'DEGRADED'}"
        )
        if row["failures"]:
            print(f"  web log:\n{dep.procs.log_tail('web', 4000)}")
        if not row["holds"]:
            break  # the ramp stops at the first level that degrades
        await asyncio.sleep(1.0)
    probe.close()
    return rows


def run(deployments: list[str], levels: list[int], conversations: int, py_spy: bool) -> list[dict]:
    rows = []
    with common.fake_upstream(**FAKE) as fake_url:
        for kind in deployments:
            # Enough worker threads for every conversation to generate at once.
            with common.deployment(kind, fake_url, huey_workers=conversations + 2) as dep:
                pids = {"web": dep.web_pid}
                with common.profiled(f"streams_held-{kind}", pids, enabled=py_spy) as files:
                    rows += asyncio.run(measure(dep, fake_url, levels, conversations))
                for file in files:
                    print(f"profile: {file.relative_to(common.ROOT)}")
    return rows


def report(rows: list[dict]) -> None:
    columns = ["deployment", "streams", "opened", "alive", "silent", "upstream p50", "p95"]
    columns += ["gap p50", "p95", "p99"]
    columns += ["holds", "RSS MiB", "KiB/stream", "threads", "db conns", "web cores"]
    columns += ["client cores"]
    columns += ["open s"]
    table = [
        [
            *(r["deployment"], r["streams"], r["opened"], r["alive_at_end"], r["silent_streams"]),
            *(r["upstream_gap"]["p50"], r["upstream_gap"]["p95"]),
            *(r["gap"]["p50"], r["gap"]["p95"], r["gap"]["p99"], "yes" if r["holds"] else "NO"),
            *(r["rss_during_mib"], r["rss_per_stream_kib"], r["web_threads"]),
            r["db_connections"] or "-",
            *(r["web_cores"], r["client_cores"]),
            r["open_seconds"],
        ]
        for r in rows
    ]
    common.print_table(columns, table)
    print("gap = ms between delta events at an SSE client; upstream = the same between chunks")
    print(f"of {CONTROLS} direct SDK streams in the same window (knob: {DELAY_MS} ms); holds = all")
    print(f"streams open and alive, gap p50 and p95 <= {TOLERANCE} x upstream's; KiB/stream =")
    print("(RSS during - RSS before the ramp) / streams; db conns = connections to the PostgreSQL")
    print("database during the window; threads = the web process's OS threads; cores = CPU")
    print("time / wall time in the window")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", nargs="+", default=list(common.DEPLOYMENTS))
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS))
    parser.add_argument("--conversations", type=int, default=10, help="answers generating")
    parser.add_argument("--py-spy", action="store_true", help="profile the web process")
    args = parser.parse_args()
    rows = run(args.deployments, args.levels, args.conversations, args.py_spy)
    report(rows)
    meta = {**common.machine(), "fake": FAKE, "window_s": WINDOW, "tolerance": TOLERANCE}
    path = common.write_json("streams_held", {"meta": meta, "rows": rows})
    print(f"wrote {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
