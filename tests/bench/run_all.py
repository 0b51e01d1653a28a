"""Run the benchmarks one after another and print one summary.

Run: ``.venv/bin/python -m tests.bench.run_all [--only NAME ...] [--skip NAME ...] [--py-spy]``

Each benchmark runs in a process of its own (its tables and JSON as usual, JSON under
bench-results/); a failing or overrunning one does not stop the others. The summary at
the end lists each benchmark's exit status and time, and the headline figures of the
chat, API and streams benchmarks against their targets.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.bench import common

PG = common.PG_SERVER_URL
# name -> (module, extra arguments, time limit in seconds). Cheapest first.
BENCHES: dict[str, tuple[str, list[str], int]] = {
    "queue_wake": ("tests.bench.bench_queue_wake", [], 300),
    "chat_ttft": ("tests.bench.bench_chat_ttft", [], 600),
    "api_throughput": ("tests.bench.bench_api_throughput", [], 300),
    "streams_held": ("tests.bench.bench_streams_held", [], 600),
    "gateway_ttft": ("tests.bench.bench_gateway_ttft", [], 600),
    "usage_report_sqlite": ("tests.bench.bench_usage_report", [], 1800),
    "usage_report_postgresql": ("tests.bench.bench_usage_report", ["--database-url", PG], 1800),
    "search_sqlite": ("tests.bench.bench_search", [], 1200),
    "search_postgresql": ("tests.bench.bench_search", ["--database-url", PG], 1200),
}
PROFILABLE = {"chat_ttft", "api_throughput", "streams_held"}


def newest(prefix: str, since: float) -> dict | None:
    files = [p for p in common.RESULTS.glob(f"{prefix}-*.json") if p.stat().st_mtime >= since]
    return json.loads(max(files, key=lambda p: p.stat().st_mtime).read_text()) if files else None


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "-"}[met]


def headlines(since: float) -> None:
    if chat := newest("chat_ttft", since):
        print("\nchat: added time to first token (ms) vs a direct AsyncOpenAI stream")
        rows = []
        for r in chat["rows"]:
            added = r["added"]
            verdict = _verdict(r["meets_target"])
            rows.append([r["deployment"], r["concurrency"], added["p50"], added["p99"], verdict])
        common.print_table(["deployment", "conversations", "added p50", "p99", "target"], rows)
    if api := newest("api_throughput", since):
        print("\n/api/generate vs direct non-streaming calls")
        rows = []
        for r in api["rows"]:
            latency = r["latency"]
            rows.append([r["path"], r["rps"], r["ratio_to_direct"], latency["p50"], latency["p99"]])
        common.print_table(["path", "req/s", "x direct", "p50 ms", "p99 ms"], rows)
    if held := newest("streams_held", since):
        print("\nSSE streams held by one web process (target 1,000)")
        rows = []
        for kind in dict.fromkeys(r["deployment"] for r in held["rows"]):
            holding = [r for r in held["rows"] if r["deployment"] == kind and r["holds"]]
            top = max(holding, key=lambda r: r["streams"], default=None)
            tried = max(r["streams"] for r in held["rows"] if r["deployment"] == kind)
            if top is None:
                rows.append([kind, f"< {tried}", "-"])
            else:
                rows.append([kind, top["streams"], top["rss_per_stream_kib"]])
        common.print_table(["deployment", "most streams held", "KiB/stream there"], rows)
    for vendor in ("sqlite", "postgresql"):
        if found := newest(f"search_{vendor}", since):
            print(f"\nsearch over {found['messages']:,} messages ({vendor}; target < 100 ms)")
            rows = [
                [r["query"], r["hits"], r["view_p50_ms"], r["view_p95_ms"]] for r in found["rows"]
            ]
            common.print_table(["query", "hits", "view p50 ms", "p95 ms"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHES), default=list(BENCHES))
    parser.add_argument("--skip", nargs="+", choices=sorted(BENCHES), default=[])
    parser.add_argument("--py-spy", action="store_true", help="profile where supported")
    args = parser.parse_args()
    started = time.time()
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()}")
    statuses = []
    for name in [n for n in args.only if n not in args.skip]:
        module, extra, limit = BENCHES[name]
        if args.py_spy and name in PROFILABLE:
            extra = [*extra, "--py-spy"]
        print(f"\n=== {name}: python -m {module} {' '.join(extra)}", flush=True)
        began = time.monotonic()
        code: int | str
        try:
            code = subprocess.run(
                [sys.executable, "-m", module, *extra], cwd=common.ROOT, timeout=limit, check=False
            ).returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
        statuses.append([name, code, time.monotonic() - began])
    print("\n=== summary")
    common.print_table(["benchmark", "exit", "seconds"], statuses)
    headlines(started)
    print(f"\nJSON in {Path(common.RESULTS).relative_to(common.ROOT)}/")


if __name__ == "__main__":
    main()
