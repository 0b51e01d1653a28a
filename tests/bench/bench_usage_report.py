"""Benchmark: the staff usage report over a million usage records.

    .venv/bin/python tests/bench/bench_usage_report.py                  # SQLite, temp file
    .venv/bin/python tests/bench/bench_usage_report.py --database-url postgres://postgres@127.0.0.1:5432/postgres

Builds a throwaway database (a temp SQLite file, or a `bench_usage_<pid>` database on the
PostgreSQL server given), migrates it, generates N records over 90 days with
`generate_usage` (which also builds the daily rollup, as the periodic task keeps it),
then renders the report through Django's test client, full middleware and template, and
prints the median of several runs per scenario. The target is < 300 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET_MS = 300


def _write_json(vendor: str, records: int, rows: list[dict]) -> None:
    # Same place and shape as the other benchmarks' results (tests/bench/common.py).
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    payload = {
        "benchmark": "usage_report",
        "database": vendor,
        "records": records,
        "machine": {"cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg()},
        "target_ms": TARGET_MS,
        "rows": rows,
    }
    path = out / f"usage_report_{vendor}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(payload, indent=2))


def _prepare_database(url: str | None) -> tuple[str, Callable[[], None]]:
    if not url:
        folder = tempfile.mkdtemp(prefix="bench-usage-")
        return f"sqlite:///{folder}/bench.sqlite3", lambda: None
    import psycopg

    name = f"bench_usage_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        from django.db import connections

        connections.close_all()  # the pool's idle connections may linger: FORCE ends them
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url.rsplit("/", 1)[0] + f"/{name}", drop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--existing", default="", help="DATABASE_URL of a kept benchmark database: time only"
    )
    args = parser.parse_args()

    if args.existing:
        db_url, cleanup = args.existing, lambda: None
    else:
        db_url, cleanup = _prepare_database(args.database_url)
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="bench-usage-data-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings_test"
    os.environ["ALLOWED_HOSTS"] = "testserver"
    sys.path.insert(0, str(ROOT))
    import django

    from providers.crypto import generate_key_entry

    os.environ["ENCRYPTION_KEYS"] = generate_key_entry()
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    try:
        if not args.existing:
            call_command("migrate", verbosity=0)
            started = time.monotonic()
            call_command("generate_usage", records=args.records, days=90, users=40)
            print(f"data ready in {time.monotonic() - started:.0f} s on {connection.vendor}")
            get_user_model().objects.create_superuser("bench", password="bench-pw-123")
        admin = get_user_model().objects.get(username="bench")
        client = Client()
        client.force_login(admin)
        today = timezone.localdate()
        some_user = get_user_model().objects.get(username="demo-user-003")
        scenarios = {
            "30 days (default)": {},
            "today (raw rows)": {"range": "today"},
            "7 days": {"range": "7d"},
            "this month": {"range": "month"},
            "90 days, custom": {
                "range": "custom",
                "start": str(today - timedelta(days=89)),
                "end": str(today),
            },
            "30 days, one model": {"model": "gpt-4o-mini"},
            "30 days, one user": {"user": str(some_user.pk)},
            "30 days, errors only": {"outcome": "rate_limit"},
        }
        medians, rows = [], []
        for name, params in scenarios.items():
            timings, cpu = [], []
            for _ in range(args.runs + 1):  # the first run warms caches and is dropped
                t0, c0 = time.perf_counter(), time.process_time()
                response = client.get("/admin/usage/usagerecord/report/", params)
                timings.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
                assert response.status_code == 200, response.status_code
            median = statistics.median(timings[1:])
            medians.append(median)
            rows.append(
                {
                    "scenario": name,
                    "median_ms": round(median, 1),
                    "max_ms": round(max(timings[1:]), 1),
                    "cpu_median_ms": round(statistics.median(cpu[1:]), 1),
                    "meets_target": median < TARGET_MS,
                }
            )
            # CPU time of this process (SQLite runs in it) shows the cost on a busy machine.
            print(
                f"  {name:<24} median {median:7.1f} ms  (max {max(timings[1:]):.1f}; "
                f"cpu median {statistics.median(cpu[1:]):.1f} ms)"
            )
        t0 = time.perf_counter()
        client.get("/admin/usage/usagerecord/")
        print(f"  change list (one run)      {(time.perf_counter() - t0) * 1000:7.1f} ms")
        _write_json(connection.vendor, args.records, rows)
        print(
            f"REPORT MEDIAN (default 30 days): {medians[0]:.1f} ms; worst scenario "
            f"{max(medians):.1f} ms over {args.records:,} records ({connection.vendor})"
        )
    finally:
        if args.keep:
            print(f"kept: DATABASE_URL={db_url}")
        else:
            cleanup()


if __name__ == "__main__":
    main()
