"""Time to first token added by the chat path, against a direct SDK stream.

Run: ``.venv/bin/python -m tests.bench.bench_chat_ttft [--deployments embedded scaleout]``

Chat: the HTMX POST /send/ (one transaction, the huey task enqueued on commit), then the
message's SSE stream, timed from the POST to the first delta's text. Direct: the official
`AsyncOpenAI` streaming from the same fake upstream, timed to the first content chunk.
Fake: ttft 50 ms, 20 tokens 10 ms apart. At 1, 10 and 50 concurrent conversations, on
the embedded deployment (one uvicorn process, its worker threads, SQLite) and scale-out
(one uvicorn process, one `run_huey` process, PostgreSQL, Redis). added = chat - direct
per percentile. Targets: added p50 <= 5 / 15 / 40 ms at 1 / 10 / 50, p99 <= 120 ms at 50.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import re
import time
from typing import Any

import httpx2
import openai

from tests.bench import common
from tests.deploy import harness

FAKE = {"ttft_ms": 50, "delay_ms": 10, "tokens": 20}
LEVELS = (1, 10, 50)
TARGETS = {1: (5.0, None), 10: (15.0, None), 50: (40.0, 120.0)}  # (added p50, added p99)
PROMPT = "Say something about switchboards."
STREAM_URL = re.compile(r'data-stream-url="([^"]+)"')
LIMIT = 60.0  # seconds for one conversation, POST to done


def samples_for(concurrency: int, scale: int) -> int:
    """Rounds at a level: enough samples for a p99 without making the run long."""
    return {1: 20 * scale, 10: 3 * scale, 50: 2 * scale}.get(concurrency, scale)


async def direct_ttft(client: openai.AsyncOpenAI) -> float:
    started = time.perf_counter()
    stream = await client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    ttft = float("nan")
    async for chunk in stream:
        if ttft != ttft and chunk.choices and chunk.choices[0].delta.content:
            ttft = time.perf_counter() - started
    return ttft


async def chat_ttft(
    client: httpx2.AsyncClient,
    dep: common.Deployment,
    posts: list[float],
    ids: list[int],
    cpu: list[dict[str, float]] | None = None,
) -> float:
    """POST a message, then read its stream to the end; seconds to the first text.
    The POST's own latency goes to `posts`, the message id to `ids` (for the breakdown),
    and, with `cpu` (one conversation at a time only), the CPU each server process spent
    from the POST to the first text, in ms."""
    pids = _server_pids(dep)
    before = {name: common.cpu_ns(pid) for name, pid in pids.items()} if cpu is not None else {}

    def first_text() -> None:
        if cpu is not None:
            cpu.append({n: (common.cpu_ns(pid) - before[n]) / 1e6 for n, pid in pids.items()})

    async with asyncio.timeout(LIMIT):
        started = time.perf_counter()
        sent = await client.post(
            "/send/",
            data=harness.send_form(dep.setup.provider_id, PROMPT),
            headers=harness.htmx_headers(dep.cookies),
        )
        sent.raise_for_status()
        posts.append(time.perf_counter() - started)
        found = STREAM_URL.search(sent.text)
        if found is None:
            raise RuntimeError(f"no stream URL in the send response: {sent.text[:300]}")
        ids.append(int(found.group(1).rstrip("/").split("/")[-2]))
        read = await common.read_stream(client, found.group(1), on_first_delta=first_text)
    if read.first_delta is None or not read.done:
        raise RuntimeError("the stream ended without text or without its done event")
    return read.first_delta - started


def _server_pids(dep: common.Deployment) -> dict[str, int]:
    return {"web": dep.web_pid, **({"worker": dep.worker_pid} if dep.worker_pid else {})}


async def level(make: Any, concurrency: int, rounds: int) -> tuple[list[float], int]:
    """(ttfts, failures) of `rounds` waves of `concurrency` simultaneous calls."""
    ttfts: list[float] = []
    failures = 0
    for _ in range(rounds):
        results = await asyncio.gather(
            *(make() for _ in range(concurrency)), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                failures += 1
                print(f"  failure: {type(result).__name__}: {str(result)[:200]}")
            else:
                ttfts.append(result)
    return ttfts, failures


async def measure(
    dep: common.Deployment, fake_url: str, levels: list[int], scale: int
) -> list[dict]:
    direct = openai.AsyncOpenAI(
        base_url=f"{fake_url}/v1",
        api_key="sk-bench",
        max_retries=0,
        http_client=openai.DefaultAsyncHttpxClient(
            limits=httpx2.Limits(max_connections=200, max_keepalive_connections=200)
        ),
    )
    rows = []
    async with common.client_for(dep, 200) as client:
        await level(lambda: chat_ttft(client, dep, [], []), 2, 2)  # warm up: imports, connections
        await level(lambda: direct_ttft(direct), 2, 2)
        for concurrency in levels:
            rounds = samples_for(concurrency, scale)
            direct_s, direct_fail = await level(lambda: direct_ttft(direct), concurrency, rounds)
            cpu = common.cpu_seconds(dep.web_pid)
            posts: list[float] = []
            ids: list[int] = []
            worker_cpu = common.cpu_seconds(dep.worker_pid) if dep.worker_pid else 0.0
            # One conversation at a time, the CPU up to its first text is its own.
            first_text_cpu: list[dict[str, float]] | None = [] if concurrency == 1 else None
            make_chat = functools.partial(chat_ttft, client, dep, posts, ids, first_text_cpu)
            chat_s, chat_fail = await level(make_chat, concurrency, rounds)
            web_cpu_ms = (common.cpu_seconds(dep.web_pid) - cpu) * 1000 / max(1, len(chat_s))
            worker_cpu_ms = None
            if dep.worker_pid:
                used = common.cpu_seconds(dep.worker_pid) - worker_cpu
                worker_cpu_ms = used * 1000 / max(1, len(chat_s))
            waits = list(common.queue_waits(dep, ids).values())
            d, c = common.summary_ms(direct_s), common.summary_ms(chat_s)
            added = {q: c[q] - d[q] for q in ("p50", "p95", "p99")}
            rows.append(
                {
                    "deployment": dep.kind,
                    "concurrency": concurrency,
                    "direct": d,
                    "chat": c,
                    "added": added,
                    "post": common.summary_ms(posts),
                    "queue_wait": common.summary_ms(waits),
                    "worker_cpu_ms_per_conversation": worker_cpu_ms,
                    "failures": direct_fail + chat_fail,
                    "web_cpu_ms_per_conversation": web_cpu_ms,
                    "web_rss_mib": common.rss_mib(dep.web_pid),
                    "cpu_ms_to_first_text": _medians(first_text_cpu),
                    "meets_target": meets(concurrency, added),
                }
            )
            print(f"  {dep.kind} x{concurrency}: added p50 {added['p50']:.1f} ms")
    await direct.close()
    return rows


def _medians(samples: list[dict[str, float]] | None) -> dict[str, float] | None:
    if not samples:
        return None
    return {name: common.percentile([s[name] for s in samples], 50) for name in samples[0]}


def meets(concurrency: int, added: dict[str, float]) -> bool | None:
    if concurrency not in TARGETS:
        return None
    p50, p99 = TARGETS[concurrency]
    return added["p50"] <= p50 and (p99 is None or added["p99"] <= p99)


def run(
    deployments: list[str], levels: list[int], scale: int, huey_workers: int, py_spy: bool
) -> list[dict]:
    rows: list[dict] = []
    with common.fake_upstream(**FAKE) as fake_url:
        for kind in deployments:
            with common.deployment(kind, fake_url, huey_workers=huey_workers) as dep:
                pids = {"web": dep.web_pid}
                if "worker" in dep.procs.running:
                    pids["worker"] = dep.procs.running["worker"].pid
                with common.profiled(f"chat_ttft-{kind}", pids, enabled=py_spy) as files:
                    rows += asyncio.run(measure(dep, fake_url, levels, scale))
                for file in files:
                    print(f"profile: {file.relative_to(common.ROOT)}")
    return rows


def report(rows: list[dict]) -> None:
    columns = ["deployment", "conv", "n", "direct p50", "POST p50", "claim p50", "claim p99"]
    columns += ["chat p50", "p95", "p99", "added p50", "added p95", "added p99", "target"]
    columns += ["web cpu/conv", "worker cpu/conv", "fail"]
    table = []
    for r in rows:
        chat, added, claim = r["chat"], r["added"], r["queue_wait"]
        worker_cpu = r["worker_cpu_ms_per_conversation"]
        verdict = {True: "met", False: "MISSED", None: "-"}[r["meets_target"]]
        table.append(
            [
                *(r["deployment"], r["concurrency"], chat["n"], r["direct"]["p50"]),
                *(r["post"]["p50"], claim["p50"], claim["p99"]),
                *(chat["p50"], chat["p95"], chat["p99"], added["p50"], added["p95"], added["p99"]),
                *(verdict, r["web_cpu_ms_per_conversation"], worker_cpu or "-", r["failures"]),
            ]
        )
    common.print_table(columns, table)
    print(
        "ms; ttft = POST (chat) or call (direct) to first text; added = chat - direct; "
        "POST = the send request alone; claim = message insert to a worker's claim "
        "(started_at - created_at); cpu/conv = a process's CPU time per conversation "
        "(embedded: the worker threads are in the web process)"
    )
    floors(rows)


def floors(rows: list[dict]) -> None:
    """What the targets ask of the CPU a conversation needs before its first text.

    In a wave of N, every conversation's work before its first text queues for one
    core: the web process's and its worker threads' Python runs under one GIL (in
    scale-out, the web process and the worker each have one and work in a pipeline, so
    the busier one paces it). Even in the best order, with no other work in between,
    the k-th conversation waits for k - 1 others, so the median waits (N - 1) / 2 times
    that CPU: floor = added p50 at 1 + c * (N - 1) / 2, with c measured at 1.
    """
    table = []
    for kind in dict.fromkeys(r["deployment"] for r in rows):
        ones = [r for r in rows if r["deployment"] == kind and r["concurrency"] == 1]
        if not ones or not ones[0]["cpu_ms_to_first_text"]:
            continue
        cpu, alone = ones[0]["cpu_ms_to_first_text"], ones[0]["added"]["p50"]
        pace = max(cpu.values())
        for r in rows:
            if r["deployment"] != kind:
                continue
            n = r["concurrency"]
            target = TARGETS.get(n, (None, None))[0]
            # The CPU per conversation that would let the floor meet the target ("none":
            # one conversation alone already misses it).
            budget: float | str = "-"
            if target is not None and n > 1:
                budget = 2 * (target - alone) / (n - 1) if target > alone else "none"
            cells = [kind, n, cpu.get("web"), cpu.get("worker", "-"), alone + pace * (n - 1) / 2]
            table.append([*cells, r["added"]["p50"], target or "-", budget])
    if not table:
        return
    print()
    columns = ["deployment", "conv", "web cpu to 1st text", "worker cpu", "floor p50"]
    common.print_table([*columns, "added p50", "target", "cpu budget"], table)
    print(
        "ms; cpu to 1st text = each process's CPU from the POST to the first text, one "
        "conversation at a time (median); floor = added p50 at 1 + that CPU (the busier "
        "process) x (N - 1) / 2: a wave's median if its conversations' work before the "
        "first text ran back to back, with no other work between; cpu budget = the CPU per "
        "conversation at which that floor meets the target"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", nargs="+", default=list(common.DEPLOYMENTS))
    parser.add_argument("--concurrency", type=int, nargs="+", default=list(LEVELS))
    parser.add_argument("--scale", type=int, default=1, help="multiplies the samples per level")
    parser.add_argument("--huey-workers", type=int, default=common.HUEY_WORKERS)
    parser.add_argument("--py-spy", action="store_true", help="profile the server processes")
    args = parser.parse_args()
    rows = run(args.deployments, args.concurrency, args.scale, args.huey_workers, args.py_spy)
    report(rows)
    meta = {**common.machine(), "fake": FAKE, "huey_workers": args.huey_workers}
    path = common.write_json("chat_ttft", {"meta": meta, "rows": rows})
    print(f"wrote {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
