"""/metrics of the scale-out deployment: two web processes and a worker write values to
one folder, and either web process answers a scrape with the sum of all three.

The chat message is sent to web A and read from web B, the worker (a third process)
calls upstream and meters it, the /v1 call goes to web B: each scrape must show them all.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy import harness, metrics_checks
from tests.metrics.scrape import value

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

# The pass's Redis (its REDIS_URL), under a key prefix of this run's own (queue included).
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/12"


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, str, harness.Setup, Path]]:
    server_url = harness.with_database(os.environ["DATABASE_URL"], "postgres")
    with (
        tempfile.TemporaryDirectory(prefix="switchboard-metrics-e2e-") as tmp,
        harness.throwaway_postgres(server_url, "switchboard_metrics") as database_url,
    ):
        prefix = harness.redis_key_prefix("metrics")
        values = Path(tmp) / "values"
        env = harness.app_env(
            Path(tmp),
            database_url=database_url,
            redis_url=REDIS_URL,
            embedded=False,
            REDIS_KEY_PREFIX=prefix,
            METRICS_TOKEN=metrics_checks.TOKEN,
            PROMETHEUS_MULTIPROC_DIR=str(values),
        )
        procs = harness.Processes(Path(tmp))
        try:
            fake_port, port_a, port_b = (harness.free_port() for _ in range(3))
            procs.fake_upstream(fake_port, env, ttft_ms=20, delay_ms=5, tokens=10)
            setup = harness.prepare_database(env, f"http://127.0.0.1:{fake_port}/v1")
            procs.web("web_a", port_a, env)
            procs.web("web_b", port_b, env)
            procs.worker("worker", env, workers=2)
            for port in (fake_port, port_a, port_b):
                procs.wait_for_port(port)
            yield f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}", setup, values
            procs.check_alive()
        except Exception:
            for name in procs.running:
                sys.stderr.write(f"--- {name} log ---\n{procs.log_tail(name)}\n")
            raise
        finally:
            procs.stop_all()
            harness.delete_redis_keys(REDIS_URL, prefix)


def test_each_web_process_scrapes_the_sum_of_all_processes(cluster) -> None:
    web_a, web_b, setup, values = cluster
    metrics_checks.chat_and_gateway(web_a, web_b, web_b, setup)
    harness.wait_until(
        lambda: value(metrics_checks.scrape(web_a), "switchboard_sse_streams_open") == 0,
        timeout=10,
        what="the finished stream is no longer counted as open",
    )
    for base in (web_a, web_b):
        metrics_checks.assert_counted(metrics_checks.scrape(base), setup)
    writers = {path.stem.rsplit("_", 1)[1] for path in values.glob("*.db")}
    assert len(writers) >= 3, f"two web processes and the worker wrote values: {writers}"
